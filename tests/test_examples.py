"""The example configs users copy must pass the same checks as the demo."""

import pytest
import yaml

from tileprobe.config import check_config
from tileprobe.heads import HEADS

from conftest import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_is_valid(path):
    config = check_config(yaml.safe_load(path.read_text()), HEADS)
    assert config["tasks"] and "samples" in config
