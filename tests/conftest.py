import pytest


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One complete run of the demo workflow through the real `snakemake` command, shared by the workflow tests.

    Tests that change files in it must put them back as they were.
    """
    from tests.support.runner import snakemake

    workdir = tmp_path_factory.mktemp("demo")
    snakemake(workdir, "--cores", "2")
    return workdir
