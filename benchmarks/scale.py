"""Scale: job counts, workflow overhead and memory as collections grow, measured in one run (issue 13).

    .venv/bin/python benchmarks/scale.py                         # every part; JSON on stdout
    .venv/bin/python benchmarks/scale.py --parts collection dry_run_images

Parts, each a ratio or a count:
- collection: N synthetic PNGs of 100-160 px (default 5,000) through `snakemake --cores 2` end to end (one CNN
  backbone at 224 px, one image-level task, logreg, the report): wall time against reading + embedding the same
  images in one process (the code path the shard job runs, model loaded once) plus the head job's own time, and
  the number of jobs. Targets: at most 1.5x and at most 20 jobs.
- dry_run_images: `snakemake -n` over a 100,000-image collection (a sheet of links to a few PNGs): seconds and
  peak memory (targets: 20 s, 1.5 GB).
- dry_run_slides: `snakemake -n` over a 10,000-slide cohort (links to a few small pyramidal TIFFs, two backbones,
  one slide task): seconds, peak memory and jobs (targets: 60 s, 2 GB).
- head: the head job (`workflow.jobs.head`, logreg, slide level) of a 10,000-slide task against a 1,000-slide one:
  time and peak memory ratios, against the 10x data (it should grow no faster than the data).
- wsi: whole-slide extraction through the block reader (benchmarks/scale_wsi.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
BACKBONE = {"model": "resnet18", "weights": "none", "batch_size": 64}


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run(command: list[str], cwd: Path) -> tuple[float, int, subprocess.CompletedProcess]:
    """(seconds, peak RSS in bytes of the child, result): the child's own peak, not this process's."""
    wrapper = [sys.executable, "-c", "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
               "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(r.returncode)", *command]
    started = time.perf_counter()
    result = subprocess.run(wrapper, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = [int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_KB")]
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, (peak[0] if peak else 0) * 1024, result


def snakemake_args(workdir: Path, config: Path, *args: str) -> list[str]:
    return [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--configfile", str(config),
            *args]


def job_count(output: str) -> int:
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] == ["total"] and len(parts) == 2 and parts[1].isdigit():
            return int(parts[1])
    return 0


def write_collection(folder: Path, n: int, seed: int = 0) -> Path:
    """`n` PNGs of 100-160 px, reddish or bluish texture (the label), a patient per image; returns the sheet."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["slide\tpath\tpatient\tcolour"]
    for i in range(n):
        w, h = rng.integers(100, 161, 2)
        base = np.array([200, 70, 90]) if i % 2 else np.array([80, 90, 200])
        pixels = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"cell_{i:06d}.png")
        lines.append(f"cell_{i:06d}\t{folder / f'cell_{i:06d}.png'}\tp{i // 2}\t{'red' if i % 2 else 'blue'}")
    sheet = folder.parent / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


