import pytest

DEMO_OUTPUT = "snakemake_output.txt"  # what the demo run printed, beside its results


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One complete run of the demo workflow through the real `snakemake` command, with the local profile as
    `make demo` runs it, shared by the workflow tests. What it printed is kept in DEMO_OUTPUT.

    Tests that change files in it must put them back as they were.
    """
    from tests.support.runner import ROOT, snakemake

    workdir = tmp_path_factory.mktemp("demo")
    run = snakemake(workdir, "--profile", str(ROOT / "profiles" / "local"), "--cores", "2")
    (workdir / DEMO_OUTPUT).write_text(run.stdout + run.stderr)
    return workdir
