"""Where every result lives under one results directory: the one place the layout is written down.

Each method takes the names that key a result and returns its path. Called with values it names one file;
called with Snakemake wildcards (`paths.tiles("{tiling}", "{slide}")`) the same method gives a rule's pattern,
so rules, input functions and jobs all build paths from one template and never parse names back out of them.

Stdlib only: the Snakefile imports this while it is parsed.
"""

from __future__ import annotations

import os

# The files one head's directory holds (tileprobe.learn.train writes them under these names).
HEAD_FILES = {"metrics": "metrics.json", "predictions": "predictions.parquet", "model": "model"}
SUMMARY_FORMATS = ("parquet", "md", "html")


class ResultPaths:
    """Paths of the results under `root` (the config's `results`)."""

    def __init__(self, root: str | os.PathLike):
        self.root = str(root).rstrip("/")

    def _under(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    # Sheets and manifests

    def demo_dir(self) -> str:
        return self._under("demo")

    def demo_sheet(self) -> str:
        return self._under("demo", "samples.tsv")

    def manifest(self) -> str:
        return self._under("manifest.parquet")

    def tiling_manifest(self) -> str:
        return self._under("tiling_manifest.parquet")

    # Tiling

    def tiles(self, tiling: str, slide: str) -> str:
        return self._under("tiles", tiling, f"{slide}.parquet")

    def qc(self, tiling: str, slide: str) -> str:
        return self._under("qc", tiling, f"{slide}.png")

    # Embeddings: keyed by what made them (tiling, backbone), never by task

    def embeddings(self, tiling: str, backbone: str, slide: str) -> str:
        return self._under("embeddings", tiling, backbone, f"{slide}.zarr")

    def embedding_batch(self, tiling: str, backbone: str, batch: str) -> str:
        """A batch job's folder of stores, each moved to `embeddings(...)` afterwards (a temporary)."""
        return self._under("embedding_batches", tiling, backbone, batch)

    def augmented(self, tiling: str, backbone: str, augmentation: str) -> str:
        return self._under("augmented", tiling, backbone, f"{augmentation}.zarr")

    # Heads, selection, deployment

    def head_dir(self, task: str, backbone: str, layer: str, augmentation: str, head: str) -> str:
        return self._under("heads", task, backbone, layer, augmentation, head)

    def head_file(self, kind: str, task: str, backbone: str, layer: str, augmentation: str, head: str) -> str:
        """One of HEAD_FILES in a head's directory: `metrics` (written last: the directory is complete),
        `predictions` (out-of-fold) or `model` (the refit head, a directory)."""
        return f"{self.head_dir(task, backbone, layer, augmentation, head)}/{HEAD_FILES[kind]}"

    def heatmaps(self, task: str) -> str:
        """One task's heatmaps: a PNG per slide (and per class for a multiclass tile task)."""
        return self._under("heatmaps", task)

    def predict_heatmaps(self, task: str, slide: str) -> str:
        """A new slide's heatmaps under `predict:` (a directory: one PNG, or one per class)."""
        return self._under("heatmaps", "predict", task, slide)

    def selection(self, task: str) -> str:
        return self._under("selection", f"{task}.parquet")

    def predict(self, task: str, slide: str) -> str:
        return self._under("predict", task, f"{slide}.parquet")

    # Report

    def summary(self, fmt: str) -> str:
        if fmt not in SUMMARY_FORMATS:
            raise ValueError(f"no summary as {fmt!r}: one of {', '.join(SUMMARY_FORMATS)}")
        return self._under("report", f"summary.{fmt}")

    def selection_agreement(self) -> str:
        return self._under("report", "selection_agreement.parquet")

    def figure(self, name: str, ext: str = "png") -> str:
        """A report figure: PNG unless `ext` says otherwise (the QC gallery is a JPEG of thumbnails)."""
        return self._under("report", "figures", f"{name}.{ext}")

    # Logs and benchmarks: one per job, under the rule's name, then the job's keys

    def log(self, *keys: str) -> str:
        return self._under("logs", *keys[:-1], f"{keys[-1]}.log")

    def benchmark(self, *keys: str) -> str:
        return self._under("benchmarks", *keys[:-1], f"{keys[-1]}.tsv")

    def benchmark_dir(self) -> str:
        """Every benchmark file, read back by the timing figure."""
        return self._under("benchmarks")

    def dask_logs(self) -> str:
        return self._under("logs", "dask")

    def failures(self) -> str:
        """The failed jobs of the last run, each with its input, log and error."""
        return self._under("logs", "failures.txt")