def collection_config(path: Path, sheet: Path, results: Path, tile_px: int = 224, **tiling) -> Path:
    config = {
        "results": str(results), "samples": str(sheet),
        "tilings": {"cells": {"mode": "whole", "tile_px": tile_px, "tissue": "none", **tiling}},
        "backbones": {"r18": BACKBONE},
        "tasks": {"colour": {"level": "image", "label": "colour", "kind": "binary", "tiling": "cells",
                             "backbones": ["r18"], "heads": ["logreg"]}},
        "evaluation": {"folds": 3, "repeats": 1, "seed": 0, "bootstrap": 200},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def in_process_embedding(sheet: Path, tile_px: int, threads: int = 2) -> float:
    """Seconds to read and embed every image of the sheet in this process, model loaded once, through the code
    path a shard job runs (tiling.collection.read_image, the shard's DataLoader, the backbone)."""
    import pandas as pd
    import torch

    from tileprobe.embed.collection import ShardImages
    from tileprobe.embed.load import load_backbone
    from tileprobe.threads import limited_threads

    table = pd.read_csv(sheet, sep="\t").assign(mpp=np.nan)
    started = time.perf_counter()
    with limited_threads(threads):
        backbone = load_backbone(BACKBONE, input_px=tile_px, device="cpu")
        loader = torch.utils.data.DataLoader(ShardImages(table, tile_px), batch_size=BACKBONE["batch_size"],
                                             num_workers=threads - 1)
        for batch in loader:
            backbone.embed(batch.flatten(0, 1))
    return time.perf_counter() - started


def part_collection(work: Path, n: int) -> dict:
    sheet = write_collection(work / "cells/images", n)
    config = collection_config(work / "cells/config.yaml", sheet, work / "cells/results")
    seconds, _, result = run(snakemake_args(work / "cells", config, "--cores", "2", "--quiet", "rules"), work)
    jobs = job_count(result.stdout + result.stderr)
    head_tsv = next((work / "cells/results/benchmarks/head").rglob("*.tsv"))
    head_seconds = float(head_tsv.read_text().splitlines()[1].split("\t")[0])
    baseline = in_process_embedding(sheet, 224)
    return {"images": n, "snakemake_s": round(seconds, 1), "jobs": jobs, "in_process_read_embed_s": round(baseline, 1),
            "head_job_s": round(head_seconds, 1),
            "ratio": round(seconds / (baseline + head_seconds), 2), "targets": {"ratio": 1.5, "jobs": 20}}


def link_sheet(folder: Path, sources: list[Path], n: int, prefix: str, label: str) -> Path:
    """A sheet of `n` symbolic links to a few real files, as a big collection or cohort looks to the workflow."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"slide\tpath\tpatient\t{label}"]
    for i in range(n):
        link = folder / f"{prefix}_{i:06d}{sources[i % len(sources)].suffix}"
        if not link.exists():
            link.symlink_to(sources[i % len(sources)])
        lines.append(f"{prefix}_{i:06d}\t{link}\tp{i}\t{'a' if i % 2 else 'b'}")
    sheet = folder.parent / "samples.tsv"
    sheet.write_text("\n".join(lines) + "\n")
    return sheet


def part_dry_run_images(work: Path, n: int) -> dict:
    sources = [Path(p) for p in sorted((work / "cells/images").glob("*.png"))[:4]] or None
    if not sources:
        write_collection(work / "few/images", 4)
        sources = sorted((work / "few/images").glob("*.png"))
    sheet = link_sheet(work / "many/images", sources, n, "img", "colour")
    config = collection_config(work / "many/config.yaml", sheet, work / "many/results", tile_px=128)
    seconds, peak, result = run(snakemake_args(work / "many", config, "-n", "--cores", "2", "--quiet", "rules"), work)
    return {"images": n, "seconds": round(seconds, 1), "peak_gb": round(peak / 2**30, 2),
            "jobs": job_count(result.stdout + result.stderr), "targets": {"seconds": 20, "peak_gb": 1.5}}


def part_dry_run_slides(work: Path, n: int) -> dict:
    from tests.support.slide_factory import tissue_image, write_aperio

    sources = []
    for i in range(3):
        path = work / f"cohort/sources/s{i}.svs"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_aperio(path, tissue_image(2048, 1536, (200, 200, 1800, 1300)), mpp=0.5, downsamples=(1, 4))
        sources.append(path)
    sheet = link_sheet(work / "cohort/slides", sources, n, "slide", "tumor")
    config = {
        "results": str(work / "cohort/results"), "samples": str(sheet),
        "tilings": {"wsi": {"mode": "grid", "mpp": 1.0, "tile_px": 224}},
        "backbones": {"r18": BACKBONE, "r50": {**BACKBONE, "model": "resnet50"}},
        "tasks": {"tumor": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi",
                            "backbones": ["r18", "r50"], "heads": ["logreg"]}},
    }
    path = work / "cohort/config.yaml"
    path.write_text(yaml.safe_dump(config))
    seconds, peak, result = run(snakemake_args(work / "cohort", path, "-n", "--cores", "2", "--quiet", "rules"), work)
    return {"slides": n, "seconds": round(seconds, 1), "peak_gb": round(peak / 2**30, 2),
            "jobs": job_count(result.stdout + result.stderr), "targets": {"seconds": 60, "peak_gb": 2.0}}


def write_slide_stores(folder: Path, n: int, tiles: int, dim: int) -> tuple[list[dict], dict, dict]:
    """`n` slide stores of `tiles` x `dim` synthetic embeddings (two classes), as rule embed writes them."""
    from tileprobe.embed.store import EmbeddingWriter
    from tileprobe.tiling.grid import tile_table
    from tileprobe.tiling.table import write_tiles

    rng = np.random.default_rng(0)
    centre = rng.normal(size=(2, dim)) * 0.5
    samples, stores, tables = [], {}, {}
    for i in range(n):
        slide = f"s{i:06d}"
        store, table = folder / f"{slide}.zarr", folder / f"{slide}.parquet"
        if not store.exists():
            xy = np.arange(tiles)
            with EmbeddingWriter(store, tiles, {"final": dim}, coords={"x": xy, "y": xy},
                                 attrs={"model": "synthetic"}) as out:
                out.write(0, 0, {"final": centre[i % 2] + rng.normal(size=(tiles, dim))})
            write_tiles(tile_table(xy, xy, 0, 224, np.ones(tiles)), table, {})
        samples.append({"slide": slide, "patient": f"p{i}", "annotations": None, "group": None,
                        "tumor": "yes" if i % 2 else "no"})
        stores[slide], tables[slide] = str(store), str(table)
    return samples, stores, tables


def head_job(samples, stores, tables, out: Path) -> None:
    from tileprobe.workflow import jobs

    task = {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi", "heads": ["logreg"]}
    jobs.head("tumor", task, samples, tables, stores, "synthetic", "final", "none", "logreg",
              {"folds": 3, "repeats": 1, "seed": 0, "bootstrap": 200}, str(out))


def part_head(work: Path, small: int, large: int, tiles: int = 64, dim: int = 256) -> dict:
    out = {}
    for n in (small, large):
        samples, stores, tables = write_slide_stores(work / f"head/stores_{n}", n, tiles, dim)
        spec = work / f"head/job_{n}.json"
        spec.write_text(json.dumps([samples, stores, tables]))
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from benchmarks.scale import head_job; "
                "s, st, t = json.load(open(sys.argv[2])); head_job(s, st, t, sys.argv[3])")
        seconds, peak, _ = run([sys.executable, "-c", code, str(ROOT), str(spec), str(work / f"head/out_{n}")], work)
        out[n] = {"seconds": round(seconds, 1), "peak_gb": round(peak / 2**30, 3)}
    return {"slides": [small, large], "tiles_per_slide": tiles, "dim": dim, **{str(k): v for k, v in out.items()},
            "time_ratio": round(out[large]["seconds"] / out[small]["seconds"], 2),
            "memory_ratio": round(out[large]["peak_gb"] / out[small]["peak_gb"], 2), "data_ratio": large / small}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["collection", "dry_run_images", "dry_run_slides", "head", "wsi"])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dry-images", type=int, default=100_000)
    parser.add_argument("--dry-slides", type=int, default=10_000)
    parser.add_argument("--head-slides", type=int, nargs=2, default=[1000, 10_000])
    parser.add_argument("--work", type=Path, default=None, help="keep the data here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tileprobe-scale-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = {"machine": machine()}
        for part in args.parts:
            started = time.perf_counter()
            if part == "collection":
                report[part] = part_collection(work, args.images)
            elif part == "dry_run_images":
                report[part] = part_dry_run_images(work, args.dry_images)
            elif part == "dry_run_slides":
                report[part] = part_dry_run_slides(work, args.dry_slides)
            elif part == "head":
                report[part] = part_head(work, *args.head_slides)
            elif part == "wsi":
                from benchmarks.scale_wsi import measure

                report[part] = measure()
            print(f"{part}: {json.dumps(report[part])} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        report["machine_after"] = machine()
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    main()
