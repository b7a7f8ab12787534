import numpy as np
import pytest

from tests.support.slide_factory import tissue_image
from tileprobe.tiling.tissue import tissue_mask


def test_finds_the_tissue_rectangle():
    image = tissue_image(400, 300, (100, 50, 300, 250))
    mask = tissue_mask(image)
    assert mask.dtype == bool and mask.shape == (300, 400)
    expected = np.zeros((300, 400), bool)
    expected[50:250, 100:300] = True
    assert (mask != expected).mean() < 0.01
    assert mask[60:240, 110:290].all() and not mask[:40].any()


def test_blank_image_gives_an_empty_mask():
    assert not tissue_mask(np.full((200, 300, 3), 255, np.uint8)).any()


def test_noisy_background_is_not_tissue():
    rng = np.random.default_rng(0)
    glass = np.clip(235 + rng.normal(0, 4, (200, 300, 3)), 0, 255).astype(np.uint8)
    assert tissue_mask(glass).mean() < 0.001


def test_specks_removed_and_small_holes_filled():
    image = tissue_image(400, 400, (50, 50, 350, 350))
    image[200:203, 200:203] = 255  # a 9-px hole in the tissue
    image[10:12, 380:382] = (200, 60, 140)  # a 4-px speck on the glass
    mask = tissue_mask(image)
    assert mask[201, 201]
    assert not mask[10:12, 380:382].any()


def test_large_holes_are_kept():
    image = tissue_image(400, 400, (20, 20, 380, 380))
    image[150:250, 150:250] = 255  # 10 000 px, 6% of the image: a real gap
    assert not tissue_mask(image)[200, 200]


def test_pale_tissue_is_kept_beside_dark_tissue():
    # glass, pale stroma (saturation ~0.15) and dense nuclei (~0.6): plain Otsu would cut between the two tissues
    image = tissue_image(400, 300, (40, 40, 200, 260), colour=(240, 205, 225))
    image[40:260, 200:360] = (120, 50, 150)
    mask = tissue_mask(image)
    assert mask[50:250, 50:190].all() and mask[50:250, 210:350].all()
    assert not mask[:30].any() and not mask[:, 370:].any()


def _slide_with_pen_and_dirt():
    """Pink and purple tissue, a blue and a green pen stroke beside it, a black smudge on the glass."""
    image = tissue_image(400, 300, (40, 40, 200, 260))
    image[40:260, 200:260] = (110, 70, 170)  # haematoxylin-dense purple: tissue, not ink
    image[20:280, 300:312] = (30, 70, 200)  # blue marker
    image[20:32, 20:380] = (40, 150, 70)  # green marker across the top
    image[200:240, 330:370] = (30, 20, 45)  # black marker: dark, but tinted enough to pass Otsu
    return image


def test_pen_and_black_artefacts_count_as_tissue_unless_removed():
    image = _slide_with_pen_and_dirt()
    kept = tissue_mask(image)
    assert kept[100:250, 303:309].all() and kept[23:29, 100:300].all()  # ink is saturated: Otsu takes it
    cleaned = tissue_mask(image, remove=["pen", "black"])
    assert not cleaned[:, 295:].any() and not cleaned[:35].any()
    assert cleaned[45:255, 45:195].all() and cleaned[45:255, 205:255].all()  # pink and purple tissue stay


def test_only_the_named_artefacts_are_removed():
    image = _slide_with_pen_and_dirt()
    assert tissue_mask(image)[205:235, 335:365].all()
    no_pen = tissue_mask(image, remove=["pen"])
    assert not no_pen[100:250, 303:309].any() and no_pen[205:235, 335:365].all()
    no_black = tissue_mask(image, remove=["black"])
    assert no_black[100:190, 303:309].all() and not no_black[200:240, 330:370].any()


def test_unknown_artefact_is_an_error():
    with pytest.raises(ValueError, match="pen"):
        tissue_mask(np.zeros((10, 10, 3), np.uint8), remove=["glitter"])
