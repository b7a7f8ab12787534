import numpy as np
from slide_factory import tissue_image

from tileprobe.tissue import tissue_mask


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
