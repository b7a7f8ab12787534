import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Test helper modules (slide factories, the snakemake runner) live beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One complete run of the demo workflow through the real `snakemake` command, shared by the workflow tests.

    Tests that change files in it must put them back as they were.
    """
    from workflow import snakemake

    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir, "--cores", "2")
    return workdir
