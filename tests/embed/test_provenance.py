"""Store provenance against a weights file: what made the numbers is the file's content, not its path."""

import shutil

import numpy as np
import pytest

from tileprobe.embed.provenance import ProvenanceError, check_store, check_stores
from tileprobe.embed.store import EmbeddingWriter

TILING = {"mode": "whole", "tile_px": 32, "tissue": "none"}
RANDOM = {"model": "resnet18", "weights": "none", "seed": 0, "layers": ["final"], "pool": "avg", "dtype": "float32"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TILEPROBE_CACHE", str(tmp_path / "cache"))


def _store(path, spec, sha256=None):
    attrs = {"spec": spec, "tiling": TILING, "weights": spec["weights"], "weights_sha256": sha256}
    with EmbeddingWriter(path, 1, {"final": 4}, coords={"x": np.zeros(1, int), "y": np.zeros(1, int)},
                         attrs=attrs) as writer:
        writer.write(0, 0, {"final": np.ones((1, 4), np.float32)})
    return path


def _weights(path, content=b"trained"):
    path.write_bytes(content)
    return path


def test_a_random_weights_store_is_refused_for_a_config_with_a_weights_file(tmp_path):
    store = _store(tmp_path / "s.zarr", RANDOM)
    weights = _weights(tmp_path / "r18.pth")
    with pytest.raises(ProvenanceError) as err:
        check_store(store, "r18", {**RANDOM, "weights": str(weights)}, "whole", TILING)
    message = str(err.value)
    assert str(store) in message and f"backbones.r18.weights was 'none', the config says '{weights}'" in message
    assert "new name" in message and "delete" in message


def test_a_store_from_another_weights_file_is_refused_by_checksum(tmp_path):
    from tileprobe.embed.checksum import sha256_file

    made_from = _weights(tmp_path / "a.pth", b"epoch 1")
    spec = {**RANDOM, "weights": str(made_from)}
    store = _store(tmp_path / "s.zarr", spec, sha256_file(made_from))
    check_store(store, "r18", spec, "whole", TILING)
    _weights(made_from, b"epoch 2, same path")
    with pytest.raises(ProvenanceError, match=f"sha256 {sha256_file(tmp_path / 'a.pth')}"):
        check_store(store, "r18", spec, "whole", TILING)


def test_the_same_weights_under_another_path_pass(tmp_path):
    from tileprobe.embed.checksum import sha256_file

    made_from = _weights(tmp_path / "a.pth")
    store = _store(tmp_path / "s.zarr", {**RANDOM, "weights": str(made_from)}, sha256_file(made_from))
    copy = shutil.copy(made_from, tmp_path / "elsewhere.pth")
    check_stores({"r18": {"slide1": store}}, {"tiling": "whole", "tiling_spec": TILING,
                                             "backbones": {"r18": {**RANDOM, "weights": str(copy)}}})


def test_a_missing_weights_file_is_named(tmp_path):
    from tileprobe.embed.checksum import sha256_file

    made_from = _weights(tmp_path / "a.pth")
    store = _store(tmp_path / "s.zarr", {**RANDOM, "weights": str(made_from)}, sha256_file(made_from))
    with pytest.raises(ProvenanceError, match="backbones.r18.weights: .*gone.pth does not exist"):
        check_store(store, "r18", {**RANDOM, "weights": str(tmp_path / "gone.pth")}, "whole", TILING)


def test_a_weights_file_store_is_refused_for_a_config_with_random_weights(tmp_path):
    made_from = _weights(tmp_path / "a.pth")
    store = _store(tmp_path / "s.zarr", {**RANDOM, "weights": str(made_from)}, "0" * 64)
    with pytest.raises(ProvenanceError, match=f"backbones.r18.weights was '{made_from}', the config says 'none'"):
        check_store(store, "r18", RANDOM, "whole", TILING)
