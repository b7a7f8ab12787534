"""Image collections (`mode: whole`) in shards: many images per job, per tile table and per embedding store.

An image's shard follows from its id alone, so adding images to the sheet rebuilds only the shards they land in.
The ids' hashes form a binary tree: a shard is the set of images whose hash starts with the same bits, and a
shard that would hold more than `shard_size` images splits in two by the next bit. Adding one image changes
only its own leaf (which may split); every other shard keeps exactly its images. Shard sizes fall between about
half of `shard_size` and `shard_size`.

    shards = assign_shards(["img1", "img2", ...], shard_size=1000)   # {"shard_0": [...], "shard_1": [...]}
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

# Hash bits a shard name can use: 2**40 leaves, far beyond any collection, so splitting always ends.
HASH_BITS = 40
PREFIXES = ("shard", "predict")  # training images, and new images to predict (never mixed with training)
PATTERN = rf"(?:{'|'.join(PREFIXES)})_(?:all|[01]{{1,{HASH_BITS}}})"


def id_hash(image: str) -> int:
    """The first HASH_BITS bits of the sha1 of an image id: stable across runs, machines and Python versions."""
    return int.from_bytes(hashlib.sha1(image.encode()).digest()[:8], "big") >> (64 - HASH_BITS)


def assign_shards(images, shard_size: int, prefix: str = "shard") -> dict[str, list[str]]:
    """{shard name: sorted image ids} for unique `images`; names are `{prefix}_{bits}` (`{prefix}_all` when one
    shard holds them all). Order inside a shard is by id, so reordering the sheet changes nothing."""
    if prefix not in PREFIXES:
        raise ValueError(f"shard prefix must be one of {PREFIXES}, got {prefix!r}")
    if int(shard_size) < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    ids = sorted(set(map(str, images)))
    if not ids:
        return {}
    hashes = np.array([id_hash(i) for i in ids], dtype=np.uint64)
    names = np.array(ids, dtype=object)
    out: dict[str, list[str]] = {}

    def split(members: np.ndarray, bits: str) -> None:
        if len(members) <= shard_size or len(bits) == HASH_BITS:
            out[f"{prefix}_{bits or 'all'}"] = sorted(names[members])
            return
        bit = (hashes[members] >> np.uint64(HASH_BITS - 1 - len(bits))) & np.uint64(1)
        for value in (0, 1):
            part = members[bit == value]
            if len(part):
                split(part, bits + str(value))

    split(np.arange(len(ids)), "")
    return dict(sorted(out.items()))


def is_shard_name(name: str) -> bool:
    return re.fullmatch(PATTERN, name) is not None
