"""Checksums of weights files, hashed once per file version: what made a store's numbers is the checkpoint's
content, not its path, and a 1 GB checkpoint must not be re-read by every job that checks a store.

The cache is keyed by the file's resolved path, size and modification time, one small file per key under
`$TILEPROBE_CACHE` (default `$XDG_CACHE_HOME/tileprobe`, else `~/.cache/tileprobe`). A cache that cannot be
written (a read-only home) only costs a re-hash. Torch-free, so the Snakefile can use it at parse time.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from tileprobe.atomic import atomic_path

_SHA256 = re.compile(r"[0-9a-f]{64}")
# This process's answers by cache entry: a job checking 10,000 stores asks for one file's checksum 10,000 times.
_KNOWN: dict[Path, str] = {}


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hash a (possibly multi-GB) file without reading it into memory at once."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_dir() -> Path:
    if os.environ.get("TILEPROBE_CACHE"):
        return Path(os.environ["TILEPROBE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tileprobe"


def _cache_file(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha1(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    return cache_dir() / "sha256" / key


def cached_sha256(path: str | os.PathLike) -> str:
    """sha256 of `path`, from the cache when this path, size and mtime were hashed before."""
    path = Path(path).expanduser().resolve()
    entry = _cache_file(path)
    if entry in _KNOWN:
        return _KNOWN[entry]
    try:
        known = entry.read_text().strip()
        if _SHA256.fullmatch(known):
            _KNOWN[entry] = known
            return known
    except OSError:
        pass
    digest = _KNOWN[entry] = sha256_file(path)
    try:
        with atomic_path(entry) as tmp:
            tmp.write_text(digest + "\n")
    except OSError:
        pass
    return digest
