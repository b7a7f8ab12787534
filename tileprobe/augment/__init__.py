"""Feature-space augmentation on frozen embeddings (after Nivaggioli et al., arXiv 2303.05180).

Two families, by what an augmented row may depend on:

- Per-tile (`views`, `dropout`, `per_tile`): a copy is a function of one tile alone, so it is precomputed once
  with Dask, chunk by chunk over the embedding stores, into results/augmented/{tiling}/{backbone}/{name}.zarr.
- In-fold (`gaussian_noise`, `mixup`, `interpolate`, `balance`, `in_fold`): they use other rows, so they run
  on the training part of each cross-validation fold and never see the test part.

Every augmentation takes `copies` and `seed` (`specs`). `cluster` picks the Dask scheduler.
"""

from tileprobe.augment.in_fold import IN_FOLD, in_fold, precomputed
from tileprobe.augment.per_tile import augment_array, augment_stores, load_copies
from tileprobe.augment.specs import (
                                     KINDS,
                                     NONE,
                                     PER_TILE,
                                     Augment,
                                     AugmentError,
                                     check_augmentations,
                                     for_task,
                                     is_per_tile,
                                     resolve,
)

__all__ = ["IN_FOLD", "KINDS", "NONE", "PER_TILE", "Augment", "AugmentError", "augment_array", "augment_stores",
           "check_augmentations", "for_task", "in_fold", "is_per_tile", "load_copies", "precomputed", "resolve"]
