"""Install mmdynbnn: ``pip install -e . --no-build-isolation`` (after torch and mmcv, see tools/setup_env.sh)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list:
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(('#', '-'))]


def version() -> str:
    scope: dict = {}
    exec((HERE / 'mmdynbnn' / 'version.py').read_text(), scope)
    return scope['__version__']


setup(
    name='mmdynbnn',
    version=version(),
    description='Binary NAS networks (NAS-BNN) and dynamic detectors (DynamicDet) for OpenMMLab 2.x',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdynbnn', 'mmdynbnn.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
