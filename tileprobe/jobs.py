"""One function per workflow rule: the glue between Snakemake's inputs and the library.

`scripts/*.py` only unpack the `snakemake` object and call these, so every rule's work is testable without
Snakemake.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger("tileprobe")


def demo_data(sheet: str, params: dict) -> None:
    from tileprobe.demo import make_demo

    written = make_demo(Path(sheet).parent, **params)
    assert Path(written) == Path(sheet), f"demo wrote {written}, workflow expected {sheet}"


def manifest(sheet: str, tasks: dict, out: str) -> None:
    from tileprobe.samples import read_samples, write_manifest

    samples = read_samples(sheet, tasks)
    write_manifest(samples, out)
    log.info("manifest: %d samples from %s", len(samples), sheet)


def tile(slide_path: str, mpp: float | None, tiling: dict, annotations: list[str], tiles_out: str, qc_out: str):
    from tileprobe.qc import render_qc
    from tileprobe.slides import open_slide
    from tileprobe.tiling import tile_slide, write_tiles

    with open_slide(slide_path, mpp=mpp) as slide:
        result = tile_slide(slide, tiling, annotations[0] if annotations else None)
        meta = {
            "slide_path": str(slide_path),
            "slide_mpp": slide.mpp,
            "dimensions": list(slide.dimensions),
            "tiling": tiling,
        }
    if result.tiles.empty:
        log.warning("%s: no tile passed the tissue filter (min_tissue=%s); tasks will skip it",
                    slide_path, tiling.get("min_tissue"))
    write_tiles(result.tiles, tiles_out, meta)
    render_qc(result, qc_out, title=f"{Path(slide_path).name}: {len(result.tiles)} tiles")
    log.info("%s: %d tiles", slide_path, len(result.tiles))


def embed(slide_path: str, mpp, tiles_path: str, tiling: dict, backbone: dict, out: str, threads: int) -> None:
    from tileprobe.extract import embed_slide

    embed_slide(slide_path, tiles_path, tiling["tile_px"], backbone, out, mpp=mpp, threads=threads,
                provenance_extra={"tiling": tiling})


def head(task_name: str, task: dict, samples: list[dict], tiles: list[str], embeddings: list[str],
         backbone: str, layer: str, augmentation: str, head_name: str, evaluation: dict, out_dir: str) -> None:
    from tileprobe.data import task_dataset
    from tileprobe.evaluate import settings
    from tileprobe.store import load_layer
    from tileprobe.tiling import read_tiles
    from tileprobe.train import run_task

    sheet = pd.DataFrame(samples)
    slides = list(sheet["slide"])
    # View 0 is the tile itself; other views are image-space augmentations.
    features = {s: load_layer(path, layer)[0] for s, path in zip(slides, embeddings)}
    tables = {s: read_tiles(path)[0] for s, path in zip(slides, tiles)}
    data = task_dataset({**task, "name": task_name}, sheet, features, tables, folds=settings(evaluation)["folds"])
    meta = {"task": task_name, "backbone": backbone, "layer": layer, "augmentation": augmentation,
            "head": head_name, "level": task["level"], "kind": task["kind"], "label": task["label"]}
    run_task(data, head_name, evaluation, out_dir, meta)


def report(metrics: list[str], parquet: str, markdown: str) -> None:
    from tileprobe.report import summarize, write_summary

    write_summary(summarize(metrics), parquet, markdown)
