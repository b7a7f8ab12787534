"""A results directory shared between runs, people and projects.

Three things, done by the workflow's main process before it plans any job:
- `check_writable`: a results directory this run cannot write to stops the run with a message that says so,
  instead of the first job failing deep inside.
- `group_writable`: files and folders are created group-writable (umask 002, setgid folders) when the config
  asks, so colleagues in the same Unix group can rebuild or add to them.
- `hold_results_lock`: runs that write to one results directory take turns. Snakemake's own lock lives in each
  working directory's `.snakemake/`, so two projects would otherwise build (and delete, and re-create) the same
  stores at once. The second run waits, then plans against what the first one made, and so reuses it.
  The lock is an fcntl lock (works on NFS with lockd) held until the process exits, even by kill -9.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import socket
import stat
import sys
from pathlib import Path

from tileprobe.errors import TileprobeError

LOCK_NAME = ".tileprobe.lock"
_held: list = []  # open lock files: kept for the life of the process


class ResultsDirError(TileprobeError):
    """The results directory cannot be used; the message names it and says the fix."""


def check_writable(results: str | os.PathLike) -> Path:
    """Create `results` if needed and prove a file can be written in it (os.access is wrong for root and ACLs)."""
    results = Path(results)
    probe = results / f".write-test-{socket.gethostname()}-{os.getpid()}"
    try:
        results.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ResultsDirError(
            f"results directory {results} is not writable ({err.strerror or err}). Set `results:` in your config "
            "to a directory you can write to, or ask its owner for write access (e.g. `chmod -R g+w` for your "
            "group, with `group_writable: true` in every config that shares it)"
        ) from None
    return results


# Snakemake options that only read: a dry run beside a running job neither checks, nor waits, nor locks.
READ_ONLY_OPTIONS = {
    "--dry-run", "--dryrun", "--lint", "--dag", "--rulegraph", "--filegraph", "--d3dag", "--summary", "-S",
    "--detailed-summary", "-D", "--list-rules", "--list", "-l", "--list-target-rules", "--lt", "--unlock",
    "--list-changes", "--lc", "--list-code-changes", "--list-input-changes", "--list-params-changes",
    "--list-untracked", "--lu", "--print-compilation", "--containerize", "--version", "-v", "--help", "-h",
    "--report", "--archive", "--generate-unit-tests",
}


def writes_results(argv: list[str]) -> bool:
    """False when the snakemake command line only plans or inspects (`-n`, `-np`, `--lint`, `--dag`, ...)."""
    for arg in argv[1:]:
        if arg.split("=")[0] in READ_ONLY_OPTIONS:
            return False
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha() and "n" in arg[1:]:
            return False  # -n, -np, -pn
    return True


def group_umask() -> None:
    """From now on this process and its children create group-writable files (umask 002)."""
    os.umask(os.umask(0) & ~stat.S_IWGRP)


def group_writable(results: str | os.PathLike) -> None:
    """Group-writable files from now on; `results` itself group-writable and setgid, so new folders keep its group."""
    group_umask()
    results = Path(results)
    mode = results.stat().st_mode
    wanted = mode | stat.S_IRWXG | stat.S_ISGID
    if mode != wanted and results.stat().st_uid == os.geteuid():
        os.chmod(results, stat.S_IMODE(wanted))


def hold_results_lock(results: str | os.PathLike, say=None) -> None:
    """Block until no other run writes to `results`, then hold its lock until this process exits."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    path = Path(results) / LOCK_NAME
    handle = open(path, "a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        say(f"{results} is being written by {holder}; waiting for it to finish, then this run reuses what it made")
        fcntl.lockf(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} (cwd {os.getcwd()}, since {started})\n")
    handle.flush()
    _held.append(handle)
