"""The example configs users copy must pass the same checks as the demo."""

import pytest
import yaml

from tests.support.runner import ROOT
from tileprobe.config.check import check_config
from tileprobe.learn.heads.registry import head_names


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_is_valid(path):
    config = check_config(yaml.safe_load(path.read_text()), head_names())
    assert config["tasks"] and "samples" in config
