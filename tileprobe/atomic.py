"""Atomic outputs: a killed job must never leave a file that looks finished.

Everything tileprobe writes goes to a temporary sibling first and is renamed into place only once complete;
rename is atomic within one file system, so readers see either nothing or the whole result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A name beside `path` that says who is writing it (host and pid) and never collides with a result."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{socket.gethostname()}-{os.getpid()}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write a file or directory to; move it to `path` only if the block succeeds.

    An existing `path` is replaced. On error the temporary is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    _remove(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # os.replace cannot replace a non-empty directory: move the old one aside first.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporaries of `path` whose writer ran on this host and is gone (killed, crashed); return them.

    A writer killed with SIGKILL cannot clean up after itself; its rerun does. Temporaries of live writers and
    of other hosts (whose processes cannot be checked from here) are left alone.
    """
    path = Path(path)
    prefix = f".{path.name}.tmp-{socket.gethostname()}-"
    removed = []
    for candidate in path.parent.glob(f".{path.name}.tmp-*") if path.parent.is_dir() else []:
        pid = candidate.name[len(prefix):]
        if candidate.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            _remove(candidate)
            removed.append(candidate)
    return removed
