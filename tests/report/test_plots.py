"""Each report figure drawn from small tables: the PNG exists, is a real picture, and has the expected panels."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tileprobe.learn.data import TaskData
from tileprobe.learn.select import agreement
from tileprobe.report.plots.curves import confusion, roc_pr, scores_and_truth
from tileprobe.report.plots.embedding import embedding_map, project
from tileprobe.report.plots.gallery import MAX_THUMBNAILS, qc_gallery, sample
from tileprobe.report.plots.scores import error_bars, layer_depth, metric_bars
from tileprobe.report.plots.selection import selection_figure
from tileprobe.report.plots.timing import stage_times, timing


def picture(path, min_px=200):
    """The PNG opens and is not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_px
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5
    return image.size


def summary_rows():
    rows = []
    for task, chance in (("tumor", 0.5), ("tissue", 1 / 3)):
        for backbone, scores in (("resnet18", [0.7, 0.9]), ("noise", [0.4, 0.35])):
            for layer, score in zip(["stage3", "final"], scores):
                rows.append({"task": task, "backbone": backbone, "layer": layer, "augmentation": "none",
                             "head": "logreg", "balanced_accuracy": score, "balanced_accuracy_std": 0.05,
                             "chance_balanced_accuracy": chance,
                             "balanced_accuracy_ci_low": score - 0.1, "balanced_accuracy_ci_high": score + 0.05})
    return pd.DataFrame(rows)


def test_error_bars_prefer_confidence_intervals_and_fall_back_to_std():
    frame = summary_rows().iloc[:2]
    bars, what = error_bars(frame, "balanced_accuracy")
    assert what == "95% CI" and np.allclose(bars, [[0.1, 0.1], [0.05, 0.05]])
    frame = frame.assign(balanced_accuracy_ci_low=np.nan)
    bars, what = error_bars(frame, "balanced_accuracy")
    assert what == "± std over folds" and np.allclose(bars, 0.05)


def test_metric_bars_have_a_panel_per_task(tmp_path):
    drawn = metric_bars(summary_rows(), "balanced_accuracy", tmp_path / "bars.png")
    assert drawn.panels == ["task tissue", "task tumor"]
    picture(drawn.path)


def test_layer_depth_has_a_panel_per_task(tmp_path):
    layers = {"resnet18": ["stage3", "final"], "noise": ["stage3", "final"]}
    drawn = layer_depth(summary_rows(), layers, "balanced_accuracy", tmp_path / "depth.png")
    assert drawn.panels == ["task tissue", "task tumor"]
    picture(drawn.path)


