"""Extraction for an image collection's shard: every readable image of the shard through one backbone, into one
store shaped (views, images, dim) with the image ids as its `image` coordinate.

Images are decoded in DataLoader workers while the main process runs the model, exactly as `tiling.collection`
read them when it checked the shard (`read_image`), so the contact sheet shows what the model saw. Image-space
views are seeded by the image's id, not its row, so an image's views do not depend on which shard holds it.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from tileprobe.embed.backbone import Backbone
from tileprobe.embed.extract import store_attrs
from tileprobe.embed.store import EmbeddingWriter
from tileprobe.embed.views import make_views
from tileprobe.embed.views import provenance as view_provenance
from tileprobe.errors import TileprobeError
from tileprobe.threads import limited_threads
from tileprobe.tiling.collection import read_image, readable
from tileprobe.tiling.shards import id_hash

log = logging.getLogger(__name__)


class ShardImages(Dataset):
    """The readable images of a shard table as uint8 tensors (views, tile_px, tile_px, 3), in table order."""

    def __init__(self, table: pd.DataFrame, tile_px: int, views: int = 1, view_seed: int = 0):
        self.rows = list(table[["slide", "path", "mpp"]].itertuples(index=False))
        self.tile_px, self.views, self.view_seed = int(tile_px), int(views), int(view_seed)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> torch.Tensor:
        image, path, mpp = self.rows[index]
        try:
            _, tile = read_image(path, None if pd.isna(mpp) else float(mpp), self.tile_px)
        except TileprobeError as err:
            raise TileprobeError(f"{image}: {err}; it was readable when the shard was tiled: has the file changed? "
                                 "Re-run to tile the shard again") from None
        stack = make_views(tile, self.views, self.view_seed, id_hash(image)) if self.views > 1 else tile[None]
        return torch.from_numpy(np.require(stack, np.uint8, ["C_CONTIGUOUS", "WRITEABLE"]))


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # workers decode images; the model's threads belong to the main process


def embed_shard(table: pd.DataFrame, meta: dict, tile_px: int, backbone: Backbone, out_store: str | Path,
                threads: int = 1, views: int = 1, view_seed: int = 0, provenance_extra: dict | None = None) -> Path:
    """Embed the readable images of one shard table into `out_store`; its unreadable ones go into the store's
    attrs (`unreadable`: {image: error}), so every reader of the store can name them."""
    images = readable(table)
    unreadable = dict(zip(table.loc[table["error"] != "", "slide"], table.loc[table["error"] != "", "error"]))
    dataset = ShardImages(images, tile_px, views, view_seed)
    extra = {**view_provenance(views, view_seed), "torch_threads": torch.get_num_threads(),
             **(provenance_extra or {}), "shard": meta.get("shard"), "unreadable": unreadable}
    attrs = store_attrs(backbone.provenance(), extra, len(images))
    workers = max(0, int(threads) - 1)
    loader = DataLoader(dataset, batch_size=max(1, backbone.batch_size // views), num_workers=workers,
                        worker_init_fn=_worker_init if workers else None, prefetch_factor=4 if workers else None,
                        pin_memory=backbone.device.type == "cuda")
    progress = tqdm(total=len(dataset), unit="image", desc=str(meta.get("shard", "")), file=sys.stderr,
                    mininterval=0.5 if sys.stderr.isatty() else 30.0)
    started = time.perf_counter()
    with limited_threads(threads), EmbeddingWriter(
        out_store, len(images), backbone.dims, n_views=views, axis="image",
        coords={"image": images["slide"].to_numpy(dtype=object)}, attrs=attrs,
    ) as out:
        start = 0
        try:
            for batch in loader:
                b = len(batch)
                feats = backbone.embed(batch.flatten(0, 1))
                for view in range(views):
                    out.write(view, start, {layer: a.reshape(b, views, -1)[:, view] for layer, a in feats.items()})
                start += b
                progress.update(b)
        except TileprobeError as err:
            raise _worker_error(err) from None
        finally:
            progress.close()
    seconds = time.perf_counter() - started
    log.info("shard %s: %d images x %d view(s) with %s in %.1f s (%.1f images/s), %d unreadable skipped",
             meta.get("shard"), len(images), views, backbone.name, seconds, len(images) / max(seconds, 1e-9),
             len(unreadable))
    return Path(out_store)


def _worker_error(err: TileprobeError) -> TileprobeError:
    """torch re-raises a worker's error with the worker's traceback as its message; keep only the message."""
    text, marker = str(err), f"{type(err).__module__}.{type(err).__qualname__}: "
    return type(err)(text.rsplit(marker, 1)[1].strip()) if marker in text else err
