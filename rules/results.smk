# A results directory shared between runs, people and projects (tileprobe/workflow/shared_results.py says why):
# checked writable before any job, group-writable when the config asks, and written by one run at a time; the
# second run waits, then reuses what the first made. After failed jobs, a summary names each one's slide and log.

import sys

from tileprobe.workflow import shared_results as tp_shared


if config["group_writable"]:
    tp_shared.group_umask()  # in every process, jobs on cluster nodes included

if workflow.is_main_process and tp_shared.writes_results(sys.argv):
    tp_shared.check_writable(PATHS.root)
    if config["group_writable"]:
        tp_shared.group_writable(PATHS.root)
    tp_shared.hold_results_lock(PATHS.root)


onerror:
    from tileprobe.workflow.failures import write_summary

    summary = write_summary(log, PATHS.failures())
    if summary:
        print(summary, file=sys.stderr)
