import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

from tileprobe.learn.data import TaskData
from tileprobe.learn.evaluate import bootstrap_ci, cross_validate, cv_splits, metrics


def patients_data(n_classes=3, n_patients=30, per_patient=4, dim=8, separation=6.0, patient_spread=0.0, seed=0):
    """Gaussian blobs, one class per fake patient, several tiles per patient.

    `patient_spread` gives each patient its own offset: a signature a leaky split could memorise.
    """
    rng = np.random.default_rng(seed)
    patient_class = np.arange(n_patients) % n_classes
    centres = rng.normal(size=(n_classes, dim)) * separation
    y_idx = np.repeat(patient_class, per_patient)
    offsets = rng.normal(size=(n_patients, dim)) * patient_spread
    X = centres[y_idx] + np.repeat(offsets, per_patient, axis=0) + rng.normal(size=(len(y_idx), dim))
    groups = np.repeat([f"p{i:02d}" for i in range(n_patients)], per_patient).astype(object)
    ids = pd.DataFrame({"slide": [f"{g}-s" for g in groups], "x": np.arange(len(y_idx)) * 256,
                        "y": np.zeros(len(y_idx), dtype=np.int64)})
    y = np.array([f"class{i}" for i in range(n_classes)], dtype=object)[y_idx]
    return TaskData(X=X.astype(np.float32), y=y, groups=groups, ids=ids)


def test_separable_blobs_are_learnt():
    preds, result = cross_validate(patients_data(), "logreg", {"folds": 5})
    assert result["overall"]["balanced_accuracy"] > 0.95
    assert result["overall"]["auroc"] > 0.95
    assert result["mean"]["balanced_accuracy"] > 0.95


def test_shuffled_labels_score_near_chance():
    scores = []
    for seed in range(4):
        data = patients_data(n_classes=2, n_patients=24, per_patient=5, patient_spread=10.0, seed=seed)
        # Shuffle patients' labels: features no longer carry the label, only who the patient is,
        # so a split that let a patient into train and test would score well above chance here.
        rng = np.random.default_rng(100 + seed)
        patients = np.unique(data.groups)
        new = dict(zip(patients, rng.permutation([data.y[data.groups == p][0] for p in patients])))
        data.y = np.array([new[g] for g in data.groups], dtype=object)
        scores.append(cross_validate(data, "logreg", {"folds": 4, "seed": seed})[1]["overall"]["balanced_accuracy"])
    assert np.mean(scores) < 0.65


def test_splits_never_leak_patients():
    data = patients_data(n_patients=27, per_patient=3)
    seen_tests = {}
    for repeat, fold, train, test in cv_splits(data.y, data.groups, folds=5, repeats=2, seed=3):
        assert not set(data.groups[train]) & set(data.groups[test])  # never on both sides of a fold
        assert len(train) + len(test) == len(data)
        for patient in set(data.groups[test]):
            assert (repeat, patient) not in seen_tests, "patient tested in two folds of one repeat"
            seen_tests[(repeat, patient)] = fold
    assert len(seen_tests) == 2 * 27  # every patient is tested once per repeat


def test_predictions_one_row_per_sample_per_repeat():
    data = patients_data(n_patients=21, per_patient=2)
    preds, result = cross_validate(data, "logreg", {"folds": 3, "repeats": 2, "seed": 1})
    assert len(preds) == 2 * len(data)
    assert list(preds.columns) == ["slide", "x", "y", "patient", "repeat", "fold", "y_true", "y_pred",
                                   "prob_class0", "prob_class1", "prob_class2"]
    for repeat, part in preds.groupby("repeat"):
        assert part[["slide", "x", "y"]].drop_duplicates().shape[0] == len(data)
        assert (part.groupby("patient")["fold"].nunique() == 1).all()
        assert set(part["fold"]) == {0, 1, 2}
    np.testing.assert_allclose(preds.filter(like="prob_").sum(axis=1), 1.0)
    assert len(result["folds"]) == 6 and sum(f["n_test"] for f in result["folds"]) == 2 * len(data)


def sklearn_scores(part, classes):
    proba = part[[f"prob_{c}" for c in classes]].to_numpy()
    return {
        "balanced_accuracy": balanced_accuracy_score(part["y_true"], part["y_pred"]),
        "macro_f1": f1_score(part["y_true"], part["y_pred"], average="macro"),
        "auroc": (roc_auc_score(part["y_true"] == classes[1], proba[:, 1]) if len(classes) == 2
                  else roc_auc_score(part["y_true"], proba, multi_class="ovr", labels=classes)),
    }


