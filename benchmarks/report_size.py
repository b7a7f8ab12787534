"""Size of the Snakemake report (issue 17, point 3): the demo's, and a synthetic cohort's of 500 slides.

    .venv/bin/python benchmarks/report_size.py                 # both: the demo (results/ of a finished run) and 500
    .venv/bin/python benchmarks/report_size.py --slides 500 --no-demo

Demo: `snakemake --profile profiles/local --report` over the finished run in --demo-dir (results/ must hold one;
the report is written to a temporary file, results/ is left alone).

Cohort: writes --slides synthetic QC pictures of the demo's size (1000 x 810 px RGB, tissue-like blobs under
noise: about 1.2 MB each as PNG) and a tiling manifest with a few flagged slides, then runs a real workflow
with `snakemake` in a temporary folder: one (shell) job per slide puts its QC picture under results/qc/wsi/ (as
rule `tile` does, not flagged for the report: each job still adds its line to the report's timeline), one job
draws the gallery with the product's `qc_gallery`, one writes the summary with the product's `write_summary`
(the demo's summary table when there is one, the cohort's manifest for its Slides section), and the demo's
other figures are copied in and flagged as the report's rules flag them. Then `snakemake --report`. Printed:
each report's size, and what embedding the QC pictures would add.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

SNAKEFILE = """
import json, shutil
import pandas as pd
from tileprobe.report.plots.gallery import qc_gallery
from tileprobe.report.summary import write_summary

SLIDES = json.load(open("slides.json"))
FIGURES = json.load(open("figures.json"))  # name -> file of the demo's other report figures

rule all:
    input: expand("results/qc/wsi/{slide}.png", slide=SLIDES), "results/report/figures/qc_gallery.jpg",
           "results/report/summary.html", expand("results/report/figures/{name}", name=FIGURES)

rule tile:  # the QC picture of one slide; rules/tiling.smk no longer flags it for the report
    input: "pictures/{slide}.png"
    output: "results/qc/wsi/{slide}.png"
    shell: "cp {input} {output}"  # a shell job: no Snakemake process of its own, as a run: block would start

rule figure_qc:
    input: qc=expand("results/qc/wsi/{slide}.png", slide=SLIDES), manifest="tiling_manifest.parquet"
    output: report("results/report/figures/qc_gallery.jpg", category="5. Quality control")
    run: qc_gallery(list(input.qc), output[0], pd.read_parquet(input.manifest))

rule report:
    input: summary="summary.parquet", manifest="tiling_manifest.parquet"
    output: parquet="results/report/summary.parquet", markdown="results/report/summary.md",
            html=report("results/report/summary.html", category="1. Summary")
    run:
        write_summary(pd.read_parquet(input.summary), output.parquet, output.markdown, output.html,
                      pd.read_parquet(input.manifest))

rule figures:  # the demo's other figures, flagged as rules/report.smk flags them (one job: they are not per slide)
    input: list(FIGURES.values())
    output: [report(f"results/report/figures/{name}", category="2. Figures") for name in FIGURES]
    run:
        for source, target in zip(input, output):
            shutil.copy(source, target)
"""


def qc_picture(path: Path, seed: int) -> None:
    """About the demo's QC picture: 1000 x 810, pale background, two noisy tissue blobs, a grid."""
    rng = np.random.default_rng(seed)
    h, w = 810, 1000
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.full((h, w, 3), 235, np.int16)
    for _ in range(2):
        cy, cx, r = rng.integers(200, 610), rng.integers(200, 800), rng.integers(150, 260)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        image[blob] = rng.integers(100, 200, 3)
    noise = rng.integers(-8, 9, (h, w, 3), dtype=np.int16) * (image < 230)  # tissue texture
    image += noise + rng.integers(-3, 4, (h, w, 3), dtype=np.int16)  # and the glass's
    image[::64] = image[:, ::64] = (40, 90, 200)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)


def demo_figures(demo: Path) -> dict[str, str]:
    """The demo's report figures but the gallery (which the cohort draws itself)."""
    found = sorted((demo / "results/report/figures").glob("*.png"))
    return {p.name: str(p) for p in found if not p.stem.startswith("qc_gallery")}


