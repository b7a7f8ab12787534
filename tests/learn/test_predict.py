"""Deployment: the refit head predicts new slides the way the cross-validated fold models did."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn.data import task_dataset
from tileprobe.learn.heads.registry import load_head, make_head
from tileprobe.learn.predict import PredictError, predict_sheet, predict_slide
from tileprobe.learn.train import run_task

DIM = 8


def cohort(n=24, seed=0):
    """Slides of two classes; each slide a bag of tiles whose mean carries the class."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(2, DIM)) * 2
    labels = ["neg", "pos"] * (n // 2)
    features = {f"s{i}": (centre[i % 2] + rng.normal(size=(int(rng.integers(5, 15)), DIM))).astype(np.float32)
                for i in range(n)}
    sheet = pd.DataFrame({"slide": list(features), "patient": [f"p{i}" for i in range(n)], "tumor": labels})
    return sheet, features


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    sheet, features = cohort()
    task = {"name": "tumor", "level": "slide", "label": "tumor", "kind": "binary", "heads": ["logreg"]}
    data = task_dataset(task, sheet, features, folds=4)
    out = tmp_path_factory.mktemp("heads")
    meta = {"task": "tumor", "head": "logreg", "level": "slide", "kind": "binary"}
    run_task(data, "logreg", {"folds": 4, "bootstrap": 0}, out, meta)
    return task, sheet, features, out


def test_new_slide_gets_the_deployed_heads_probabilities(trained):
    task, _, features, out = trained
    table = predict_slide(out / "model", "tumor", task, "new1", features["s3"])
    assert table.columns.tolist() == ["slide", "prob_neg", "prob_pos", "y_pred", "head"]
    expected = load_head(out / "model").predict_proba(features["s3"].mean(axis=0, dtype=np.float64)[None])
    np.testing.assert_allclose(table[["prob_neg", "prob_pos"]].to_numpy(), expected)


def test_deployed_head_agrees_with_the_fold_models(trained):
    # Slides seen as new: the refit head should call them as the fold models (which never saw them) did.
    task, sheet, features, out = trained
    oof = pd.read_parquet(out / "predictions.parquet").set_index("slide")
    calls = {s: predict_slide(out / "model", "tumor", task, s, features[s])["y_pred"].iloc[0] for s in sheet["slide"]}
    agree = np.mean([calls[s] == oof.at[s, "y_pred"] for s in sheet["slide"]])
    assert agree >= 0.9
    assert json.loads((out / "metrics.json").read_text())["overall"]["balanced_accuracy"] > 0.9


def test_tile_task_predicts_every_tile(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, DIM)).astype(np.float32)
    tiles = {"a": pd.DataFrame({"x": np.arange(20) * 64, "y": 0, "label": ["t", "s"] * 10}),
             "b": pd.DataFrame({"x": np.arange(20) * 64, "y": 64, "label": ["t", "s"] * 10})}
    X[::2] += 3  # label t is separable
    features = {"a": X[:20], "b": X[20:]}
    sheet = pd.DataFrame({"slide": ["a", "b"], "annotations": ["a.geojson", "b.geojson"]})
    task = {"level": "tile", "label": "tissue", "kind": "binary"}
    data = task_dataset(task, sheet, features, tiles, folds=1)
    make_head("logreg", kind="binary").fit(data.X, data.y).save(tmp_path)
    table = predict_slide(tmp_path, "tissue", task, "new", features["a"], tiles["a"])
    assert len(table) == 20 and table[["x", "y"]].to_numpy().tolist() == tiles["a"][["x", "y"]].to_numpy().tolist()
    assert (table["y_pred"] == tiles["a"]["label"]).mean() > 0.9


def test_errors_name_the_problem(trained, tmp_path):
    task, _, features, out = trained
    with pytest.raises(PredictError, match="trained on 8"):
        predict_slide(out / "model", "tumor", task, "odd", np.zeros((3, 5), np.float32))
    with pytest.raises(PredictError, match="group-level"):
        predict_slide(out / "model", "stage", {**task, "level": "group"}, "x", features["s1"])
    with pytest.raises(PredictError, match="no trained head"):
        predict_slide(tmp_path, "tumor", task, "x", features["s1"])


