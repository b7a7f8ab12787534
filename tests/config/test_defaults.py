"""Defaults live only in the schema: the config check and every library function read them from there."""

import copy

import pytest
import yaml

from tests.support.runner import ROOT
from tileprobe.augment.cluster import settings as dask_settings
from tileprobe.augment.specs import KINDS, resolve
from tileprobe.config import defaults as schema_defaults
from tileprobe.config.check import check_config
from tileprobe.config.defaults import defaults, fill_defaults
from tileprobe.embed.registry import check_spec
from tileprobe.learn.evaluate import settings as evaluation_settings
from tileprobe.learn.heads.registry import head_names
from tileprobe.tiling.grid import tiling_settings


@pytest.fixture
def schema(monkeypatch):
    """An editable copy of the config schema that `tileprobe.config.defaults` reads from."""
    edited = copy.deepcopy(schema_defaults._schema())
    monkeypatch.setattr(schema_defaults, "_schema", lambda: edited)
    schema_defaults._validator.cache_clear()
    yield edited
    schema_defaults._validator.cache_clear()


def test_library_functions_take_their_defaults_from_the_schema(schema):
    schema["$defs"]["tiling"]["properties"]["thumbnail_px"]["default"] = 999
    schema["$defs"]["backbone"]["properties"]["batch_size"]["default"] = 7
    schema["properties"]["evaluation"]["properties"]["folds"]["default"] = 3
    schema["properties"]["dask"]["properties"]["workers"]["default"] = 5
    assert tiling_settings({"mpp": 0.5})["thumbnail_px"] == 999
    assert check_spec({"model": "resnet18"})["batch_size"] == 7
    assert evaluation_settings(None)["folds"] == 3
    assert dask_settings(None)["workers"] == 5


def test_partial_sections_get_every_default():
    assert tiling_settings({"mpp": 0.5})["tile_px"] == 224  # the config's default, also for direct callers
    spec = check_spec({"model": "resnet18"})
    assert spec == {"model": "resnet18", "weights": "none", "layers": ["final"], "pool": None, "batch_size": 32,
                    "dtype": "float32", "input_px": None, "seed": 0}
    assert evaluation_settings({"folds": None, "repeats": 2}) == {"folds": 5, "repeats": 2, "seed": 0, "bootstrap": 1000}
    assert resolve("dropout", {"p": 0.2}) == {"kind": "dropout", "p": 0.2, "copies": 1, "seed": 0}
    assert KINDS["balance"] == {"k": 5, "seed": 0}  # per-kind parameters come from the schema's if/then


def test_each_augmentation_kind_fills_its_own_defaults():
    assert fill_defaults("augmentation", {"kind": "mixup"}) == {"kind": "mixup", "alpha": 0.4, "copies": 1, "seed": 0}


def test_check_config_fills_what_the_rules_index():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    del config["selection"]
    config["tasks"]["tumor"]["backbones"] = ["resnet18"]
    check_config(config, head_names())
    assert config["selection"] == {"metric": "balanced_accuracy"}
    assert config["views"] == 1 and config["dask"]["workers"] == 2
    assert "slides_per_job" not in config["tilings"]["wsi"]  # computed by the rules: see the schema
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["tasks"]["embryo"] = {"level": "group", "label": "stage", "kind": "multiclass", "tiling": "ish"}
    check_config(config, head_names())
    assert list(config["tasks"]["embryo"])[-2:] == ["backbones", "group_by"]  # the order the rules' params had


def test_filling_copies():
    given = {"mpp": 0.5}
    filled = fill_defaults("tiling", given)
    filled["remove_artefacts"].append("pen")
    assert given == {"mpp": 0.5} and defaults("tiling")["remove_artefacts"] == []


def test_unknown_section_names_the_known_ones():
    with pytest.raises(KeyError, match="'tilings'.*known: augmentation, backbone, dask"):
        defaults("tilings")
