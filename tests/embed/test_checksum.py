"""Weights checksums: hashed once per file version, the cache keyed by path, size and mtime."""

import os

from tileprobe.embed import checksum


def test_a_checksum_is_hashed_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEPROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(checksum, "_KNOWN", {})
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    first = checksum.cached_sha256(weights)
    assert first == checksum.sha256_file(weights)
    [entry] = (tmp_path / "cache" / "sha256").iterdir()
    # Another process (an empty memo) takes the cached answer instead of reading the file again.
    entry.write_text("f" * 64 + "\n")
    monkeypatch.setattr(checksum, "_KNOWN", {})
    assert checksum.cached_sha256(weights) == "f" * 64


def test_a_file_changed_in_place_is_hashed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEPROBE_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"old")
    old = checksum.cached_sha256(weights)
    weights.write_bytes(b"new!")
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert checksum.cached_sha256(weights) == checksum.sha256_file(weights) != old


def test_a_cache_that_cannot_be_written_only_costs_a_hash(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("TILEPROBE_CACHE", str(blocker))
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    assert checksum.cached_sha256(weights) == checksum.sha256_file(weights)