def predictions(classes, n=60, informative=True, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(classes, dtype=object)[np.arange(n) % len(classes)]
    proba = rng.dirichlet(np.ones(len(classes)), size=n)
    if informative:
        proba[np.arange(n), np.arange(n) % len(classes)] += 2
        proba /= proba.sum(axis=1, keepdims=True)
    frame = pd.DataFrame({"slide": [f"s{i}" for i in range(n)], "y_true": y,
                          "y_pred": np.array(classes, dtype=object)[proba.argmax(axis=1)]})
    for j, c in enumerate(classes):
        frame[f"prob_{c}"] = proba[:, j]
    return frame


def meta(task, backbone, score):
    return {"task": task, "backbone": backbone, "layer": "final", "augmentation": "none", "head": "logreg",
            "overall": {"balanced_accuracy": score}}


def test_scores_and_truth_flatten_multiclass_one_vs_rest():
    truth, score = scores_and_truth(predictions(["a", "b", "c"], n=9))
    assert truth.shape == score.shape == (27,) and truth.sum() == 9
    truth, score = scores_and_truth(predictions(["neg", "pos"], n=10))
    assert truth.shape == (10,) and truth.sum() == 5


def test_curves_and_confusion_matrices(tmp_path):
    heads = [
        (meta("tumor", "resnet18", 0.9), predictions(["no", "yes"])),
        (meta("tumor", "noise", 0.5), predictions(["no", "yes"], informative=False)),
        (meta("tissue", "resnet18", 0.8), predictions(["normal", "stroma", "tumour"])),
    ]
    drawn = roc_pr(heads, tmp_path / "roc_pr.png")
    assert drawn.panels == ["task tissue: ROC", "task tissue: precision-recall", "task tumor: ROC",
                            "task tumor: precision-recall"]
    picture(drawn.path)
    drawn = confusion(heads, "balanced_accuracy", tmp_path / "confusion.png")
    # The best head of each task, by the metric.
    assert drawn.panels == ["task tissue\nresnet18/final/none/logreg", "task tumor\nresnet18/final/none/logreg"]
    picture(drawn.path)


def test_embedding_map_separates_an_informative_backbone(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.array(["a", "b"], dtype=object), 50)
    informative = rng.normal(size=(100, 16)) + np.where(y == "a", 4.0, -4.0)[:, None]
    noise = rng.normal(size=(100, 16))
    groups = np.arange(100).astype(str).astype(object)
    panels = {(name, "final"): TaskData(X=X, y=y, groups=groups, ids=pd.DataFrame({"slide": groups}))
              for name, X in (("resnet18", informative), ("noise", noise))}
    coords = project(informative)
    assert abs(coords[y == "a", 0].mean() - coords[y == "b", 0].mean()) > 3  # PC 1 follows the label
    drawn = embedding_map("tissue", panels, tmp_path / "map.png")
    assert drawn.panels == ["noise / final (100 of 100)", "resnet18 / final (100 of 100)"]
    picture(drawn.path)


def qc_pictures(root, n, size=(120, 80), tiling="wsi"):
    """`n` QC pictures of `size` px (noise with a gradient: a JPEG cannot flatter it) under root/qc/{tiling}/."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = root / "qc" / tiling / f"slide_{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) // 2 + (i * 7 % 128)
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def qc_manifest(paths, flags):
    return pd.DataFrame({"tiling": [p.parent.name for p in paths], "slide": [p.stem for p in paths],
                         "flags": [flags.get(p.stem, "") for p in paths], "qc": [str(p) for p in paths]})


def test_qc_gallery_shows_every_picture_of_a_small_cohort_as_a_jpeg(tmp_path):
    paths = qc_pictures(tmp_path, 7)
    drawn = qc_gallery(paths, tmp_path / "gallery.jpg", qc_manifest(paths, {}))
    assert drawn.panels == [f"wsi/slide_{i:03d}" for i in range(7)]
    assert "7 of 7 shown" in drawn.title and f"full-size pictures in {tmp_path / 'qc'}/" in drawn.title
    with Image.open(drawn.path) as image:
        assert image.format == "JPEG" and min(image.size) >= 200
        assert np.asarray(image.convert("L")).std() > 5


def test_qc_gallery_of_a_large_cohort_is_a_bounded_sample_that_always_shows_the_flagged_slides(tmp_path):
    """Issue 17, point 3: 60 realistic pictures (1000 x 810 px, about the demo's) give a JPEG under 1.5 MB with
    at most MAX_THUMBNAILS thumbnails; the two flagged slides are ones the sample alone would leave out, and
    they are shown and marked; the title says how many of how many are shown."""
    paths = qc_pictures(tmp_path, 60, size=(1000, 810))
    assert sum(p.stat().st_size for p in paths) > 60 * 500_000  # about as heavy as real QC pictures
    unflagged = {p.stem for p in sample(paths, set())}
    left_out = [p.stem for p in paths if p.stem not in unflagged][:2]
    assert len(left_out) == 2
    drawn = qc_gallery(paths, tmp_path / "gallery.jpg",
                       qc_manifest(paths, {left_out[0]: "no_tiles", left_out[1]: "unreadable"}))
    assert len(drawn.panels) == MAX_THUMBNAILS
    flagged = [t for t in drawn.panels if t.startswith("FLAGGED")]
    assert flagged == [f"FLAGGED wsi/{left_out[0]}\nno_tiles", f"FLAGGED wsi/{left_out[1]}\nunreadable"]
    assert f"{MAX_THUMBNAILS} of 60 shown; 2 flagged" in drawn.title
    with Image.open(drawn.path) as image:
        assert image.format == "JPEG"
    assert drawn.path.stat().st_size < 1_500_000
    # The same sample on every run and whatever order the paths come in.
    again = qc_gallery(paths[::-1], tmp_path / "again.jpg",
                       qc_manifest(paths, {left_out[0]: "no_tiles", left_out[1]: "unreadable"}))
    assert again.panels == drawn.panels


def test_qc_gallery_names_the_flagged_image_of_a_contact_sheet(tmp_path):
    sheet = qc_pictures(tmp_path, 1, tiling="ish")[0]
    manifest = pd.DataFrame({"tiling": "ish", "slide": ["img_a", "img_b"], "flags": ["", "unreadable"],
                             "qc": str(sheet)})
    drawn = qc_gallery([sheet], tmp_path / "gallery.jpg", manifest)
    assert drawn.panels == ["FLAGGED ish/slide_000\nimg_b: unreadable"]


def test_timing_sums_benchmark_files_per_stage(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = {"embed/wsi/r/s1.tsv": 2.0, "embed/wsi/r/s2.tsv": 3.0, "report.tsv": 0.5}
    for rel, seconds in files.items():
        path = tmp_path / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:0{int(seconds)}\t100.5\t1\t1\t1\t0\t0\t50\t{seconds / 2}\n")
    times = stage_times(tmp_path / "benchmarks").set_index("stage")
    assert times.loc["embed", "jobs"] == 2 and times.loc["embed", "total_s"] == pytest.approx(5.0)
    assert times.loc["report", "total_s"] == pytest.approx(0.5)
    drawn = timing(tmp_path / "benchmarks", tmp_path / "timing.png")
    assert drawn.panels == ["time per stage (Snakemake benchmark files)"]
    picture(drawn.path)


def test_selection_figure_shows_ranking_and_agreement(tmp_path):
    selection = pd.DataFrame({
        "task": "tissue", "backbone": ["resnet18", "resnet18", "noise", "noise"], "layer": "final",
        "probe": ["knn", "logreg"] * 2, "metric": "balanced_accuracy", "score": [0.9, 0.8, 0.35, 0.3],
        "ci_low": [0.8, 0.7, 0.2, 0.2], "ci_high": [0.95, 0.9, 0.5, 0.4], "proxy_score": [0.85, 0.85, 0.325, 0.325],
        "rank": [1, 1, 2, 2],
    })
    summary = summary_rows()
    summary = summary[summary["layer"] == "final"]
    agreed = agreement(selection, summary, "balanced_accuracy")
    assert agreed.set_index("task")["spearman_rho"].tolist() == [pytest.approx(1.0)] * 2
    drawn = selection_figure(selection, summary, agreed, tmp_path / "selection.png")
    assert drawn.panels == ["proxy task tissue: rank by mean over probes",
                            "does the proxy ranking agree with the tasks? (Spearman)"]
    picture(drawn.path)


def test_nothing_to_draw_still_writes_a_picture_that_says_so(tmp_path):
    drawn = metric_bars(summary_rows().iloc[:0], "balanced_accuracy", tmp_path / "bars.png")
    assert drawn.panels == [] and drawn.path.exists()


def test_layer_depth_puts_final_last_whatever_the_config_order(tmp_path, monkeypatch):
    import tileprobe.report.plots.scores as scores

    drawn_lines = []
    real_plot = scores.plt.Axes.plot

    def spy(ax, x, y, *args, **kwargs):
        drawn_lines.append((kwargs.get("label"), list(x), list(y)))
        return real_plot(ax, x, y, *args, **kwargs)

    monkeypatch.setattr(scores.plt.Axes, "plot", spy)
    summary = summary_rows()
    layer_depth(summary[summary["task"] == "tumor"], {"resnet18": ["final", "stage3"]}, "balanced_accuracy",
                tmp_path / "depth.png")
    resnet = next(line for line in drawn_lines if line[0] == "resnet18 / logreg")
    assert resnet[1:] == ([0, 1], [0.7, 0.9])  # stage3 (0.7) first, final (0.9) deepest


def test_score_figures_draw_each_accepted_metric(trained, metric, tmp_path, monkeypatch):
    import tileprobe.report.plots.scores as scores
    from tileprobe.report.summary import summarize

    summary = summarize(trained.paths, metric)
    widths, lines = [], []
    real_barh, real_plot = scores.plt.Axes.barh, scores.plt.Axes.plot

    def barh(ax, y, width, *args, **kwargs):
        widths.extend(width)
        return real_barh(ax, y, width, *args, **kwargs)

    def plot(ax, x, y, *args, **kwargs):
        lines.extend(y)
        return real_plot(ax, x, y, *args, **kwargs)

    monkeypatch.setattr(scores.plt.Axes, "barh", barh)
    monkeypatch.setattr(scores.plt.Axes, "plot", plot)
    drawn = metric_bars(summary, metric, tmp_path / "bars.png")
    assert drawn.panels == ["task tissue", "task tumour"]
    assert sorted(widths) == pytest.approx(sorted(summary[metric]))  # one bar per head, at its score
    picture(drawn.path)
    drawn = layer_depth(summary, {}, metric, tmp_path / "depth.png")
    assert drawn.panels == ["task tissue", "task tumour"] and sorted(lines) == pytest.approx(sorted(summary[metric]))


def test_agreement_and_selection_figure_for_each_accepted_metric(trained, metric, tmp_path):
    from tileprobe.learn.select import select
    from tileprobe.report.summary import summarize

    selection = select("tumour", trained.candidates["tumour"], metric, {"bootstrap": 20})
    summary = summarize(trained.paths, metric)
    agreed = agreement(selection, summary, metric).set_index("task")
    assert agreed["n_candidates"].tolist() == [3, 3]
    assert np.isfinite(agreed["spearman_rho"]).all() and (agreed["metric"] == metric).all()
    drawn = selection_figure(selection, summary, agreed.reset_index(), tmp_path / "selection.png")
    assert drawn.panels == ["proxy task tumour: rank by mean over probes",
                            "does the proxy ranking agree with the tasks? (Spearman)"]
    picture(drawn.path)


def test_tradeoff_draws_heads_and_fine_tuned_networks_against_training_time(tmp_path):
    from matplotlib.image import imread

    from tileprobe.report.plots.tradeoff import tradeoff

    rows = [{"task": t, "kind": k, "backbone": "r18", "layer": "final", "augmentation": "none", "head": h,
             "balanced_accuracy": 0.7, "balanced_accuracy_ci_low": 0.6, "balanced_accuracy_ci_high": 0.8,
             "r2": 0.5, "r2_ci_low": 0.4, "r2_ci_high": 0.6, "chance_r2": 0.0, "train_seconds": s}
            for t, k in (("tumour", "binary"), ("age", "regression"))
            for h, s in (("logreg", 0.05), ("finetune_partial", 120.0))]
    drawn = tradeoff(pd.DataFrame(rows), "balanced_accuracy", tmp_path / "tradeoff.png")
    assert drawn.panels == ["task age", "task tumour"]
    assert imread(drawn.path).shape[1] > 600
    # metrics.json from before training times were kept: a figure that says so, not an error
    old = pd.DataFrame(rows).assign(train_seconds=np.nan)
    assert tradeoff(old, "balanced_accuracy", tmp_path / "old.png").panels == []


def test_reliability_diagram_bins_out_of_fold_confidence_per_class_task(tmp_path):
    from tileprobe.report.plots.reliability import confidence_bins, reliability

    predictions = pd.DataFrame({"y_true": ["a", "b", "b", "a"], "prob_a": [0.9, 0.2, 0.6, 0.45],
                                "prob_b": [0.1, 0.8, 0.4, 0.55]})
    _, _, confidence, accuracy, count = confidence_bins(predictions)
    assert count.sum() == 4 and count[13] == 1 and accuracy[13] == 1.0 and confidence[13] == pytest.approx(0.9)
    assert accuracy[9] == 0.0 and confidence[9] == pytest.approx(0.6)  # .6 on the wrong class
    heads = [({"task": "t", "kind": "binary", "backbone": "b", "layer": "l", "augmentation": "none", "head": "h",
               "overall": {"balanced_accuracy": 0.5}}, predictions),
             ({"task": "age", "kind": "regression", "overall": {}}, pd.DataFrame({"y_true": [1.0], "y_pred": [1.0]}))]
    drawn = reliability(heads, "balanced_accuracy", tmp_path / "reliability.png")
    assert drawn.panels == ["task t: ECE 0.362\nb/l/none/h"]
