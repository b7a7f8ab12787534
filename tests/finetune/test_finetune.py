"""Fine-tuning on CPU with a tiny timm network on tiny images: same folds as the heads, it learns what frozen
features cannot, `scratch` is random, `partial` leaves the frozen part alone, a killed run resumes."""

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from tileprobe.embed.load import load_backbone
from tileprobe.finetune.network import build, trainable
from tileprobe.learn import evaluate
from tileprobe.learn.data import TaskData
from tileprobe.learn.heads.registry import load_head
from tileprobe.learn.train import FOLDS_DIR, run_task

PX = 32
EVALUATION = {"folds": 3, "repeats": 1, "seed": 0, "bootstrap": 20}
SETTINGS = {"max_epochs": 25, "patience": 8, "lr": 3e-3, "batch_size": 16, "partial_blocks": 2, "augment": False,
            "device": "cpu"}


def bars(n=96, seed=0, terms=False):
    """Grey noise with a bright bar: horizontal (class a) or vertical (class b)."""
    rng = np.random.default_rng(seed)
    vertical = np.arange(n) % 2 == 1
    pixels = rng.integers(90, 140, (n, PX, PX, 3)).astype(np.uint8)
    for i in range(n):
        r = int(rng.integers(4, PX - 4))
        if vertical[i]:
            pixels[i, :, r - 2:r + 2] = 230
        else:
            pixels[i, r - 2:r + 2, :] = 230
    if terms:  # multilabel: the orientation, and whether the image is dark
        dark = rng.random(n) < 0.5
        pixels[dark] //= 2
        y = np.array([";".join(t for t, on in (("vertical", v), ("dark", d)) if on) for v, d in zip(vertical, dark)],
                     dtype=object)
    else:
        y = np.where(vertical, "b", "a").astype(object)
    return pixels, y, np.array([f"p{i // 2}" for i in range(n)], dtype=object)


def dead_last_stage(tmp_path):
    """A 'pretrained' test_resnet whose last stage outputs a constant: its frozen features carry nothing."""
    model = build({"model": "test_resnet", "weights": "none", "seed": 3}, "full", 1, PX).backbone
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for key in state:
        if key.startswith("layer4.") and ("bn" in key or "downsample.2" in key) and key.endswith((".weight", ".bias")):
            state[key].zero_()
    last_bn = max(k for k in state if k.startswith("layer4.") and k.endswith(".bias") and ".bn" in k)
    state[last_bn].fill_(0.1)  # relu(0.1): a constant, with a gradient to learn from
    path = tmp_path / "pretrained.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def task(pixels, y, groups, spec, kind="binary"):
    X = load_backbone(spec, PX, "cpu").embed(pixels)["final"]
    return TaskData(X=X, y=y, groups=groups, ids=pd.DataFrame({"slide": [f"s{i}" for i in range(len(y))]}),
                    kind=kind, pixels=pixels)


def options(spec, **settings):
    return {"backbone": spec, "settings": {**SETTINGS, **settings}, "input_px": PX}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return dead_last_stage(tmp_path_factory.mktemp("weights"))


def test_fine_tuning_beats_its_frozen_start_where_frozen_features_fail(checkpoint, tmp_path):
    spec = {"model": "test_resnet", "weights": str(checkpoint)}
    data = task(*bars(), spec)
    assert np.ptp(data.X, axis=0).max() < 1e-5  # the frozen features are constant
    frozen = run_task(data, "logreg", EVALUATION, tmp_path / "frozen", {"head": "logreg"})
    tuned = run_task(data, "finetune_partial", EVALUATION, tmp_path / "tuned", {"head": "finetune_partial"},
                     options=options(spec))
    assert frozen["overall"]["balanced_accuracy"] <= 0.6
    assert tuned["overall"]["balanced_accuracy"] >= 0.85
    # the same folds, row for row
    folds = [pd.read_parquet(tmp_path / d / "predictions.parquet")["fold"] for d in ("frozen", "tuned")]
    pd.testing.assert_series_equal(*folds)
    # what it cost, per fold
    for fold in tuned["folds"]:
        assert fold["fit_seconds"] > 0 and fold["training"]["device"] == "cpu"
        assert fold["training"]["images_seen"] >= fold["training"]["n_train"] and fold["training"]["epochs_run"] >= 1
    assert tuned["train_seconds"] > frozen["train_seconds"]
    # deployed: the saved network (safetensors) predicts as the fitted one
    model = load_head(tmp_path / "tuned" / "model")
    assert (tmp_path / "tuned" / "model" / "weights.safetensors").exists()
    refit = evaluate.fit_head("finetune_partial", data, np.arange(len(data)), 0, None, 0, options(spec))
    np.testing.assert_allclose(model.predict_proba(data.pixels[:8]), refit.predict_proba(data.pixels[:8]),
                               atol=1e-5)


