"""Issue 17, point 3: the Snakemake report stays light. Which outputs go into it is decided by the rules' report()
flags, so this reads them from the parsed workflow: none is a per-slide (or per-shard) QC picture, and none has a
wildcard that grows with the cohort, so the report holds a fixed set of files per task however many slides."""

import json
import re
import subprocess
import sys

from tests.support.runner import ROOT
from tileprobe.workflow.paths import ResultPaths

# Parses the workflow through Snakemake's own command line in this process (`--list-rules`: no DAG is built),
# then writes every rule's outputs flagged for the report.
PROBE = """
import json, sys
import snakemake.api  # noqa: F401 (imports snakemake.workflow in its own order)
import snakemake.workflow as smw
from snakemake.cli import main
from snakemake.io import is_flagged

made = []
init = smw.Workflow.__init__
def capture(self, *args, **kwargs):
    init(self, *args, **kwargs)
    made.append(self)
smw.Workflow.__init__ = capture
out, sys.argv = sys.argv[1], ["snakemake", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
with open(out, "w") as f:
    json.dump({r.name: [str(o) for o in r.output if is_flagged(o, "report")] for r in made[0].rules}, f)
"""


def report_outputs(tmp_path) -> dict[str, list[str]]:
    out = tmp_path / "flagged.json"
    command = [sys.executable, "-c", PROBE, str(out), "-s", str(ROOT / "Snakefile"), "--directory",
               str(tmp_path / "run"), "--list-rules"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(out.read_text())


def test_the_report_embeds_no_qc_picture_and_nothing_per_slide(tmp_path):
    flagged = report_outputs(tmp_path)
    assert {"tile", "tile_shard", "figure_qc", "report"} <= set(flagged)  # the workflow was parsed
    assert flagged["tile"] == [] and flagged["tile_shard"] == []
    paths = ResultPaths("results")
    qc_root = paths.qc("{tiling}", "{slide}").split("{", 1)[0]  # results/qc/
    everything = [p for outputs in flagged.values() for p in outputs]
    assert everything and not [p for p in everything if p.startswith(qc_root)]
    # Only the gallery stands for the QC pictures: a JPEG, one file whatever the cohort.
    assert flagged["figure_qc"] == [paths.figure("qc_gallery", "jpg")]
    # No report output is keyed by a slide, shard, tiling or any other per-cohort wildcard: at most one per task.
    wildcards = {name.split(",")[0] for p in everything for name in re.findall(r"{([^}]+)}", p)}
    assert wildcards <= {"task"}, wildcards