def test_predict_sheet_rejects_a_reused_id_for_another_file(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "new.tsv").write_text("slide\tpath\ns1\tb.png\n")
    training = pd.DataFrame({"slide": ["s1"], "path": [str(tmp_path / "a.png")]}).set_index("slide", drop=False)
    with pytest.raises(PredictError, match="s1.*own ids"):
        predict_sheet(tmp_path / "new.tsv", training)


@pytest.mark.workflow
def test_predict_sheet_through_the_workflow(demo_run):
    """New ids for two demo ISH images: tiled, embedded and predicted by the `stage` task's deployed head."""
    from tests.support.runner import snakemake
    from tileprobe.embed.store import open_embeddings, sample_features

    results = demo_run / "results"
    manifest = pd.read_parquet(results / "manifest.parquet")
    known = manifest[manifest["stage"].notna()].head(2)
    sheet = results / "predict_sheet.tsv"
    sheet.write_text("slide\tpath\n" + "".join(f"new_{s}\t{demo_run / p}\n" for s, p in zip(known["slide"], known["path"])))
    targets = [f"results/predict/stage/new_{s}.parquet" for s in known["slide"]]
    try:
        snakemake(demo_run, *targets, "--cores", "2", "--config", f"predict={sheet}")  # --config swallows what follows it
        model = load_head(results / "heads/stage/resnet18/final/none/logreg/model")
        stores = {p.stem: p for p in (results / "embeddings/ish/resnet18").glob("shard_*.zarr")}
        features = sample_features(open_embeddings(stores, "final"), "final")
        for slide, target in zip(known["slide"], targets):
            table = pd.read_parquet(demo_run / target)
            # Same image, new id: its fresh embedding and the deployed head give the training slide's scores.
            trained_on = features[slide]
            expected = model.predict_proba(trained_on.mean(axis=0, dtype=np.float64)[None])
            np.testing.assert_allclose(table.filter(like="prob_").to_numpy(), expected, atol=1e-5)
            assert table["slide"].tolist() == [f"new_{slide}"]
    finally:
        # Put the shared demo run back as it was: later tests plan reruns from what is on disk.
        sheet.unlink()
        shutil.rmtree(results / "predict", ignore_errors=True)
        for path in sorted(results.glob("*/ish/**/predict_*"), key=lambda p: -len(p.parts)):
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


@pytest.mark.parametrize("kind, head, column", [("regression", "ridge", "y_pred"), ("regression", "abmil", "y_pred"),
                                                ("survival", "cox", "risk"), ("survival", "meanpool", "risk")])
def test_value_tasks_deploy_values_and_risks(kind, head, column, tmp_path):
    sheet, features = cohort()
    sheet["score"] = [f"{features[s].mean():.4f}" for s in sheet["slide"]]
    sheet["months"] = [f"{10 + 5 * i}" for i in range(len(sheet))]
    sheet["dead"] = [str(int(i % 3 != 0)) for i in range(len(sheet))]
    task = {"name": "t", "level": "slide", "label": "months" if kind == "survival" else "score", "kind": kind,
            "event": "dead", "heads": [head]}
    data = task_dataset(task, sheet, features, folds=3)
    run_task(data, head, {"folds": 3, "bootstrap": 0}, tmp_path, {"task": "t", "head": head, "kind": kind})
    table = predict_slide(tmp_path / "model", "t", task, "new1", features["s5"])
    assert table.columns.tolist() == ["slide", column, "head"]
    inputs = [features["s5"]] if head in ("abmil", "meanpool") else features["s5"].mean(axis=0, dtype=np.float64)[None]
    assert table[column].to_numpy() == pytest.approx(load_head(tmp_path / "model").predict(inputs))
