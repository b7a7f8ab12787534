"""Start the Dask scheduler that `dask:` in the config asks for, for the length of one job.

    dask: {cluster: threads}                    # default: the threaded scheduler in this process
    dask: {cluster: local, workers: 2}          # a distributed LocalCluster, one process per worker
    dask: {cluster: slurm, workers: 2, queue: main, cores: 1, memory: 4GB, walltime: "00:30:00"}
    dask: {address: "tcp://host:8786"}          # an existing scheduler; `cluster` is then ignored

Inside `with dask_cluster(cfg):` every `dask.compute` runs there; on leaving, whatever was started is stopped.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from typing import Iterator

from tileprobe.config.defaults import fill_defaults
from tileprobe.errors import TileprobeError

log = logging.getLogger(__name__)

CLUSTERS = ("threads", "local", "slurm")


class ClusterError(TileprobeError):
    """The Dask cluster asked for cannot be started; the message names the `dask` key and says the fix."""


def settings(cfg: dict | None) -> dict:
    """`dask:` with the schema's defaults filled in (a None value counts as unset) and checked."""
    merged = fill_defaults("dask", {k: v for k, v in (cfg or {}).items() if v is not None})
    if merged["cluster"] not in CLUSTERS:
        raise ClusterError(f"config: `dask.cluster` is {merged['cluster']!r}; use one of {', '.join(CLUSTERS)}.")
    if int(merged["workers"]) < 1:
        raise ClusterError(f"config: `dask.workers` is {merged['workers']}; use 1 or more.")
    return merged


@contextlib.contextmanager
def dask_cluster(cfg: dict | None = None, timeout: float = 120) -> Iterator[object | None]:
    """Yield a distributed Client (None for the threaded scheduler) that stays current inside the block."""
    cfg = settings(cfg)
    if cfg.get("address"):
        with _client(cfg["address"], f"dask.address {cfg['address']!r}", timeout) as client:
            yield client
    elif cfg["cluster"] == "threads":
        import dask

        with dask.config.set(scheduler="threads", num_workers=int(cfg["workers"])):
            yield None
    elif cfg["cluster"] == "local":
        from distributed import LocalCluster

        # One thread per worker process: `workers` is then the parallelism, and numpy is not oversubscribed.
        with LocalCluster(n_workers=int(cfg["workers"]), threads_per_worker=1, processes=True,
                          dashboard_address=None, memory_limit=cfg.get("memory", "auto")) as cluster:
            with _client(cluster, "dask.cluster: local", timeout) as client:
                yield client
    else:
        with _slurm_cluster(cfg, timeout) as cluster:
            with _client(cluster, "dask.cluster: slurm", timeout) as client:
                try:
                    client.wait_for_workers(int(cfg["workers"]), timeout=timeout)
                except TimeoutError as exc:
                    raise ClusterError(
                        f"config: `dask.cluster: slurm`: {cfg['workers']} worker job(s) on queue {cfg['queue']!r} did "
                        f"not start within {timeout:.0f} s; check `squeue`, `dask.queue` and `dask.memory`."
                    ) from exc
                yield client


@contextlib.contextmanager
def _client(target, what: str, timeout: float):
    from distributed import Client

    try:
        client = Client(target, set_as_default=True, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"config: {what}: cannot reach the Dask scheduler ({exc}); start it or fix the key."
        ) from exc
    with client:
        log.info("dask: %s, dashboard %s", what, client.dashboard_link)
        yield client


@contextlib.contextmanager
def _slurm_cluster(cfg: dict, timeout: float):
    if shutil.which("sbatch") is None:
        raise ClusterError("config: `dask.cluster: slurm` needs SLURM's `sbatch` on PATH; run on a SLURM login "
                           "node, or use `dask.cluster: local`.")
    missing = [k for k in ("queue", "memory") if not cfg.get(k)]
    if missing:
        raise ClusterError(f"config: `dask.cluster: slurm` needs `dask.{missing[0]}` (e.g. queue: main, "
                           "memory: 4GB) to ask SLURM for a job.")
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ClusterError("config: `dask.cluster: slurm` needs dask-jobqueue; pip install dask-jobqueue.") from exc

    cores = int(cfg.get("cores", 1))
    # One worker process per SLURM job, `cores` threads in it; `workers` jobs in all.
    cluster = SLURMCluster(queue=cfg["queue"], cores=cores, processes=1, memory=cfg["memory"],
                           walltime=cfg.get("walltime", "01:00:00"),
                           # else each worker job's slurm-<id>.out lands wherever the run was started
                           log_directory=cfg.get("log_directory"),
                           scheduler_options={"dashboard_address": None})
    with cluster:
        cluster.scale(jobs=int(cfg["workers"]))
        yield cluster
