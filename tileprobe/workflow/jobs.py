"""One function per workflow rule: the glue between Snakemake's inputs and the library.

`scripts/*.py` only unpack the `snakemake` object and call these, so every rule's work is testable without
Snakemake.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pandas as pd

log = logging.getLogger("tileprobe")


def demo_data(sheet: str, params: dict) -> None:
    from tileprobe.demo.synthetic import make_demo

    written = make_demo(Path(sheet).parent, **params)
    assert Path(written) == Path(sheet), f"demo wrote {written}, workflow expected {sheet}"


def manifest(sheet: str, tasks: dict, out: str) -> None:
    from tileprobe.config.samples import read_samples, write_manifest

    samples = read_samples(sheet, tasks)
    write_manifest(samples, out)
    log.info("manifest: %d samples from %s", len(samples), sheet)


def tile(slide_path: str, mpp: float | None, tiling: dict, annotations: list[str], tiles_out: str, qc_out: str):
    from tileprobe.slides.registry import open_slide
    from tileprobe.tiling.grid import tile_slide
    from tileprobe.tiling.qc import render_qc
    from tileprobe.tiling.table import write_tiles

    with open_slide(slide_path, mpp=mpp) as slide, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # into the job's log: no tissue, mpp guessed from objective power
        result = tile_slide(slide, tiling, annotations[0] if annotations else None)
        meta = {
            "slide_path": str(slide_path),
            "slide_mpp": slide.mpp,
            "mpp_source": slide.mpp_source,  # sample sheet, metadata or objective power
            "dimensions": list(slide.dimensions),
            "tiling": tiling,
            "n_tiles": len(result.tiles),
            # the report lists flagged slides; tasks skip them with a warning
            "flags": ["no_tiles"] if result.tiles.empty else [],
        }
    for warning in caught:
        log.warning("%s", warning.message)
    if result.tiles.empty:
        log.warning("%s: no tile passed the tissue filter (min_tissue=%s); tasks will skip it",
                    slide_path, tiling.get("min_tissue"))
    write_tiles(result.tiles, tiles_out, meta)
    flag = " - NO TILES: check the tissue outline, min_tissue, or tissue: none" if result.tiles.empty else ""
    render_qc(result, qc_out, title=f"{Path(slide_path).name}: {len(result.tiles)} tiles{flag}")
    log.info("%s: %d tiles", slide_path, len(result.tiles))


def tile_shard(images: list[dict], shard: str, tiling: dict, tiles_out: str, qc_out: str) -> None:
    """One shard of an image collection: every image checked and sized, one table, one contact sheet."""
    from tileprobe.tiling.collection import tile_shard as check_images
    from tileprobe.tiling.qc import render_contact_sheet
    from tileprobe.tiling.table import write_tiles

    table, pixels = check_images(images, tiling["tile_px"], shard)
    bad = int((table["error"] != "").sum())
    meta = {"shard": shard, "tiling": tiling, "n_images": len(table), "n_unreadable": bad}
    write_tiles(table, tiles_out, meta)
    note = f", {bad} UNREADABLE (red crosses; see the log)" if bad else ""
    render_contact_sheet(table["slide"].tolist(), pixels, qc_out, title=f"{shard}: {len(table)} images{note}")
    log.info("%s: %d images, %d unreadable", shard, len(table), bad)


def embed_shard(tiles_path: str, tiling_name: str, tiling: dict, backbone_spec: dict, out: str, threads: int,
                views: int = 1) -> None:
    from tileprobe.atomic import remove_stale_temporaries
    from tileprobe.embed.backbone import default_device
    from tileprobe.embed.collection import embed_shard as embed_images
    from tileprobe.embed.load import load_backbone
    from tileprobe.embed.provenance import check_tiles
    from tileprobe.tiling.table import read_tiles

    check_tiles(tiles_path, tiling_name, tiling)
    for stale in remove_stale_temporaries(out):
        log.info("removed %s, left by a killed earlier try", stale)
    table, meta = read_tiles(tiles_path)
    backbone = load_backbone(backbone_spec, input_px=tiling["tile_px"], device=default_device())
    embed_images(table, meta, tiling["tile_px"], backbone, out, threads=threads, views=views,
                 provenance_extra={"tiling": tiling})


def embed(slide_path: str, mpp, tiles_path: str, tiling_name: str, tiling: dict, backbone: dict, out: str,
          threads: int, views: int = 1) -> None:
    from tileprobe.atomic import remove_stale_temporaries
    from tileprobe.embed.extract import embed_slide
    from tileprobe.embed.provenance import check_tiles

    # Tiles from a shared results dir must match this config's tiling; a killed earlier try left a temporary.
    check_tiles(tiles_path, tiling_name, tiling)
    for stale in remove_stale_temporaries(out):
        log.info("removed %s, left by a killed earlier try", stale)
    embed_slide(slide_path, tiles_path, tiling["tile_px"], backbone, out, mpp=mpp, threads=threads,
                provenance_extra={"tiling": tiling}, views=views)


def embed_batch(slides: list[dict], tiling_name: str, tiling: dict, backbone_spec: dict, out_dir: str,
                threads: int, views: int = 1) -> None:
    """Embed a batch of slides ({slide, path, mpp, tiles}) into `out_dir`/{slide}.zarr, the model loaded once.

    A slide that fails leaves `{slide}.error` with its message instead of a store, so only its own
    embed_from_batch job fails and every other slide of the batch is kept.
    """
    from tileprobe.atomic import atomic_path
    from tileprobe.embed.backbone import default_device
    from tileprobe.embed.extract import SlideJob, embed_slides
    from tileprobe.embed.load import load_backbone
    from tileprobe.embed.provenance import check_tiles
    from tileprobe.errors import TileprobeError

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    backbone = load_backbone(backbone_spec, input_px=tiling["tile_px"], device=default_device())
    failed = []
    for s in slides:
        try:
            check_tiles(s["tiles"], tiling_name, tiling)
            embed_slides([SlideJob(s["path"], s["tiles"], out / f"{s['slide']}.zarr", s["mpp"], {"tiling": tiling})],
                         tiling["tile_px"], backbone_spec, threads=threads, views=views, backbone=backbone)
        except TileprobeError as err:
            failed.append(s["slide"])
            log.error("%s: %s", s["slide"], err)
            with atomic_path(out / f"{s['slide']}.error") as tmp:
                Path(tmp).write_text(f"{err}\n")
    log.info("embedded %d of %d slides with %s loaded once", len(slides) - len(failed), len(slides),
             backbone.name)
    if failed and len(failed) == len(slides):
        raise TileprobeError(f"every slide of this batch failed ({', '.join(failed)}); the first said: "
                             f"{(out / f'{failed[0]}.error').read_text().strip()}")


def task_data(task_name: str, task: dict, samples: list[dict], tiles: dict[str, str], stores: dict[str, str],
              layer: str, evaluation: dict, rows=None):
    """One task's rows (X, y, groups) from one layer of its embedding stores and, at tile level, its slides' tile
    tables.

    `stores` maps each store's name (a slide, or a shard of a collection) to its path; `tiles` likewise maps a
    slide to its tile table (read at tile level only). `rows` (the stores' rows, in order, as one (rows, dim)
    array) replaces their view 0, e.g. with precomputed augmented copies. An image its shard could not read is
    skipped with a warning that names it.
    """
    from tileprobe.embed.store import open_embeddings, sample_features
    from tileprobe.learn.data import task_dataset
    from tileprobe.learn.evaluate import settings
    from tileprobe.tiling.table import read_tiles

    ds = open_embeddings(stores, layer)
    # view 0: the tile itself; other views are image-space augmentations
    features = sample_features(ds, layer, values=rows)
    sheet = skip_unreadable(task_name, pd.DataFrame(samples), ds.attrs["unreadable"])
    tables = {s: read_tiles(path)[0] for s, path in tiles.items()} if task["level"] == "tile" else {}
    return task_dataset({**task, "name": task_name}, sheet, features, tables, folds=settings(evaluation)["folds"])


def skip_unreadable(task_name: str, sheet: pd.DataFrame, unreadable: dict[str, str]) -> pd.DataFrame:
    """The sheet without images their shard could not read, each named in a warning with its error."""
    bad = sheet["slide"].astype(str).isin(list(unreadable))
    for image in sheet.loc[bad, "slide"].astype(str):
        log.warning("task %s: image %s skipped, it could not be read: %s", task_name, image, unreadable[image])
    return sheet.loc[~bad].reset_index(drop=True)


def head(task_name: str, task: dict, samples: list[dict], tiles: dict[str, str], stores: dict[str, str],
         backbone: str, layer: str, augmentation: str, head_name: str, evaluation: dict, out_dir: str,
         augmentation_spec: dict | None = None, augmented: str | None = None) -> None:
    from tileprobe.learn.train import run_task

    data = task_data(task_name, task, samples, tiles, stores, layer, evaluation)
    meta = {"task": task_name, "backbone": backbone, "layer": layer, "augmentation": augmentation,
            "head": head_name, "level": task["level"], "kind": task["kind"], "label": task["label"],
            **({"event": task["event"]} if task.get("event") else {})}
    augment = None
    if augmentation_spec:
        meta["augmentation_spec"] = augmentation_spec
        augment = head_augment(task_name, task, samples, tiles, stores, layer, evaluation, data,
                               augmentation_spec, augmented)
    run_task(data, head_name, evaluation, out_dir, meta, augment=augment, calibrate=task.get("calibrate"))


def finetune(task_name: str, task: dict, labels: list[dict], samples: list[dict], tiles: dict[str, str],
             stores: dict[str, str], backbone: str, backbone_spec: dict, tiling: dict, variant: str,
             evaluation: dict, settings: dict, out_dir: str, threads: int = 1) -> None:
    """Fine-tune `backbone` on the task's pixels: the rows (and so the folds) are the heads' rows, read from the
    same stores; finished folds are kept, so a killed job resumes after the last of them."""
    from tileprobe.finetune.pixels import task_pixels
    from tileprobe.learn.train import run_task
    from tileprobe.tiling.table import read_tiles

    data = task_data(task_name, task, labels, tiles, stores, backbone_spec["layers"][0], evaluation)
    tables = {s: read_tiles(path)[0] for s, path in tiles.items()} if task["level"] == "tile" else {}
    data.pixels = task_pixels(data, task["level"], pd.DataFrame(samples), tables, tiling["tile_px"])
    head = f"finetune_{variant}"
    meta = {"task": task_name, "backbone": backbone, "layer": "final", "augmentation": "none", "head": head,
            "level": task["level"], "kind": task["kind"], "label": task["label"], "backbone_spec": backbone_spec,
            "finetune": settings}
    run_task(data, head, evaluation, out_dir, meta, threads=threads, resume=True,
             options={"backbone": backbone_spec, "settings": settings, "input_px": tiling["tile_px"]})


def head_augment(task_name, task, samples, tiles, stores, layer, evaluation, data, spec, augmented):
    """The augment(X, y, groups, seed) hook of one head: in-fold, or the precomputed copies of training rows."""
    import numpy as np

    from tileprobe import augment

    if not augment.is_per_tile(spec):
        return augment.in_fold(spec)
    # (copies, rows, dim), rows in the stores' order: copy c's task rows are built exactly like the task's own
    # rows (tile rows, or slide means), so they align with data.
    copies = np.concatenate([augment.load_copies(augmented, unit, layer) for unit in stores], axis=1)
    return augment.precomputed(data.X, np.stack([
        task_data(task_name, task, samples, tiles, stores, layer, evaluation, rows=copies[c]).X
        for c in range(spec["copies"])]))


def augment(name: str, spec: dict, stores: dict[str, str], layers: list[str], dask_cfg: dict, out: str) -> None:
    from tileprobe.augment.cluster import dask_cluster
    from tileprobe.augment.per_tile import augment_stores

    with dask_cluster(dask_cfg):
        augment_stores(stores, out, name, spec, layers=layers)
    log.info("%s: %s copies of %d slides written to %s", name, spec["kind"], len(stores), out)


def tiling_manifest(tiled: list, tiles: list[str], qc: list[str], out: str) -> None:
    from tileprobe.atomic import atomic_path
    from tileprobe.tiling.manifest import flagged, tiling_manifest

    table = tiling_manifest([tuple(pair) for pair in tiled], tiles, qc)
    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    for _, row in flagged(table).iterrows():
        log.warning("%s (tiling %s) is flagged %s: see %s", row["slide"], row["tiling"], row["flags"], row["qc"])
    log.info("%d slide(s) tiled, %d flagged", len(table), len(flagged(table)))


def report(metrics: list[str], slides: str, parquet: str, markdown: str, html: str | None = None,
           metric: str = "balanced_accuracy") -> None:
    from tileprobe.report.summary import summarize, write_summary

    write_summary(summarize(metrics, metric), parquet, markdown, html, slides=pd.read_parquet(slides))


def select(task_name: str, task: dict, samples: list[dict], tiles: dict[str, str], stores: dict[str, dict[str, str]],
           candidates: list[tuple[str, str]], metric: str, evaluation: dict, out: str) -> None:
    from tileprobe.atomic import atomic_path
    from tileprobe.learn.select import select as rank_backbones

    data = {(b, layer): task_data(task_name, task, samples, tiles, stores[b], layer, evaluation)
            for b, layer in candidates}
    ranked = rank_backbones(task_name, data, metric)
    with atomic_path(out) as tmp:
        ranked.to_parquet(tmp, index=False)
    top = ranked.iloc[0]
    log.info("selection on %s: %s/%s ranks first (%s %.3f)", task_name, top["backbone"], top["layer"], metric,
             top["proxy_score"])


def figure_scores(summary: str, layers: dict[str, list[str]], metric: str, bars: str, depth: str,
                  tradeoff: dict[str, str]) -> None:
    """Score bars and layer depth over all tasks; the trade-off figure once per task ({task: path})."""
    from tileprobe.report.plots.scores import layer_depth, metric_bars
    from tileprobe.report.plots.tradeoff import tradeoff as draw_tradeoff

    table = pd.read_parquet(summary)
    metric_bars(table, metric, bars)
    layer_depth(table, layers, metric, depth)
    for task, path in tradeoff.items():
        draw_tradeoff(table[table["task"] == task], metric, path)


def figure_curves(metrics: list[str], predictions: list[str], metric: str, curves: str, confusion: str,
                  reliability: str) -> None:
    import json

    from tileprobe.report.plots.curves import confusion as draw_confusion
    from tileprobe.report.plots.curves import roc_pr
    from tileprobe.report.plots.reliability import reliability as draw_reliability

    heads = [(json.loads(Path(m).read_text()), pd.read_parquet(p)) for m, p in zip(metrics, predictions)]
    roc_pr(heads, curves)
    draw_confusion(heads, metric, confusion)
    draw_reliability(heads, metric, reliability)


def heatmaps(task_name: str, task: dict, head_dir: str, tiles: dict[str, str], slides: dict[str, dict],
             out_dir: str) -> None:
    from tileprobe.atomic import atomic_path
    from tileprobe.report.heatmaps import task_heatmaps

    with atomic_path(out_dir) as tmp:  # a killed job leaves no half-filled directory that looks finished
        drawn = task_heatmaps(task_name, task, head_dir, tiles, slides, tmp)
    log.info("%s: %d heatmap(s) from %s", task_name, len(drawn), head_dir)


def figure_qc(qc: list[str], manifest: str, out: str) -> None:
    from tileprobe.report.plots.gallery import qc_gallery

    qc_gallery(qc, out, pd.read_parquet(manifest))


def figure_heatmaps(task_name: str, heatmaps_dir: str, out: str) -> None:
    from tileprobe.report.plots.gallery import qc_gallery

    qc_gallery(sorted(Path(heatmaps_dir).glob("*.png")), out, what=f"heatmaps of task {task_name}")


def predict_heatmaps(task_name: str, task: dict, slide: dict, prediction: str, model_dir: str, tiles: str,
                     stores: dict[str, str], layer: str, out_dir: str) -> None:
    """A new slide's heatmaps: the tile probabilities of its prediction, or the deployed abmil's attention over
    its stored tile embeddings (nothing re-embedded)."""
    from tileprobe.atomic import atomic_path
    from tileprobe.embed.store import open_embeddings, sample_features
    from tileprobe.learn.heads.registry import load_head
    from tileprobe.report.heatmaps import prediction_heatmaps

    attention = None
    if task["level"] != "tile":
        features = sample_features(open_embeddings(stores, layer), layer)[slide["slide"]]
        attention = load_head(model_dir).attention(features)
    with atomic_path(out_dir) as tmp:
        drawn = prediction_heatmaps(task_name, task, slide["slide"], pd.read_parquet(prediction), tiles, slide, tmp,
                                    attention=attention)
    log.info("%s: %d heatmap(s) of new slide %s", task_name, len(drawn), slide["slide"])


def figure_embedding(task_name: str, task: dict, samples: list[dict], tiles: dict[str, str],
                     stores: dict[str, dict[str, str]], candidates: list[tuple[str, str]], evaluation: dict,
                     out: str) -> None:
    from tileprobe.report.plots.embedding import embedding_map

    panels = {(b, layer): task_data(task_name, task, samples, tiles, stores[b], layer, evaluation)
              for b, layer in candidates}
    embedding_map(task_name, panels, out)


def figure_selection(selection: str, summary: str, metric: str, agreement_out: str, figure: str) -> None:
    from tileprobe.atomic import atomic_path
    from tileprobe.learn.select import agreement
    from tileprobe.report.plots.selection import selection_figure

    ranked, table = pd.read_parquet(selection), pd.read_parquet(summary)
    agreed = agreement(ranked, table, metric)
    with atomic_path(agreement_out) as tmp:
        agreed.to_parquet(tmp, index=False)
    selection_figure(ranked, table, agreed, figure)


def predict(task_name: str, task: dict, slide: str, model_dir: str, tiles: str, stores: dict[str, str], layer: str,
            out: str) -> None:
    """One new slide (or image) through a task's deployed head; `stores` names the one store that holds it."""
    from tileprobe.embed.store import open_embeddings, sample_features
    from tileprobe.learn.predict import PredictError, predict_slide, write_prediction
    from tileprobe.tiling.table import read_tiles

    ds = open_embeddings(stores, layer)
    if slide in ds.attrs["unreadable"]:
        raise PredictError(f"{slide}: nothing to predict, the image could not be read: {ds.attrs['unreadable'][slide]}")
    # View 0: the tile itself, as the head was trained on.
    features = sample_features(ds, layer)[slide]
    table = predict_slide(model_dir, task_name, task, slide, features,
                          read_tiles(tiles)[0] if task["level"] == "tile" else None)
    write_prediction(table, out)
    log.info("%s: %s predicted for %d row(s) by %s", slide, task_name, len(table), model_dir)


def figure_outcomes(metrics: list[str], predictions: list[str], scatter: str, km: str) -> None:
    """Predicted against true values of regression tasks and Kaplan-Meier curves of survival tasks; only value
    heads' predictions are read (a figure without a task of its kind says so)."""
    import json

    from tileprobe.report.kinds import CLASSIFICATION, family
    from tileprobe.report.plots.outcomes import kaplan_meier, predicted_vs_true

    heads = []
    for m, p in zip(metrics, predictions):
        meta = json.loads(Path(m).read_text())
        if family(meta.get("kind")) != CLASSIFICATION:
            heads.append((meta, pd.read_parquet(p)))
    predicted_vs_true(heads, scatter)
    kaplan_meier(heads, km)