def test_partial_trains_the_last_blocks_only_and_leaves_the_rest_as_it_was(checkpoint):
    spec = {"model": "test_resnet", "weights": str(checkpoint)}
    pixels, y, groups = bars(n=32)
    before = build(spec, "partial", 2, PX).state_dict()
    head = evaluate.make_head("finetune_partial", seed=0, kind="binary", **options(spec, max_epochs=2))
    head.fit(pixels, y, groups)
    names = trainable(head.net)
    assert names and all(n.startswith(("backbone.layer3.", "backbone.layer4.", "output.")) for n in names)
    after = head.net.state_dict()
    frozen = [k for k in before if k.startswith(("backbone.conv1", "backbone.layer1.", "backbone.bn1"))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # batch-norm statistics too
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone.layer4."))


def test_scratch_starts_from_random_weights_and_the_others_from_the_checkpoint(checkpoint):
    spec = {"model": "test_resnet", "weights": str(checkpoint)}
    key = "backbone.layer4.0.conv1.weight"
    from safetensors.torch import load_file

    pretrained = load_file(str(checkpoint))["layer4.0.conv1.weight"]
    for variant in ("partial", "full"):
        assert torch.equal(build(spec, variant, 2, PX).state_dict()[key], pretrained)
    scratch = build(spec, "scratch", 2, PX).state_dict()[key]
    assert not torch.equal(scratch, pretrained)
    assert torch.equal(scratch, build({"model": "test_resnet", "weights": "none"}, "full", 2, PX).state_dict()[key])


def test_multilabel_fine_tuning_trains_one_network_with_an_output_per_term(tmp_path):
    spec = {"model": "test_resnet", "weights": "none"}
    data = task(*bars(terms=True), spec, kind="multilabel")
    record = run_task(data, "finetune_full", EVALUATION, tmp_path, {"head": "finetune_full"},
                      options=options(spec))
    model = load_head(tmp_path / "model")
    assert list(model.classes_) == ["dark", "vertical"] and model.net.output.out_features == 2
    assert record["overall"]["auroc"] > 0.8


def test_a_killed_run_resumes_after_its_last_finished_fold(tmp_path, monkeypatch):
    spec = {"model": "test_resnet", "weights": "none"}
    data = task(*bars(n=48), spec)
    opts = options(spec, max_epochs=2)
    whole = run_task(data, "finetune_full", EVALUATION, tmp_path / "whole", {"head": "finetune_full"}, options=opts)

    fitted = []
    real_fit = evaluate.fit_head

    def killed_in_the_second_fold(*args, **kwargs):
        if len(fitted) == 1:
            raise KeyboardInterrupt  # the job is killed while it trains fold 1
        fitted.append(args[2])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(evaluate, "fit_head", killed_in_the_second_fold)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        run_task(data, "finetune_full", EVALUATION, out, {"head": "finetune_full"}, options=opts, resume=True)
    assert sorted(p.name for p in (out / FOLDS_DIR).iterdir()) == ["0-0.npz"] and not (out / "metrics.json").exists()

    fitted.clear()
    monkeypatch.setattr(evaluate, "fit_head", lambda *a, **k: fitted.append(a[2]) or real_fit(*a, **k))
    resumed = run_task(data, "finetune_full", EVALUATION, out, {"head": "finetune_full"}, options=opts, resume=True)
    assert len(fitted) == 2  # folds 1 and 2; fold 0 came from disk (the refit is train.fit_head)
    assert resumed["overall"] == pytest.approx(whole["overall"])
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"),
                                  pd.read_parquet(tmp_path / "whole" / "predictions.parquet"))
    assert not (out / FOLDS_DIR).exists()


def test_fine_tuning_refuses_what_is_not_a_network():
    from tileprobe.embed.backbone import BackboneError

    with pytest.raises(BackboneError, match="not one .handcrafted or noise features."):
        build({"model": "noise:16"}, "full", 2, PX)


def test_training_batches_are_augmented_in_image_space_and_predictions_are_not(monkeypatch):
    from tileprobe.finetune import head as finetune_head

    calls = []
    real = finetune_head.augment
    monkeypatch.setattr(finetune_head, "augment", lambda tile, rng: calls.append(1) or real(tile, rng))
    spec = {"model": "test_resnet", "weights": "none"}
    pixels, y, groups = bars(n=24)
    head = evaluate.make_head("finetune_full", seed=0, kind="binary", **options(spec, max_epochs=2, augment=True))
    head.fit(pixels, y, groups)
    assert len(calls) == head.training_["images_seen"]  # every training image of every epoch, once
    calls.clear()
    head.predict_proba(pixels)
    assert calls == []
    head = evaluate.make_head("finetune_full", seed=0, kind="binary", **options(spec, max_epochs=1, augment=False))
    head.fit(pixels, y, groups)
    assert calls == []
