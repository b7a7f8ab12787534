import copy

import pytest
import yaml

from tests.support.runner import ROOT
from tileprobe.config.check import ConfigError, check_config
from tileprobe.learn.heads.registry import head_names


@pytest.fixture
def demo_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_demo_config_is_valid_and_gets_defaults(demo_config):
    config = check_config(demo_config, head_names())
    assert config["tilings"]["wsi"]["overlap_px"] == 0
    assert config["evaluation"]["repeats"] == 1 and config["dask"]["cluster"] == "threads"
    assert config["tasks"]["tumor"]["heads"] == ["logreg"]
    assert config["tasks"]["tumor"]["backbones"] == "best"  # the proxy task's winner (tileprobe.select)
    assert config["selection"] == {"proxy_task": "tissue", "metric": "balanced_accuracy"}
    assert config["backbones"]["resnet18"]["dtype"] == "float32"


def test_typo_names_the_key_and_suggests_the_fix(demo_config):
    demo_config["tilings"]["wsi"]["tile_pix"] = 64
    with pytest.raises(ConfigError, match=r"unknown key `tilings\.wsi\.tile_pix`\. Did you mean `tile_px`\?"):
        check_config(demo_config, head_names())


def test_top_level_typo(demo_config):
    demo_config["tilngs"] = demo_config.pop("tilings")
    with pytest.raises(ConfigError) as err:
        check_config(demo_config, head_names())
    assert "unknown key `tilngs`. Did you mean `tilings`?" in str(err.value)
    assert "missing a required key" in str(err.value)


def test_grid_tiling_needs_mpp(demo_config):
    del demo_config["tilings"]["wsi"]["mpp"]
    with pytest.raises(ConfigError, match=r"`tilings\.wsi` is missing a required key: 'mpp'"):
        check_config(demo_config, head_names())


def test_task_references_are_checked(demo_config):
    bad = copy.deepcopy(demo_config)
    bad["tasks"]["tumor"]["backbones"] = ["resnet81"]
    with pytest.raises(ConfigError, match=r"`tasks\.tumor\.backbones` names unknown backbone `resnet81` \(did you mean `resnet18`\?\)"):
        check_config(bad, head_names())
    bad = copy.deepcopy(demo_config)
    bad["tasks"]["stage"]["heads"] = ["lgoreg"]
    with pytest.raises(ConfigError, match="unknown head `lgoreg`"):
        check_config(bad, head_names())


def test_tile_task_needs_grid_tiling(demo_config):
    demo_config["tasks"]["tissue"]["tiling"] = "ish"
    with pytest.raises(ConfigError, match="tile-level but tiling `ish` has mode `whole`"):
        check_config(demo_config, head_names())


def test_samples_or_demo_required(demo_config):
    del demo_config["demo"]
    with pytest.raises(ConfigError, match="set `samples`"):
        check_config(demo_config, head_names())


def test_names_must_be_plain(demo_config):
    demo_config["backbones"]["res net"] = demo_config["backbones"]["resnet18"]
    with pytest.raises(ConfigError, match="'res net'"):
        check_config(demo_config, head_names())


def test_a_survival_task_needs_its_event_column_and_a_slide_level(demo_config):
    survival = {"level": "slide", "label": "months", "kind": "survival", "tiling": "wsi"}
    demo_config["tasks"]["os"] = dict(survival)
    with pytest.raises(ConfigError, match="survival task `os` has no `event`.*`label` names the time column"):
        check_config(demo_config, head_names())
    demo_config["tasks"]["os"] = {**survival, "event": "death", "level": "tile"}
    with pytest.raises(ConfigError, match="survival at tile level"):
        check_config(demo_config, head_names())


def test_a_tasks_augmentations_are_checked_and_value_tasks_skip_class_mixing(demo_config):
    from tileprobe import augment

    demo_config["tasks"]["stage"]["augmentations"] = ["mixpu"]
    with pytest.raises(ConfigError, match=r"`tasks.stage.augmentations` names unknown augmentation `mixpu` "
                                          r"\(did you mean `mixup`\?\)"):
        check_config(demo_config, head_names())
    del demo_config["tasks"]["stage"]["augmentations"]
    config = check_config(demo_config, head_names())
    specs = augment.check_augmentations(config["augmentations"])
    assert augment.for_task(config["tasks"]["stage"], specs) == ["none", "dropout", "mixup"]
    # mixup mixes two rows of one class: a number or a survival time has none, so it is left out by default
    assert augment.for_task({"kind": "regression"}, specs) == ["none", "dropout"]
    assert augment.for_task(config["tasks"]["survival"], specs) == ["none"]  # the demo asks for `none` only


def test_the_proxy_task_must_be_a_class_task(demo_config):
    from tileprobe.learn.select import SelectionError, check_selection

    demo_config["selection"]["proxy_task"] = "tumor_fraction"
    config = check_config(demo_config, head_names())
    with pytest.raises(SelectionError, match="'tumor_fraction' is a regression task"):
        check_selection(config)