@pytest.mark.parametrize("n_classes", [2, 3])
def test_metrics_match_sklearn_on_the_predictions(n_classes):
    # Weak separation, so the scores are not all 1.0 and a wrong formula shows.
    data = patients_data(n_classes=n_classes, n_patients=30, separation=0.4, seed=5)
    classes = data.classes
    preds, result = cross_validate(data, "logreg", {"folds": 5, "repeats": 2})
    per_repeat = [sklearn_scores(part, classes) for _, part in preds.groupby("repeat")]
    for metric in ("balanced_accuracy", "macro_f1", "auroc"):
        expected = np.mean([r[metric] for r in per_repeat])
        assert result["overall"][metric] == pytest.approx(expected, abs=1e-12)
        assert 0.3 < expected < 0.999
    for fold in result["folds"]:
        part = preds[(preds["repeat"] == fold["repeat"]) & (preds["fold"] == fold["fold"])]
        assert fold["n_test"] == len(part)
        for metric, value in sklearn_scores(part, classes).items():
            assert fold[metric] == pytest.approx(value, abs=1e-12)
    fold_ba = [f["balanced_accuracy"] for f in result["folds"]]
    assert result["mean"]["balanced_accuracy"] == pytest.approx(np.mean(fold_ba))
    assert result["std"]["balanced_accuracy"] == pytest.approx(np.std(fold_ba, ddof=1))


def test_binary_auroc_uses_second_class_as_positive():
    y = np.array(["neg", "pos", "pos", "neg"], dtype=object)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert metrics(y, proba, ["neg", "pos"])["auroc"] == pytest.approx(roc_auc_score(y == "pos", proba[:, 1]))


def test_missing_class_gives_nan_auroc_not_a_crash():
    y = np.array(["a", "a", "b"], dtype=object)
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.1, 0.7], [0.1, 0.8, 0.1]])
    scores = metrics(y, proba, ["a", "b", "c"])
    assert np.isnan(scores["auroc"])
    assert scores["balanced_accuracy"] == pytest.approx(0.75)
    assert np.isnan(metrics(y[:2], proba[:2, :2], ["a", "b"])["auroc"])


def test_auprc_and_multilabel_metrics_match_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    y = np.array(["a", "b", "c"] * 20, dtype=object)
    proba = rng.dirichlet([1, 1, 1], size=60)
    proba[:, 0] = np.round(proba[:, 0], 1)  # ties, which the step-wise curves must handle like sklearn
    expected = np.mean([average_precision_score(y == c, proba[:, j]) for j, c in enumerate("abc")])
    assert metrics(y, proba, ["a", "b", "c"])["auprc"] == pytest.approx(expected, abs=1e-12)

    terms = np.array(["x;y", "", "y", "x", "x;y;z", "z"] * 10, dtype=object)
    P = rng.random((60, 3))
    Y = np.array([[t in v.split(";") for t in "xyz"] for v in terms])
    got = metrics(terms, P, ["x", "y", "z"], kind="multilabel")
    assert got["auroc"] == pytest.approx(roc_auc_score(Y, P, average="macro"), abs=1e-12)
    assert got["micro_auroc"] == pytest.approx(roc_auc_score(Y, P, average="micro"), abs=1e-12)
    assert got["auprc"] == pytest.approx(average_precision_score(Y, P, average="macro"), abs=1e-12)
    for avg in ("macro", "micro"):
        assert got[f"{avg}_f1"] == pytest.approx(f1_score(Y, P >= 0.5, average=avg, zero_division=0), abs=1e-12)
    assert got["balanced_accuracy"] == pytest.approx(
        np.mean([balanced_accuracy_score(Y[:, j], P[:, j] >= 0.5) for j in range(3)]), abs=1e-12)


def test_confidence_intervals_resample_patients_and_bracket_the_estimate():
    data = patients_data(n_classes=2, n_patients=30, separation=0.5, seed=2)
    _, result = cross_validate(data, "logreg", {"folds": 5, "bootstrap": 300, "seed": 1})
    assert set(result["ci"]) == {"balanced_accuracy", "macro_f1", "auroc", "auprc", "ece"}
    for metric, (low, high) in result["ci"].items():
        if metric == "ece":  # binned: resampling adds noise to every bin's gap, so its interval sits higher
            assert 0 <= low < high <= 1
            continue
        assert low <= result["overall"][metric] <= high and high - low > 0.02, metric
    assert result["ci_method"] == {"level": 0.95, "resamples": 300, "unit": "patient", "kind": "percentile"}
    again = cross_validate(data, "logreg", {"folds": 5, "bootstrap": 300, "seed": 1})[1]
    assert again["ci"] == result["ci"]  # seeded: the same run gives the same interval
    assert cross_validate(data, "logreg", {"folds": 5, "bootstrap": 0})[1]["ci"] == {}



