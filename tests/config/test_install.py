"""A regular (non-editable) install still checks configs: the schema ships inside the package."""

import json
import os
import shutil
import subprocess
import sys

from tests.support.runner import ROOT

# Run by a fresh interpreter with the installed copy first on sys.path, from a directory outside the repository.
CHECK = """
import json, sys
target, config = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, target)
import tileprobe
from tileprobe.config.check import ConfigError, check_config
from tileprobe.config.defaults import defaults
assert tileprobe.__file__.startswith(target), tileprobe.__file__
print("tile_px default:", defaults("tiling")["tile_px"])
try:
    check_config(config, known_heads=["logreg"])
except ConfigError as err:
    print(err)
"""

CONFIG = {
    "demo": {},
    "tilings": {"wsi": {"mpp": 0.5, "tile_pix": 64}},
    "backbones": {"resnet18": {"model": "resnet18"}},
    "tasks": {"tumor": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi"}},
}


def test_installed_package_names_a_wrong_key(tmp_path):
    # Build from a copy: an in-tree build would write build/ and *.egg-info into the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "tileprobe", source / "tileprobe", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    target = tmp_path / "site"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True, cwd=tmp_path, env=env, timeout=120,
    )
    shutil.rmtree(source)  # nothing may come from the copy that was built

    run = subprocess.run(
        [sys.executable, "-I", "-c", CHECK, str(target), json.dumps(CONFIG)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "tile_px default: 224" in run.stdout
    assert "unknown key `tilings.wsi.tile_pix`. Did you mean `tile_px`?" in run.stdout
