"""`tileprobe info`, run as the installed console script on files the tests write."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.slide_factory import position_image, write_aperio, write_ome_tiff, write_png

SCRIPT = Path(sys.executable).parent / "tileprobe"


def run(*args):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    write_aperio(d / "scan 1.svs", position_image(1024, 768), mpp=0.25, associated=("label",))
    write_ome_tiff(d / "ome.ome.tif", position_image(512, 512), mpp=0.5, magnification=20)
    write_png(d / "ish.png", position_image(64, 48))
    (d / "broken.svs").write_bytes(b"II*\x00" + bytes(64))
    return d


def test_info_describes_each_format(files):
    result = run("info", files / "scan 1.svs", files / "ome.ome.tif", files / "ish.png")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "scan 1.svs" in out and "format       aperio" in out and "1024 x 768 px" in out
    assert "0.25 µm/px (from metadata)" in out and "objective    20x" in out
    assert "    2: 64 x 48 px, downsample 16" in out and "associated   label" in out
    assert "format       ome-tiff" in out and "0.5 µm/px" in out
    # a PNG has no mpp: the output says what to do about it
    assert "format       image (png)" in out and "add an `mpp` column" in out


def test_info_json_and_a_bad_file_among_good_ones(files):
    result = run("info", "--json", files / "broken.svs", files / "scan 1.svs", files / "missing.svs")
    assert result.returncode == 1
    assert "broken.svs" in result.stderr and "missing.svs" in result.stderr and "Traceback" not in result.stderr
    (info,) = json.loads(result.stdout)
    assert info["format"] == "aperio" and info["mpp"] == 0.25 and len(info["levels"]) == 3
    assert info["dimensions"] == [1024, 768] and info["associated_images"] == ["label"]
