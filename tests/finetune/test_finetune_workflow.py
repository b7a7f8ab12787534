"""Rule finetune in a real run: the fine-tuned network's rows sit in the summary beside the heads', on the same
folds, and a rerun after a kill picks up its finished folds."""

import json

import pandas as pd
import pytest

from tests.support.runner import snakemake
from tests.support.tiny_project import BACKBONE, TASK, make_project, write_config

pytestmark = pytest.mark.workflow

SETTINGS = {"max_epochs": 2, "patience": 2, "batch_size": 4, "device": "cpu", "augment": True}


def test_fine_tuning_runs_beside_the_heads_with_their_folds(tmp_path):
    sheet = make_project(tmp_path / "data", n=8)
    results = tmp_path / "results"
    task = {"level": "image", "label": TASK, "kind": "binary", "tiling": "whole", "backbones": [BACKBONE],
            "finetune": ["partial", "scratch"]}
    config = write_config(tmp_path / "config.yaml", sheet, results, tasks={TASK: task}, finetune=SETTINGS)
    run = snakemake(tmp_path, "--configfile", str(config), "--cores", "2", str(results / "report/summary.parquet"))
    summary = pd.read_parquet(results / "report/summary.parquet")
    assert sorted(summary["head"]) == ["finetune_partial", "finetune_scratch", "logreg"]
    assert summary["train_seconds"].notna().all()
    heads = results / "heads" / TASK / BACKBONE / "final" / "none"
    folds = {h: pd.read_parquet(heads / h / "predictions.parquet")["fold"] for h in summary["head"]}
    pd.testing.assert_series_equal(folds["logreg"], folds["finetune_partial"], check_names=False)
    record = json.loads((heads / "finetune_partial" / "metrics.json").read_text())
    assert record["finetune"]["max_epochs"] == 2 and record["backbone_spec"]["model"] == "resnet18"
    assert all(f["training"]["device"] == "cpu" and f["training"]["epochs_run"] <= 2 for f in record["folds"])
    assert (heads / "finetune_scratch" / "model" / "weights.safetensors").exists()
    assert not (heads / "finetune_partial" / "folds").exists()  # finished: the resume cache is gone
    log = (results / "logs/finetune" / TASK / BACKBONE / "partial.log").read_text()
    assert "finetune_partial: 2 epoch(s)" in log and "images seen" in log and "on cpu" in log
    assert "finetune_partial:" in run.stderr and "epoch" in run.stderr  # the progress bar, on the console
