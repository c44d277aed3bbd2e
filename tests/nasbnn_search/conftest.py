import pytest

from .helpers import CONFIG, SEARCH_TOOL, TINY, make_checkpoint, run


@pytest.fixture(scope='session')
def supernet_ckpt(tmp_path_factory):
    return make_checkpoint(str(tmp_path_factory.mktemp('supernet') / 'supernet.pth'))


@pytest.fixture(scope='session')
def reference_search(tmp_path_factory, supernet_ckpt):
    """The uninterrupted 1-process tiny search, with an export by OPs budget (0.5M)."""
    work = tmp_path_factory.mktemp('search_ref')
    _, log = run(SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--export-ops', '0.5',
                 '--export-name', 'best', '--cfg-options', *TINY)
    return work, log
