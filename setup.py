"""Install mmdynbnn: ``pip install -e . --no-build-isolation`` (after torch and mmcv, see tools/setup_env.sh).

The optional C++ extension ``mmdynbnn._bitpack_ext`` (bit-packed binary conv kernels, ``csrc/bitpack``) is
built with torch's ``cpp_extension`` when torch and a C++ compiler are available. It downloads nothing,
and a missing compiler or a failed build only prints a warning: mmdynbnn then uses its JIT build or the
pure-torch reference path (``mmdynbnn.deploy.describe_backend()`` says which). ``MMDYNBNN_NO_EXT=1``
skips it. In a development tree: ``python setup.py build_ext --inplace``.
"""
import os
import sys
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


def bitpack_extension() -> dict:
    """``ext_modules``/``cmdclass`` for the optional bit-packed kernels, or nothing."""
    if os.environ.get('MMDYNBNN_NO_EXT', '') not in ('', '0'):
        return {}
    try:
        from torch.utils.cpp_extension import BuildExtension, CppExtension
    except Exception as exc:  # torch absent (e.g. isolated build env): pure-torch / JIT paths remain
        print(f'mmdynbnn: torch not importable ({exc}); skipping the optional C++ bit-packed kernels',
              file=sys.stderr)
        return {}

    class OptionalBuildExtension(BuildExtension):
        """Build failures (no compiler, old compiler) are warnings: the extension is optional."""

        def run(self):
            try:
                super().run()
            except Exception as exc:
                print(f'mmdynbnn: WARNING: optional C++ bit-packed kernels not built ({exc}); '
                      f'the pure-torch reference path (or a JIT build) will be used', file=sys.stderr)

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except Exception as exc:
                print(f'mmdynbnn: WARNING: building {ext.name} failed ({exc}); '
                      f'the pure-torch reference path (or a JIT build) will be used', file=sys.stderr)

    csrc = Path('csrc') / 'bitpack'
    ext = CppExtension('mmdynbnn._bitpack_ext',
                       sources=[str(csrc / 'bitpack_kernels.cpp'), str(csrc / 'bitpack_binding.cpp')],
                       include_dirs=[str(HERE / csrc)],
                       extra_compile_args=['-O3', '-ffp-contract=off', '-fno-strict-aliasing'])
    return dict(ext_modules=[ext], cmdclass={'build_ext': OptionalBuildExtension})


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
    **bitpack_extension(),
)