def test_bootstrap_draws_whole_patients_and_leaves_undefined_values_out():
    groups = np.array(["p1", "p1", "p2", "p3", "p3", "p3"], dtype=object)
    block_of = {0: [0, 1], 2: [2], 3: [3, 4, 5]}  # first row -> that patient's rows
    draws = []

    def statistic(rows):
        draws.append(rows.tolist())
        return {"rows": float(len(rows)), "undefined": float("nan")}

    ci = bootstrap_ci(statistic, groups, 40, seed=0)
    for rows in draws:
        patients = []
        while rows:
            block = block_of[rows[0]]
            assert rows[:len(block)] == block
            patients.append(rows[0])
            rows = rows[len(block):]
        assert len(patients) == 3  # as many draws as there are patients, with replacement
    assert len(draws) == 40 and 3 <= ci["rows"][0] < ci["rows"][1] <= 9
    assert np.isnan(ci["undefined"]).all()
    assert bootstrap_ci(statistic, groups, 0, seed=0) == {}


def test_cross_validation_intervals_are_unchanged_by_the_shared_bootstrap():
    """The numbers the earlier, separate bootstrap of evaluate.py gave on this data (same seed)."""
    data = patients_data(n_classes=3, n_patients=12, separation=0.7, seed=5)
    ci = cross_validate(data, "logreg", {"folds": 3, "repeats": 2, "bootstrap": 40, "seed": 3})[1]["ci"]
    ci.pop("ece")  # added since; the draws, and so the other intervals, are the same
    assert ci == {"balanced_accuracy": [0.5913839285714286, 0.835342261904762],
                  "macro_f1": [0.5935712894465949, 0.8092518166822582],
                  "auroc": [0.8180811979542448, 0.933577531891334],
                  "auprc": [0.6980647537857376, 0.8827860821324359]}


def test_augment_sees_only_training_rows_with_a_seed_per_fold():
    data = patients_data(n_classes=2, n_patients=12, per_patient=2)
    calls = []

    def augment(X, y, groups, seed):
        calls.append((set(map(tuple, X.round(5))), set(groups), seed))
        # Add a jittered copy of every training row: more rows than the fold had.
        return np.vstack([X, X + 0.01]), np.concatenate([y, y]), np.concatenate([groups, groups])

    preds, _ = cross_validate(data, "logreg", {"folds": 3, "repeats": 2, "seed": 7, "bootstrap": 0}, augment=augment)
    assert len(calls) == 6 and len({seed for *_, seed in calls}) == 6  # one seed per (repeat, fold)
    for (repeat, fold), part in preds.groupby(["repeat", "fold"]):
        test_rows = set(map(tuple, data.X[part.index % len(data)].round(5)))
        X_seen, groups_seen, _ = calls[repeat * 3 + fold]
        assert not test_rows & X_seen and not groups_seen & set(part["patient"])
    first = [seed for *_, seed in calls]
    calls.clear()
    cross_validate(data, "logreg", {"folds": 3, "repeats": 2, "seed": 7, "bootstrap": 0}, augment=augment)
    assert [seed for *_, seed in calls] == first  # deterministic


def test_multilabel_cross_validation_keeps_patients_apart():
    rng = np.random.default_rng(1)
    n = 60
    on = rng.random((n, 3)) < 0.5
    X = (rng.normal(size=(n, 6)) + on @ (rng.normal(size=(3, 6)) * 4)).astype(np.float32)
    y = np.array([";".join(t for t, o in zip("abc", row) if o) for row in on], dtype=object)
    groups = np.array([f"p{i // 2}" for i in range(n)], dtype=object)
    data = TaskData(X=X, y=y, groups=groups, ids=pd.DataFrame({"slide": [f"s{i}" for i in range(n)]}),
                    kind="multilabel")
    preds, result = cross_validate(data, "logreg", {"folds": 3, "bootstrap": 50})
    assert set(result["overall"]) == {"balanced_accuracy", "macro_f1", "micro_f1", "auroc", "micro_auroc", "auprc"}
    assert result["overall"]["auroc"] > 0.9
    assert (preds.groupby("patient")["fold"].nunique() == 1).all()
    assert {"prob_a", "prob_b", "prob_c"} <= set(preds.columns)
