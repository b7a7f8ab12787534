import logging

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn.data import (
    TaskData,
    TaskError,
    all_terms,
    predicted_labels,
    samples_for_task,
    subset,
    task_dataset,
    term_matrix,
    tile_mean,
)

DIM = 4


def feats(n_tiles, offset):
    return (np.arange(n_tiles * DIM, dtype=np.float32).reshape(n_tiles, DIM) + offset)


@pytest.fixture
def sheet():
    return pd.DataFrame({
        "slide": ["s1", "s2", "s3", "s4", "s5", "s6"],
        "patient": ["p1", "p1", "p2", "p3", "p4", None],
        "grade": ["low", "high", "low", "", "high", np.nan],
        "annotations": ["a1.geojson", None, "a3.geojson", "a4.geojson", "", None],
    })


def test_samples_for_task(sheet):
    assert samples_for_task({"level": "slide", "label": "grade", "kind": "binary"}, sheet) == ["s1", "s2", "s3", "s5"]
    assert samples_for_task({"level": "tile", "label": "tissue", "kind": "binary"}, sheet) == ["s1", "s3", "s4"]


def test_missing_label_column_names_it(sheet):
    with pytest.raises(TaskError, match="'stage'"):
        samples_for_task({"level": "slide", "label": "stage", "kind": "binary"}, sheet)


def test_slide_level_means_tiles_and_skips_unlabelled_and_empty(sheet, caplog):
    features = {"s1": feats(3, 0), "s2": feats(2, 100), "s3": feats(1, 7), "s4": feats(2, 0),
                "s5": np.zeros((0, DIM), np.float32)}
    task = {"level": "slide", "label": "grade", "kind": "binary"}
    with caplog.at_level(logging.WARNING):
        data = task_dataset(task, sheet, features, folds=1)
    assert "s5" in caplog.text  # zero tiles: skipped and named
    assert data.ids["slide"].tolist() == ["s1", "s2", "s3"]
    assert list(data.ids.columns) == ["slide"]
    assert data.y.tolist() == ["low", "high", "low"]
    assert data.groups.tolist() == ["p1", "p1", "p2"]
    assert data.X.dtype == np.float32 and data.X.shape == (3, DIM)
    np.testing.assert_allclose(data.X[0], features["s1"].mean(axis=0))
    np.testing.assert_allclose(data.X[2], features["s3"][0])  # one tile (whole-image mode): the tile itself


def test_image_level_uses_same_rows(sheet):
    features = {s: feats(1, i) for i, s in enumerate(["s1", "s2", "s3", "s5"])}
    data = task_dataset({"level": "image", "label": "grade", "kind": "binary"}, sheet, features, folds=1)
    np.testing.assert_array_equal(data.X, np.stack([features[s][0] for s in ["s1", "s2", "s3", "s5"]]))


def test_missing_patient_defaults_to_slide():
    sheet = pd.DataFrame({"slide": ["a", "b"], "patient": ["p", None], "lab": ["x", "y"]})
    data = task_dataset({"level": "slide", "label": "lab", "kind": "binary"}, sheet,
                        {"a": feats(1, 0), "b": feats(1, 1)}, folds=1)
    assert data.groups.tolist() == ["p", "b"]


def test_tile_level_rows_are_labelled_tiles(sheet):
    tiles = {
        "s1": pd.DataFrame({"x": [0, 10, 20], "y": [0, 0, 5], "label": ["tumour", None, "stroma"]}),
        "s3": pd.DataFrame({"x": [1, 2], "y": [3, 4], "label": ["", "tumour"]}),
        "s4": pd.DataFrame({"x": [7], "y": [8], "label": ["stroma"]}),
    }
    features = {"s1": feats(3, 0), "s3": feats(2, 50), "s4": feats(1, 90)}
    data = task_dataset({"level": "tile", "label": "tissue", "kind": "binary"}, sheet, features, tiles, folds=1)
    assert data.ids.to_dict("list") == {"slide": ["s1", "s1", "s3", "s4"], "x": [0, 20, 2, 7], "y": [0, 5, 4, 8]}
    assert data.y.tolist() == ["tumour", "stroma", "tumour", "stroma"]
    assert data.groups.tolist() == ["p1", "p1", "p2", "p3"]
    np.testing.assert_array_equal(data.X, np.stack([features["s1"][0], features["s1"][2],
                                                    features["s3"][1], features["s4"][0]]))


def test_tile_count_mismatch_is_an_error(sheet):
    tiles = {s: pd.DataFrame({"x": [0], "y": [0], "label": ["a"]}) for s in ["s1", "s3", "s4"]}
    features = {"s1": feats(2, 0), "s3": feats(1, 0), "s4": feats(1, 0)}
    with pytest.raises(TaskError, match="s1.*re-run"):
        task_dataset({"level": "tile", "label": "t", "kind": "binary"}, sheet, features, tiles, folds=1)


