"""Regression and survival task data: numbers read from the sheet, bad values named, folds that fit them."""

import logging

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn.data import TaskError, sheet_targets, strata, task_dataset
from tileprobe.learn.evaluate import cv_splits

DIM = 3


def cohort(n=12, **columns):
    sheet = pd.DataFrame({"slide": [f"s{i}" for i in range(n)], "patient": [f"p{i // 2}" for i in range(n)],
                          "age": [str(40 + i) for i in range(n)], "months": [str(5.0 + i) for i in range(n)],
                          "death": [str(i % 2) for i in range(n)]})
    for name, values in columns.items():
        sheet[name] = values
    features = {s: np.full((2, DIM), i, dtype=np.float32) for i, s in enumerate(sheet["slide"])}
    return sheet, features


REGRESSION = {"name": "age", "level": "slide", "label": "age", "kind": "regression"}
SURVIVAL = {"name": "os", "level": "slide", "label": "months", "event": "death", "kind": "survival"}


def test_regression_rows_hold_the_numbers():
    sheet, features = cohort()
    data = task_dataset(REGRESSION, sheet, features, folds=3)
    assert data.y.dtype == np.float64 and list(data.y) == [40.0 + i for i in range(12)]
    assert data.classes == [] and list(data.groups[:2]) == ["p0", "p0"]


def test_survival_rows_hold_time_and_event():
    sheet, features = cohort()
    data = task_dataset(SURVIVAL, sheet, features, folds=3)
    assert data.y.shape == (12, 2)
    assert list(data.y[:3, 0]) == [5.0, 6.0, 7.0] and list(data.y[:3, 1]) == [0.0, 1.0, 0.0]


def test_a_non_numeric_target_names_the_slide_and_value():
    sheet, features = cohort(age=[str(40 + i) for i in range(11)] + ["forty"])
    with pytest.raises(TaskError, match=r"column 'age' of slide 's11' holds 'forty', not a number"):
        task_dataset(REGRESSION, sheet, features, folds=3)
    with pytest.raises(TaskError, match="s11"):  # and before any embedding, from the sheet alone
        sheet_targets(REGRESSION, sheet)


def test_a_survival_task_without_its_event_column_says_so():
    sheet, features = cohort()
    with pytest.raises(TaskError, match="no column 'dead'.*`event`"):
        task_dataset({**SURVIVAL, "event": "dead"}, sheet, features, folds=3)
    with pytest.raises(TaskError, match="needs `event`"):
        task_dataset({k: v for k, v in SURVIVAL.items() if k != "event"}, sheet, features, folds=3)


def test_negative_time_and_a_bad_event_stop_and_name_the_row():
    sheet, features = cohort(months=["-1"] + [str(5 + i) for i in range(11)])
    with pytest.raises(TaskError, match=r"slide 's0' has a negative time -1"):
        task_dataset(SURVIVAL, sheet, features, folds=3)
    sheet, features = cohort(death=["1", "0", "2"] + ["0"] * 9)
    with pytest.raises(TaskError, match=r"slide 's2' has event '2' in column 'death'.*1 where the event"):
        task_dataset(SURVIVAL, sheet, features, folds=3)


def test_a_missing_time_or_event_drops_the_row_with_a_warning_naming_it(caplog):
    sheet, features = cohort(death=[None] + [str(i % 2) for i in range(1, 12)])
    sheet.loc[5, "months"] = ""
    with caplog.at_level(logging.WARNING):
        data = task_dataset(SURVIVAL, sheet, features, folds=3)
    assert len(data) == 10 and "s0" not in set(data.ids["slide"]) and "s5" not in set(data.ids["slide"])
    assert "left out: s0, s5" in caplog.text


def test_every_event_censored_is_an_error():
    sheet, features = cohort(death=["0"] * 12)
    with pytest.raises(TaskError, match="every time in column 'months' is censored"):
        task_dataset(SURVIVAL, sheet, features, folds=3)


def test_a_constant_target_is_an_error():
    sheet, features = cohort(age=["50"] * 12)
    with pytest.raises(TaskError, match="same value 50 in column 'age'"):
        task_dataset(REGRESSION, sheet, features, folds=3)


def test_too_few_patients_for_the_folds_names_the_fix():
    sheet, features = cohort(n=4)
    with pytest.raises(TaskError, match="2 labelled patient.*lower evaluation.folds to 2"):
        task_dataset(REGRESSION, sheet, features, folds=3)


def test_survival_is_not_a_tile_level_kind():
    sheet, features = cohort()
    with pytest.raises(TaskError, match="not of a tile"):
        task_dataset({**SURVIVAL, "level": "tile"}, sheet, features, folds=3)


def test_group_level_regression_pools_the_groups_images():
    sheet, features = cohort(group=[f"g{i // 2}" for i in range(12)], age=[str(40 + i // 2) for i in range(12)])
    data = task_dataset({**REGRESSION, "level": "group", "group_by": "group"}, sheet, features, folds=3)
    assert len(data) == 6 and list(data.y) == [40.0 + g for g in range(6)]
    assert data.X[0] == pytest.approx(np.full(DIM, 0.5))  # the mean of images 0 and 1


def test_tile_level_regression_reads_numeric_annotation_classes():
    sheet, features = cohort(n=6)
    sheet["annotations"] = "a.geojson"
    tiles = {s: pd.DataFrame({"x": [0, 1], "y": [0, 0], "label": ["0.2", "0.8"]}) for s in sheet["slide"]}
    data = task_dataset({"name": "cellularity", "level": "tile", "label": "label", "kind": "regression"},
                        sheet, features, tiles, folds=3)
    assert len(data) == 12 and sorted(set(data.y)) == [0.2, 0.8]
    tiles["s3"].loc[1, "label"] = "tumour"
    with pytest.raises(TaskError, match=r"slide 's3' holds 'tumour', not a number"):
        task_dataset({"name": "cellularity", "level": "tile", "label": "label", "kind": "regression"},
                     sheet, features, tiles, folds=3)


def test_regression_folds_stratify_on_target_bins_and_never_split_a_patient():
    rng = np.random.default_rng(0)
    y = np.sort(rng.normal(size=60))
    groups = np.array([f"p{i // 2}" for i in range(60)], dtype=object)
    bins = strata(y, "regression", folds=3)
    assert len(set(bins)) == 5  # quantile bins
    for _, _, train, test in cv_splits(bins, groups, 3, 1, 0):
        assert not set(groups[train]) & set(groups[test])
        # every fold sees low and high targets: each bin is in every test fold
        assert set(bins[test]) == set(bins)


def test_survival_folds_stratify_on_the_event():
    y = np.column_stack([np.arange(30.0), np.r_[np.ones(6), np.zeros(24)]])
    groups = np.array([f"p{i}" for i in range(30)], dtype=object)
    for _, _, _, test in cv_splits(strata(y, "survival", 3), groups, 3, 1, 0):
        assert y[test, 1].sum() == 2  # the six events spread evenly
