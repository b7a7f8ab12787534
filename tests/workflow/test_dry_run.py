"""Parsing the workflow stays light: a dry run of the demo imports no deep-learning stack."""

import json
import subprocess
import sys

from tests.support.runner import ROOT

# Runs Snakemake's own command line in this process, then reports which heavy modules the parse imported.
PROBE = """
import json, sys
from snakemake.cli import main
out, sys.argv = sys.argv[1], ["snakemake", *sys.argv[2:]]
try:
    main()
finally:
    with open(out, "w") as f:
        json.dump(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "timm")), f)
"""


def test_dry_run_of_the_demo_imports_no_torch(tmp_path):
    report = tmp_path / "heavy_modules.json"
    command = [sys.executable, "-c", PROBE, str(report), "-s", str(ROOT / "Snakefile"), "--directory",
               str(tmp_path / "run"), "-n", "--cores", "1", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Building DAG of jobs" in result.stdout + result.stderr  # the workflow was parsed, not just the CLI
    assert json.loads(report.read_text()) == []