def test_missing_embeddings_for_labelled_slide(sheet):
    with pytest.raises(TaskError, match="'s2'"):
        task_dataset({"level": "slide", "label": "grade", "kind": "binary"}, sheet,
                     {"s1": feats(1, 0), "s3": feats(1, 0), "s5": feats(1, 0)}, folds=1)


def cohort(n_per_class, name="lesion"):
    """One slide per patient; n_per_class maps class -> number of patients."""
    labels = [c for c, n in n_per_class.items() for _ in range(n)]
    slides = [f"s{i}" for i in range(len(labels))]
    sheet = pd.DataFrame({"slide": slides, "patient": [f"p{i}" for i in range(len(labels))], name: labels})
    return sheet, {s: feats(2, i) for i, s in enumerate(slides)}


def test_rare_class_raises_with_name_count_and_fix():
    sheet, features = cohort({"a": 6, "b": 5, "rare": 2})
    task = {"name": "lesions", "level": "slide", "label": "lesion", "kind": "multiclass"}
    with pytest.raises(TaskError) as err:
        task_dataset(task, sheet, features, folds=5)
    message = str(err.value)
    assert "'rare'" in message and "2 patient" in message and "drop_rare_classes" in message
    assert "'a'" not in message and "'b'" not in message


def test_rare_class_counts_patients_not_slides():
    sheet, features = cohort({"a": 5, "b": 5})
    sheet.loc[sheet["lesion"] == "b", "patient"] = ["q1", "q1", "q2", "q2", "q3"]  # 5 slides, 3 patients
    with pytest.raises(TaskError, match="'b' has 3 patient"):
        task_dataset({"level": "slide", "label": "lesion", "kind": "binary"}, sheet, features, folds=5)


def test_drop_rare_classes_drops_them():
    sheet, features = cohort({"a": 6, "b": 5, "rare": 2})
    task = {"level": "slide", "label": "lesion", "kind": "multiclass", "drop_rare_classes": True}
    data = task_dataset(task, sheet, features, folds=5)
    assert data.classes == ["a", "b"]
    assert len(data) == 11 and len(data.ids) == 11 and data.X.shape[0] == 11


def test_fewer_than_two_classes():
    sheet, features = cohort({"a": 6, "rare": 1})
    task = {"level": "slide", "label": "lesion", "kind": "binary", "drop_rare_classes": True}
    with pytest.raises(TaskError, match=r"would leave 1 class\(es\), too few to learn"):
        task_dataset(task, sheet, features, folds=5)


def test_binary_task_with_three_classes():
    sheet, features = cohort({"a": 2, "b": 2, "c": 2})
    with pytest.raises(TaskError, match="kind: multiclass"):
        task_dataset({"level": "slide", "label": "lesion", "kind": "binary"}, sheet, features, folds=2)


def test_unsupported_level_says_what_is():
    with pytest.raises(TaskError, match="tile, slide, image"):
        samples_for_task({"level": "cohort", "label": "x", "kind": "binary"}, pd.DataFrame({"slide": []}))


def test_subset_keeps_rows_aligned():
    data = TaskData(X=np.arange(6, dtype=np.float32).reshape(3, 2), y=np.array(["a", "b", "a"], dtype=object),
                    groups=np.array(["p", "q", "r"], dtype=object), ids=pd.DataFrame({"slide": ["x", "y", "z"]}))
    part = subset(data, np.array([False, True, True]))
    assert part.ids["slide"].tolist() == ["y", "z"] and part.groups.tolist() == ["q", "r"]
    np.testing.assert_array_equal(part.X, data.X[1:])


def test_task_error_is_a_user_error():
    from tileprobe.errors import TileprobeError

    assert issubclass(TaskError, TileprobeError) and issubclass(TaskError, ValueError)


def ish_sheet():
    """Two genes x two stages, two images per (gene, stage) group; the gene is the patient."""
    rows = []
    for gene in ("g1", "g2"):
        for stage in ("s1", "s2"):
            for k in range(2):
                rows.append({"slide": f"{gene}_{stage}_{k}", "patient": gene, "group": f"{gene}_{stage}",
                             "stage": stage, "terms": "eye;gut" if gene == "g1" else "gut"})
    sheet = pd.DataFrame(rows)
    features = {s: feats(1, 10 * i) for i, s in enumerate(sheet["slide"])}
    return sheet, features


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_group_level_pools_each_groups_images(pool):
    sheet, features = ish_sheet()
    task = {"level": "group", "label": "stage", "kind": "binary", "pool": pool}
    data = task_dataset(task, sheet, features, folds=1)
    assert data.ids["group"].tolist() == ["g1_s1", "g1_s2", "g2_s1", "g2_s2"]
    assert data.ids["slide"].tolist()[0] == "g1_s1_0;g1_s1_1"
    assert data.y.tolist() == ["s1", "s2", "s1", "s2"] and data.groups.tolist() == ["g1", "g1", "g2", "g2"]
    members = np.stack([features["g1_s1_0"][0], features["g1_s1_1"][0]])
    np.testing.assert_allclose(data.X[0], members.mean(axis=0) if pool == "mean" else members.max(axis=0))
    assert [len(b) for b in data.bags] == [2, 2, 2, 2]  # the group's tiles, for MIL heads


