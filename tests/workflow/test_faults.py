"""Faults lose nothing: a killed extraction, a corrupt slide among good ones, a results directory nobody can write."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import zarr

from tests.support.runner import ROOT, SNAKEMAKE, snakemake
from tests.support.tiny_project import BACKBONE, HEAD_METRICS, make_project, write_config, write_images, write_sheet
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
def test_unreadable_images_in_a_shard_are_flagged_and_skipped_and_the_rest_is_learned(tmp_path):
    """Issue 14, hole 5 / issue 13, point 2: a truncated and a zero-byte image among good ones in one shard,
    run with --keep-going as a user would: the shard is embedded without them, the tiling manifest and the
    report flag them, the task warns naming each, and the head is trained on the others."""
    rows = write_images(tmp_path / "data/images", n=6)
    (tmp_path / "data/images/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated by a failed copy" * 10)
    (tmp_path / "data/images/empty.png").write_bytes(b"")
    rows += [{**rows[0], "slide": "broken", "path": "images/broken.png", "patient": "p8"},
             {**rows[1], "slide": "empty", "path": "images/empty.png", "patient": "p9"}]
    sheet = write_sheet(tmp_path / "data", rows)
    results = tmp_path / "results"
    config = write_config(tmp_path / "config.yaml", sheet, results)
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "2", "--keep-going")
    output = result.stdout + result.stderr

    store = zarr.open_group(results / f"embeddings/whole/{BACKBONE}/shard_all.zarr", mode="r")
    assert sorted(store["image"][...].tolist()) == sorted(r["slide"] for r in rows[:6])
    assert set(store.attrs["unreadable"]) == {"broken", "empty"}
    manifest = pd.read_parquet(results / "tiling_manifest.parquet").set_index("slide")
    assert manifest.loc[["broken", "empty"], "flags"].tolist() == ["unreadable", "unreadable"]
    assert "cannot" in manifest.loc["broken", "error"] and (manifest.loc[[r["slide"] for r in rows[:6]], "flags"] == "").all()
    head_log = (results / f"logs/head/{HEAD_METRICS.removeprefix('heads/').removesuffix('/metrics.json')}.log").read_text()
    assert "image broken skipped, it could not be read" in head_log and "image empty skipped" in head_log
    metrics = json.loads((results / HEAD_METRICS).read_text())
    assert metrics["n_samples"] == 6
    summary = (results / "report/summary.md").read_text()
    assert "broken" in summary and "empty" in summary and "unreadable" in summary
    assert "Traceback" not in output


@pytest.mark.workflow
def test_a_shard_whose_images_all_fail_stops_with_a_clear_message(tmp_path):
    folder = tmp_path / "data/images"
    rows = write_images(folder, n=2)
    for row in rows:
        (tmp_path / "data" / row["path"]).write_bytes(b"")
    sheet = write_sheet(tmp_path / "data", rows)
    results = tmp_path / "results"
    config = write_config(tmp_path / "config.yaml", sheet, results)
    table = results / "tiles/whole/shard_all.parquet"
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", str(table), check=False)
    assert result.returncode != 0 and not table.exists()
    summary = (results / "logs/failures.txt").read_text()
    assert "tile_shard" in summary and "shard_all: none of its 2 image(s) can be read; the first, img0" in summary
    assert "Traceback" not in summary


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


def test_failure_summary_keeps_tileprobes_hint_after_a_librarys_multi_line_message(tmp_path):
    (tmp_path / "run.log").write_text(SNAKEMAKE_LOG)
    (tmp_path / "results/logs/tile/wsi").mkdir(parents=True)
    quoted = "\n".join(["OpenSlideError: TIFFReadDirectory: failed", "  tile 12: DeflateError: incorrect header",
                        *[f"  directory {i}: bad offset" for i in range(40)]])
    (tmp_path / "results/logs/tile/wsi/bad.log").write_text(
        "2026-01-01 10:00:00,000 INFO tileprobe: opening\n"
        f"2026-01-01 10:00:01,000 ERROR tileprobe: tile (tiling=wsi, slide=bad) failed: cannot read slide "
        f"data/bad.svs: {quoted}; check the file is complete (copy it again)\n")
    reason = summarize([str(tmp_path / "run.log")], workdir=tmp_path).splitlines()[5].strip()
    assert reason.startswith("tile (tiling=wsi, slide=bad) failed: cannot read slide data/bad.svs: OpenSlideError")
    assert reason.endswith("; check the file is complete (copy it again)") and len(reason) <= 600
