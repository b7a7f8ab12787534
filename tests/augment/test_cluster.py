"""Dask cluster start-up from the `dask:` config: threads, a real LocalCluster, an existing scheduler, SLURM."""

import os
import shutil
import subprocess

import numpy as np
import pytest

from tileprobe.augment.cluster import ClusterError, dask_cluster, settings
from tileprobe.augment.per_tile import augment_stores, load_copies
from tileprobe.embed.store import EmbeddingWriter

SPEC = {"kind": "views", "copies": 2, "seed": 5}


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("stores")
    paths = {}
    for i, slide in enumerate(("s1", "s2", "s3")):
        data = np.random.default_rng(i).normal(size=(3, 400, 32)).astype("float32")
        paths[slide] = root / f"{slide}.zarr"
        with EmbeddingWriter(paths[slide], 400, {"final": 32}, n_views=3, attrs={"model": "m"}) as out:
            for view in range(3):
                out.write(view, 0, {"final": data[view]})
    return paths


def augmented(stores, out, chunk_tiles=None):
    augment_stores(stores, out, "views", SPEC, chunk_tiles=chunk_tiles)
    return {s: load_copies(out, s, "final") for s in stores}


@pytest.fixture(scope="module")
def expected(stores, tmp_path_factory):
    """Reference: the threaded scheduler with one worker."""
    with dask_cluster({"cluster": "threads", "workers": 1}) as client:
        assert client is None
        return augmented(stores, tmp_path_factory.mktemp("ref") / "ref.zarr")


def test_threads_is_the_default_and_uses_the_workers_asked_for():
    import dask

    assert settings(None)["cluster"] == "threads"
    with dask_cluster({"workers": 3}) as client:
        assert client is None
        assert dask.config.get("scheduler") == "threads" and dask.config.get("num_workers") == 3


def test_local_cluster_with_two_workers_gives_the_same_copies(stores, expected, tmp_path):
    from distributed import get_task_stream

    with dask_cluster({"cluster": "local", "workers": 2}) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        with get_task_stream(client) as stream:
            got = augmented(stores, tmp_path / "local.zarr", chunk_tiles=64)
        # The work really ran on the cluster's worker processes, chunk by chunk.
        workers = set(client.scheduler_info()["workers"])
        assert len(stream.data) > 3 * 7 and {t["worker"] for t in stream.data} <= workers
    for slide in stores:
        np.testing.assert_array_equal(got[slide], expected[slide])


def test_existing_scheduler_by_address(stores, expected, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with dask_cluster({"cluster": "threads", "address": cluster.scheduler_address}) as client:
            assert client.scheduler.address == cluster.scheduler_address
            got = augmented(stores, tmp_path / "addr.zarr")
    for slide in stores:
        np.testing.assert_array_equal(got[slide], expected[slide])


def test_unreachable_scheduler_names_the_key():
    with pytest.raises(ClusterError, match=r"dask\.address"):
        with dask_cluster({"address": "tcp://127.0.0.1:9"}, timeout=2):
            pass


def test_bad_settings_name_the_key():
    with pytest.raises(ClusterError, match=r"dask\.cluster"):
        settings({"cluster": "kubernetes"})
    if shutil.which("sbatch") is None:
        with pytest.raises(ClusterError, match="sbatch"):
            with dask_cluster({"cluster": "slurm", "queue": "q", "memory": "1GB"}):
                pass


@pytest.mark.slurm
def test_slurm_cluster_through_dask_jobqueue(stores, expected, tmp_path):
    """Workers started as real SLURM jobs (.ci/slurm/start.sh, `make test-slurm`) give the same copies."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.skip("no SLURM here (sinfo/sbatch absent): run `make test-slurm`, which installs and starts one")
    queue = os.environ.get("TILEPROBE_SLURM_PARTITION", "debug")  # the partition .ci/slurm/start.sh makes
    up = subprocess.run(["sinfo", "-h", "-p", queue, "-o", "%a"], capture_output=True, text=True, timeout=30)
    if up.returncode != 0 or "up" not in up.stdout:
        pytest.skip(f"SLURM partition {queue!r} is not up ({up.stderr.strip()}): run .ci/slurm/start.sh")
    cfg = {"cluster": "slurm", "workers": 1, "queue": queue, "cores": 1, "memory": "2GB", "walltime": "00:10:00",
           "log_directory": str(tmp_path / "logs")}
    with dask_cluster(cfg, timeout=180) as client:
        assert len(client.scheduler_info()["workers"]) == 1
        got = augmented(stores, tmp_path / "slurm.zarr")
    assert list((tmp_path / "logs").glob("*.out")), "the worker job's SLURM log went elsewhere"
    for slide in stores:
        np.testing.assert_array_equal(got[slide], expected[slide])