def test_group_with_two_labels_is_an_error_naming_it():
    sheet, features = ish_sheet()
    sheet.loc[sheet["slide"] == "g2_s2_1", "stage"] = "s1"
    with pytest.raises(TaskError, match="group 'g2_s2' mixes labels"):
        task_dataset({"level": "group", "label": "stage", "kind": "binary"}, sheet, features, folds=1)


def test_multilabel_terms_are_normalised_and_counted_per_patient():
    sheet, features = ish_sheet()
    sheet.loc[0, "terms"] = " gut ; eye "  # spaces and order do not make a new label
    task = {"name": "terms", "level": "image", "label": "terms", "kind": "multilabel"}
    data = task_dataset(task, sheet, features, folds=1)
    assert data.kind == "multilabel" and data.classes == ["eye", "gut"]
    assert data.y.tolist()[:2] == ["eye;gut", "eye;gut"]
    with pytest.raises(TaskError, match="class 'eye' has 1 patient.*drop_rare_classes"):
        task_dataset(task, sheet, features, folds=2)


def test_dropping_a_rare_term_keeps_the_rows():
    sheet, features = ish_sheet()
    sheet = pd.concat([sheet, sheet.assign(patient=sheet["patient"] + "b", slide=sheet["slide"] + "b")],
                      ignore_index=True)
    sheet.loc[sheet["patient"] == "g2b", "terms"] = "ear"
    features = {**features, **{s + "b": f for s, f in features.items()}}
    task = {"level": "image", "label": "terms", "kind": "multilabel", "drop_rare_classes": True}
    data = task_dataset(task, sheet, features, folds=3)  # gut: 3 patients; eye: 2, ear: 1 are dropped
    assert data.classes == ["gut"] and len(data) == 16
    assert (data.y == "").sum() == 4  # g2b's images stay, as examples without the kept term


def test_terms_encode_and_predictions_join_them_back():
    labels = ["x;z", "", "y; x", "w"]
    assert all_terms(labels) == ["w", "x", "y", "z"]
    # One matrix for heads, metrics and chance; a term outside the list (here "w") is left out.
    assert term_matrix(labels, ["x", "y", "z"]).tolist() == [[True, False, True], [False, False, False],
                                                            [True, True, False], [False, False, False]]
    proba = np.array([[0.5, 0.49, 0.9], [0.1, 0.2, 0.3]])
    predicted = predicted_labels(proba, ["x", "y", "z"], "multilabel")
    assert predicted.dtype == object and predicted.tolist() == ["x;z", ""]  # p >= 0.5, in term order
    assert predicted_labels(proba, ["x", "y", "z"], "multiclass").tolist() == ["z", "z"]


def test_tile_mean_sums_in_float64():
    tiles = np.full((3, 2), 0.1, dtype=np.float32)
    tiles[0] = 1e8  # float32 sums lose the 0.1s next to 1e8
    mean = tile_mean(tiles)
    assert mean.dtype == np.float64
    np.testing.assert_array_equal(mean, tiles.astype(np.float64).mean(axis=0))
    assert (mean != tiles.mean(axis=0)).all()


def test_rare_class_advice_says_only_what_would_work():
    from tileprobe.learn.data import check_folds

    sheet, _ = cohort({"a": 6, "b": 5, "rare": 2})
    task = {"name": "lesions", "label": "lesion", "kind": "multiclass"}
    with pytest.raises(TaskError) as err:
        check_folds(task, sheet["lesion"], sheet["patient"], 5)
    assert "lower evaluation.folds to 2" in str(err.value) and "set `drop_rare_classes: true`" in str(err.value)
    assert check_folds({**task, "drop_rare_classes": True}, sheet["lesion"], sheet["patient"], 5) == {"rare": 2}

    sheet, _ = cohort({"a": 4, "b": 4})
    for drop in (False, True):  # dropping both classes leaves nothing to learn: never suggested, never accepted
        with pytest.raises(TaskError) as err:
            check_folds({**task, "kind": "binary", "drop_rare_classes": drop}, sheet["lesion"], sheet["patient"], 5)
        message = str(err.value)
        assert "lower evaluation.folds to 4" in message and "would leave 0 class(es)" in message
        assert "set `drop_rare_classes: true`" not in message
