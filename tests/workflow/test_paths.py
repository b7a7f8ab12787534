"""The result layout: one template per result, the same for values and Snakemake wildcard patterns."""

import re
import subprocess
import sys

import pytest
from snakemake.io import apply_wildcards, regex_from_filepattern

from tests.support.runner import ROOT
from tileprobe.workflow.paths import HEAD_FILES, ResultPaths

P = ResultPaths("results/")  # a trailing slash, as a config may give it
HEAD = ("{task}", "{backbone}", "{layer}", "{augmentation}", "{head}")

# The layout README.md "Outputs" documents (and rule logs and benchmarks), spelled out once more on purpose.
LAYOUT = {
    "results/manifest.parquet": P.manifest(),
    "results/tiling_manifest.parquet": P.tiling_manifest(),
    "results/demo/samples.tsv": P.demo_sheet(),
    "results/tiles/{tiling}/{slide}.parquet": P.tiles("{tiling}", "{slide}"),
    "results/qc/{tiling}/{slide}.png": P.qc("{tiling}", "{slide}"),
    "results/embeddings/{tiling}/{backbone}/{slide}.zarr": P.embeddings("{tiling}", "{backbone}", "{slide}"),
    "results/embedding_batches/{tiling}/{backbone}/{batch}": P.embedding_batch("{tiling}", "{backbone}", "{batch}"),
    "results/augmented/{tiling}/{backbone}/{augmentation}.zarr":
        P.augmented("{tiling}", "{backbone}", "{augmentation}"),
    "results/heads/{task}/{backbone}/{layer}/{augmentation}/{head}": P.head_dir(*HEAD),
    "results/heads/{task}/{backbone}/{layer}/{augmentation}/{head}/metrics.json": P.head_file("metrics", *HEAD),
    "results/heads/{task}/{backbone}/{layer}/{augmentation}/{head}/predictions.parquet":
        P.head_file("predictions", *HEAD),
    "results/heads/{task}/{backbone}/{layer}/{augmentation}/{head}/model": P.head_file("model", *HEAD),
    "results/selection/{task}.parquet": P.selection("{task}"),
    "results/predict/{task}/{slide}.parquet": P.predict("{task}", "{slide}"),
    "results/report/summary.parquet": P.summary("parquet"),
    "results/report/summary.md": P.summary("md"),
    "results/report/summary.html": P.summary("html"),
    "results/report/selection_agreement.parquet": P.selection_agreement(),
    "results/report/figures/{name}.png": P.figure("{name}"),
    "results/report/figures/qc_gallery.jpg": P.figure("qc_gallery", "jpg"),
    "results/logs/manifest.log": P.log("manifest"),
    "results/logs/tile/{tiling}/{slide}.log": P.log("tile", "{tiling}", "{slide}"),
    "results/benchmarks/embed/{tiling}/{backbone}/batch-{batch}.tsv":
        P.benchmark("embed", "{tiling}", "{backbone}", "batch-{batch}"),
    "results/benchmarks": P.benchmark_dir(),
    "results/logs/dask": P.dask_logs(),
    "results/logs/failures.txt": P.failures(),
}


@pytest.mark.parametrize("expected", LAYOUT)
def test_each_template_is_the_documented_layout(expected):
    assert LAYOUT[expected] == expected


def test_readme_documents_the_same_templates():
    outputs = (ROOT / "README.md").read_text().split("## Outputs", 1)[1].split("```")[1]
    documented = set(re.findall(r"results/\S+", outputs))
    for template in ("results/manifest.parquet", "results/tiling_manifest.parquet",
                     "results/tiles/{tiling}/{slide}.parquet", "results/qc/{tiling}/{slide}.png",
                     "results/embeddings/{tiling}/{backbone}/{slide}.zarr",
                     "results/augmented/{tiling}/{backbone}/{augmentation}.zarr",
                     "results/predict/{task}/{slide}.parquet"):
        assert template in LAYOUT and template in documented, template
    assert P.head_dir(*HEAD) + "/" in documented
    assert all(name.rstrip("/") in outputs for name in HEAD_FILES.values())


# Values with the characters a slide id may hold (dots, dashes, underscores).
VALUES = {"tiling": "wsi", "backbone": "uni-2_h", "slide": "case.01_A-2", "task": "tumor", "layer": "blocks-6",
          "augmentation": "none", "head": "logreg", "batch": "predict-0003", "name": "embedding_tumor"}
CALLS = [
    (P.tiles, ("tiling", "slide")),
    (P.qc, ("tiling", "slide")),
    (P.embeddings, ("tiling", "backbone", "slide")),
    (P.embedding_batch, ("tiling", "backbone", "batch")),
    (P.augmented, ("tiling", "backbone", "augmentation")),
    (P.head_dir, ("task", "backbone", "layer", "augmentation", "head")),
    (lambda *keys: P.head_file("metrics", *keys), ("task", "backbone", "layer", "augmentation", "head")),
    (P.selection, ("task",)),
    (P.predict, ("task", "slide")),
    (P.figure, ("name",)),
    (lambda *keys: P.log("embed", *keys), ("tiling", "backbone", "slide")),
    (lambda *keys: P.benchmark("head", *keys), ("task", "backbone", "layer", "augmentation", "head")),
]


@pytest.mark.parametrize("method, names", CALLS)
def test_a_wildcard_pattern_round_trips_with_the_path_of_values(method, names):
    pattern, path = method(*(f"{{{n}}}" for n in names)), method(*(VALUES[n] for n in names))
    values = {n: VALUES[n] for n in names}
    # Filling the pattern's wildcards gives the path built from values, and matching the path gives them back.
    assert apply_wildcards(pattern, values) == path
    assert re.fullmatch(regex_from_filepattern(pattern), path).groupdict() == values


def test_an_unknown_summary_format_is_refused():
    with pytest.raises(ValueError, match="parquet, md, html"):
        P.summary("csv")


def test_importing_the_paths_module_is_stdlib_only():
    heavy = ("numpy", "pandas", "torch", "snakemake", "yaml")
    probe = f"import sys, tileprobe.workflow.paths; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
