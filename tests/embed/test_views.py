"""Image-space views: view 0 is the tile, the others are seeded augmentations that depend only on (seed, tile)."""

import numpy as np

from tileprobe.embed.views import augment, make_views, view_rng


def tile(seed=0, px=32):
    yy, xx = np.mgrid[0:px, 0:px]
    base = np.stack([xx * 6, yy * 6, (xx + yy) * 3], axis=-1) % 256
    return (base + np.random.default_rng(seed).integers(0, 20, base.shape)).clip(0, 255).astype(np.uint8)


def test_view_zero_is_the_tile_and_others_differ():
    t = tile()
    views = make_views(t, 4, seed=0, index=5)
    assert views.shape == (4, 32, 32, 3) and views.dtype == np.uint8
    np.testing.assert_array_equal(views[0], t)
    for v in views[1:]:
        assert not np.array_equal(v, t)
    assert len({v.tobytes() for v in views}) == 4


def test_views_are_seeded_by_seed_tile_and_view():
    t = tile()
    np.testing.assert_array_equal(make_views(t, 3, 0, 7), make_views(t, 3, 0, 7))
    assert not np.array_equal(make_views(t, 3, 0, 7)[1], make_views(t, 3, 1, 7)[1])
    assert not np.array_equal(make_views(t, 3, 0, 7)[1], make_views(t, 3, 0, 8)[1])
    # Asking for more views does not change the earlier ones.
    np.testing.assert_array_equal(make_views(t, 2, 0, 7), make_views(t, 5, 0, 7)[:2])


def test_augmentations_keep_the_tile_recognisable():
    flat = np.full((16, 16, 3), (180, 90, 160), np.uint8)
    for view in range(1, 20):
        out = augment(flat, view_rng(0, 0, view)).astype(int)
        assert out.std(axis=(0, 1)).max() < 1.0  # flips and rotations keep a flat tile flat
        assert np.abs(out.mean(axis=(0, 1)) - flat[0, 0]).max() < 40  # colour/stain jitter is mild
    # Geometry: some view is a flip or rotation (its sorted pixels match, its layout does not).
    t = tile()
    moved = [augment(t, view_rng(0, 0, v)) for v in range(1, 9)]
    assert any(not np.allclose(m.astype(int), t.astype(int), atol=40) for m in moved)
