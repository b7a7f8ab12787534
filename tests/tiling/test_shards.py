"""Shards of an image collection: bounded in size, and stable when images are added (issue 13, point 1)."""

import pytest

from tileprobe.tiling.shards import assign_shards, is_shard_name


def members(shards):
    return {shard: frozenset(images) for shard, images in shards.items()}


def test_every_image_lands_in_exactly_one_shard_of_bounded_size():
    images = [f"img{i:05d}" for i in range(5000)]
    shards = assign_shards(images, shard_size=1000)
    flat = [i for part in shards.values() for i in part]
    assert sorted(flat) == sorted(images)
    sizes = [len(part) for part in shards.values()]
    assert max(sizes) <= 1000 and min(sizes) >= 200 and 5 <= len(shards) <= 12
    assert all(is_shard_name(name) for name in shards)
    assert assign_shards(images[::-1], 1000) == shards  # sheet order does not matter


def test_adding_a_few_images_rebuilds_only_the_shards_they_land_in():
    images = [f"cell_{i}" for i in range(3000)]
    before = members(assign_shards(images, shard_size=400))
    added = [f"new_{i}" for i in range(5)]
    after = members(assign_shards(images + added, shard_size=400))
    changed = {s for s in after if before.get(s) != after[s]}
    holding_new = {s for s, part in after.items() if part & set(added)}
    assert changed == holding_new  # every other shard keeps exactly its images, under its name
    assert len(changed) <= 5 and len(after) - len(changed) >= len(before) - 5
    gone = set(before) - set(after)  # at most the leaves that split when a new image made them too big
    assert all(any(new.startswith(old) for new in changed) for old in gone)


def test_small_collection_is_one_shard_and_predict_shards_are_apart():
    assert assign_shards(["b", "a"], 10) == {"shard_all": ["a", "b"]}
    assert list(assign_shards(["c"], 10, prefix="predict")) == ["predict_all"]
    assert assign_shards([], 10) == {}
    with pytest.raises(ValueError, match="shard_size"):
        assign_shards(["a"], 0)
