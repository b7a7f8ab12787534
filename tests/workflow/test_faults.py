"""Faults lose nothing: a killed extraction, a corrupt slide among good ones, a results directory nobody can write."""

import os
import re
import signal
import subprocess
import time

import numpy as np
import pytest
import zarr

from tests.support.runner import ROOT, SNAKEMAKE, snakemake
from tests.support.tiny_project import BACKBONE, make_project, write_config, write_images, write_sheet
from tileprobe.atomic import remove_stale_temporaries, temporary_sibling
from tileprobe.tiling.table import read_tiles
from tileprobe.workflow import jobs
from tileprobe.workflow.failures import summarize


def _layers(store):
    group = zarr.open_group(store, mode="r")
    return {name: group[name][...] for name in ("final", "x", "y")}


@pytest.mark.workflow
def test_kill_9_during_extraction_then_rerun_gives_the_uninterrupted_result(tmp_path):
    # One 512-px image in 32-px tiles: 256 tiles, long enough to be caught mid-way.
    sheet = make_project(tmp_path / "data", n=1, big={"big": 512})  # two classes: the sheet check wants both
    results = tmp_path / "results"
    config = write_config(tmp_path / "config.yaml", sheet, results, tiling="grid")
    store = results / f"embeddings/grid/{BACKBONE}/big.zarr"
    args = ["--configfile", str(config), "--cores", "2", str(store)]

    run = subprocess.Popen([str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The writer names its temporary after its pid: kill exactly that process, as the OOM killer would.
    deadline, temporary = time.monotonic() + 300, None
    while temporary is None and time.monotonic() < deadline and run.poll() is None:
        temporary = next(store.parent.glob(".big.zarr.tmp-*"), None) if store.parent.exists() else None
        time.sleep(0.05)
    assert temporary is not None, "extraction never started:\n" + run.communicate()[0][-3000:]
    os.kill(int(temporary.name.rsplit("-", 1)[1]), signal.SIGKILL)
    output = run.communicate(timeout=300)[0]
    assert run.returncode != 0, output[-3000:]
    assert not store.exists(), "a killed extraction left something that looks finished"
    assert temporary.exists()  # SIGKILL leaves no chance to clean up: the rerun must

    snakemake(tmp_path, *args)
    assert not list(store.parent.glob(".big.zarr.*")), "the rerun left the killed try's temporary behind"
    assert zarr.open_group(store, mode="r").attrs["complete"] is True

    # The same slide embedded in one go, in this process, with the same settings.
    reference = tmp_path / "reference.zarr"
    tiling = read_tiles(results / "tiles/grid/big.parquet")[1]["tiling"]
    backbone = zarr.open_group(store, mode="r").attrs["spec"]
    jobs.embed(str(tmp_path / "data/images/big.png"), 0.5, str(results / "tiles/grid/big.parquet"), "grid",
               tiling, backbone, str(reference), threads=2)
    rerun, whole = _layers(store), _layers(reference)
    assert rerun["final"].shape == (1, 256, 512)
    for name in whole:
        np.testing.assert_array_equal(rerun[name], whole[name])


@pytest.mark.workflow
def test_corrupt_slide_with_keep_going_finishes_the_good_ones_and_names_the_bad_one(tmp_path):
    rows = write_images(tmp_path / "data/images", n=4)
    (tmp_path / "data/images/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated by a failed copy" * 10)
    rows.append({**rows[0], "slide": "broken", "path": "images/broken.png", "patient": "p9"})
    sheet = write_sheet(tmp_path / "data", rows)
    results = tmp_path / "results"
    # One job per image: in a batched tiling an image that cannot be tiled holds back its batch (next test).
    tiling = {"mode": "whole", "tile_px": 32, "tissue": "none", "slides_per_job": 1}
    config = write_config(tmp_path / "config.yaml", sheet, results, tilings={"whole": tiling})
    stores = [results / f"embeddings/whole/{BACKBONE}/{row['slide']}.zarr" for row in rows]
    qc = [results / f"qc/whole/{row['slide']}.png" for row in rows]

    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "2", "--keep-going",
                       *map(str, stores + qc), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for store, picture in zip(stores[:-1], qc[:-1]):
        assert zarr.open_group(store, mode="r").attrs["complete"] is True
        assert picture.stat().st_size > 0
    assert not stores[-1].exists() and not qc[-1].exists()

    summary = (results / "logs/failures.txt").read_text()
    assert "1 job(s) failed" in summary and "tile (tiling=whole, slide=broken) failed: cannot read" in summary
    assert f"{results}/logs/tile/whole/broken.log" in summary and "images/broken.png" in summary
    assert not any(row["slide"] in summary for row in rows[:-1])
    assert summary.strip() in output  # printed too, at the end of the run


@pytest.mark.workflow
def test_image_that_breaks_during_a_batch_fails_only_its_own_store(tmp_path):
    """Whole images are embedded in batches, the model loaded once; one that cannot be read by then (here:
    truncated after it was tiled) leaves its batch-mates' stores and fails its own job with the reason."""
    sheet = make_project(tmp_path / "data", n=4)
    results = tmp_path / "results"
    config = write_config(tmp_path / "config.yaml", sheet, results)
    slides = [f"img{i}" for i in range(4)]
    tables = [str(results / f"tiles/whole/{s}.parquet") for s in slides]
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2", *tables)
    broken = tmp_path / "data/images/img2.png"
    stamp = broken.stat()
    broken.write_bytes(broken.read_bytes()[:200])
    os.utime(broken, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # older than its tile table: not tiled again

    stores = [results / f"embeddings/whole/{BACKBONE}/{s}.zarr" for s in slides]
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "2", "--keep-going", *map(str, stores),
                       check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert len(re.findall(r"^(?:local)?rule embed_batch:", output, re.M)) == 1  # one model load for all four
    assert len(re.findall(r"^(?:local)?rule embed_from_batch:", output, re.M)) == 4
    for store in stores[:2] + stores[3:]:
        assert zarr.open_group(store, mode="r").attrs["complete"] is True
    assert not stores[2].exists()
    summary = (results / "logs/failures.txt").read_text()
    assert "1 job(s) failed" in summary and "embed_from_batch" in summary
    assert f"output: {stores[2]}" in summary
    assert "embedding img2 failed in its batch" in summary and "img2.png" in summary
    assert "Traceback" not in summary  # the reason, not a DataLoader worker's stack


@pytest.mark.workflow
def test_unwritable_results_directory_stops_the_run_with_a_clear_error(tmp_path):
    sheet = make_project(tmp_path / "data", n=4)
    results = tmp_path / "results"
    results.mkdir()
    config = write_config(tmp_path / "config.yaml", sheet, results)
    # root ignores permission bits; an immutable folder is unwritable for everyone.
    locked = ["chattr", "+i", str(results)] if os.geteuid() == 0 else None
    if locked:
        subprocess.run(locked, check=True)
    else:
        results.chmod(0o555)
    try:
        result = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", check=False)
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(results)], check=True)
        results.chmod(0o755)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"results directory {results} is not writable" in output
    assert "Set `results:` in your config" in output
    assert "Traceback" not in output and not any(results.iterdir())


def test_a_dead_writers_temporary_is_removed_a_live_ones_kept(tmp_path):
    store = tmp_path / "a.zarr"
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / temporary_sibling(store).name.replace(str(os.getpid()), str(gone.pid))
    live = temporary_sibling(store)
    for path in (dead, live):
        (path / "final").mkdir(parents=True)
    assert remove_stale_temporaries(store) == [dead]
    assert live.exists() and not dead.exists()


SNAKEMAKE_LOG = """\
Error in rule tile:
    message: None
    jobid: 4
    input: data/bad.svs
    output: results/tiles/wsi/bad.parquet, results/qc/wsi/bad.png
    log: results/logs/tile/wsi/bad.log (check log file(s) for error details)
Execute 1 jobs...
localrule tile:
    input: data/good.svs
    log: results/logs/tile/wsi/good.log
"""


def test_failure_summary_names_each_failed_job_its_input_log_and_error(tmp_path):
    (tmp_path / "run.log").write_text(SNAKEMAKE_LOG)
    (tmp_path / "results/logs/tile/wsi").mkdir(parents=True)
    (tmp_path / "results/logs/tile/wsi/bad.log").write_text(
        "2026-01-01 10:00:00,000 INFO tileprobe: opening\n"
        "2026-01-01 10:00:01,000 ERROR tileprobe: tile (tiling=wsi, slide=bad) failed: cannot read data/bad.svs\n")
    summary = summarize([str(tmp_path / "run.log")], workdir=tmp_path)
    assert summary.splitlines()[1:6] == [
        "  - tile", "      input: data/bad.svs", "      output: results/tiles/wsi/bad.parquet ...",
        "      log: results/logs/tile/wsi/bad.log",
        "      tile (tiling=wsi, slide=bad) failed: cannot read data/bad.svs"]
    assert "good" not in summary
    assert summarize([str(tmp_path / "missing.log")]) == ""
