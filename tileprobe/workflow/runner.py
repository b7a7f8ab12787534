"""Run one workflow job: log to the rule's log file, and turn a user-fixable error into a plain message.

A TileprobeError already names the file, row or key and says the fix, so the job prints that (no traceback)
and exits non-zero; Snakemake then fails only this job, and `--keep-going` lets every other slide finish.
Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys

from tileprobe.errors import TileprobeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_label(rule: str, wildcards) -> str:
    described = ", ".join(f"{k}={v}" for k, v in dict(wildcards.items()).items())
    return f"{rule} ({described})" if described else rule


@contextlib.contextmanager
def job(snakemake):
    """Context for the body of a `script:`; `snakemake` is the object Snakemake injects."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if snakemake.log:
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    label = job_label(snakemake.rule, snakemake.wildcards)
    try:
        yield
    except TileprobeError as err:
        logging.getLogger("tileprobe").error("%s failed: %s", label, err)
        sys.exit(1)