def summary_table(demo: Path) -> pd.DataFrame:
    table = demo / "results/report/summary.parquet"
    if table.is_file():
        return pd.read_parquet(table)
    return pd.DataFrame({"task": ["tumor"], "level": "slide", "kind": "binary", "backbone": "resnet18",
                         "layer": "final", "augmentation": "none", "head": "logreg", "balanced_accuracy": 0.8})


def snakemake(workdir: Path, *args: str, snakefile: Path | None = None) -> float:
    env = dict(os.environ, PATH=f"{SNAKEMAKE.parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    started = time.perf_counter()
    command = [str(SNAKEMAKE), *(["-s", str(snakefile)] if snakefile else []), "--directory", str(workdir), *args]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
    if run.returncode:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}")
    return time.perf_counter() - started


def demo_report(demo: Path, out: Path) -> dict:
    seconds = snakemake(demo, "--profile", str(ROOT / "profiles/local"), "--report", str(out),
                        snakefile=ROOT / "Snakefile")
    qc = [demo / p for p in pd.read_parquet(demo / "results/tiling_manifest.parquet")["qc"].unique()]
    gallery = next((demo / "results/report/figures").glob("qc_gallery.*"))
    return {"report_mb": out.stat().st_size / 1e6, "report_s": round(seconds, 1), "qc_pictures": len(qc),
            "qc_total_mb": sum(p.stat().st_size for p in qc) / 1e6, "gallery": gallery.name,
            "gallery_kb": gallery.stat().st_size / 1e3}


def cohort_report(n: int, demo: Path, folder: Path, flagged: int) -> dict:
    pictures = folder / "pictures"
    pictures.mkdir(parents=True)
    slides = [f"slide_{i:04d}" for i in range(n)]
    started = time.perf_counter()
    for i, slide in enumerate(slides):
        qc_picture(pictures / f"{slide}.png", i)
    write_s = time.perf_counter() - started
    bad = set(slides[:: max(1, n // flagged)][:flagged])
    pd.DataFrame({"tiling": "wsi", "slide": slides, "shard": None, "path": [f"slides/{s}.svs" for s in slides],
                  "n_tiles": [0 if s in bad else 500 for s in slides], "mpp": 0.5, "mpp_source": "sample sheet",
                  "flags": ["no_tiles" if s in bad else "" for s in slides], "error": "",
                  "qc": [f"results/qc/wsi/{s}.png" for s in slides]}).to_parquet(folder / "tiling_manifest.parquet")
    summary_table(demo).to_parquet(folder / "summary.parquet")
    (folder / "slides.json").write_text(json.dumps(slides))
    (folder / "figures.json").write_text(json.dumps(demo_figures(demo)))
    (folder / "Snakefile").write_text(SNAKEFILE)
    run_s = snakemake(folder, "--cores", "2", "all")
    report = folder / "report.html"
    report_s = snakemake(folder, "--report", str(report))
    gallery = folder / "results/report/figures/qc_gallery.jpg"
    qc_mb = sum(p.stat().st_size for p in (folder / "results/qc/wsi").glob("*.png")) / 1e6
    with Image.open(gallery) as image:
        gallery_px = image.size
    return {"slides": n, "flagged": len(bad), "qc_total_mb": qc_mb, "qc_mean_mb": qc_mb / n,
            "gallery_kb": gallery.stat().st_size / 1e3, "gallery_px": gallery_px,
            "summary_html_kb": (folder / "results/report/summary.html").stat().st_size / 1e3,
            "report_mb": report.stat().st_size / 1e6, "write_pictures_s": round(write_s, 1),
            "workflow_s": round(run_s, 1), "report_s": round(report_s, 1),
            "qc_embedded_would_add_mb": qc_mb * 4 / 3}  # base64 in a data URI: 4 bytes per 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=int, default=500)
    parser.add_argument("--flagged", type=int, default=5)
    parser.add_argument("--demo-dir", type=Path, default=ROOT, help="the folder holding a finished demo's results/")
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                      "load_avg": os.getloadavg()}))
    with tempfile.TemporaryDirectory(prefix="report_size_") as tmp:
        if not args.no_demo:
            print(json.dumps({"demo": demo_report(args.demo_dir, Path(tmp) / "demo_report.html")}, default=str))
        if args.slides:
            result = cohort_report(args.slides, args.demo_dir, Path(tmp) / "cohort", args.flagged)
            print(json.dumps({"cohort": result}, default=str))
    print(json.dumps({"load_avg_after": os.getloadavg()}))


if __name__ == "__main__":
    main()
