"""Bad config or sample sheet stops the run before any job, with a message that names the problem."""

import pytest
import yaml

from tests.support.runner import ROOT, snakemake

pytestmark = pytest.mark.workflow


def _config(tmp_path, samples, **changes):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    del config["demo"]
    config["samples"] = str(samples)
    config.update(changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _sheet(tmp_path, rows):
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in ("a.png", "b.png", "c.png"):
        (tmp_path / "images" / name).write_bytes(b"not read before the checks")
    path = tmp_path / "samples.tsv"
    header = "slide\tpath\tpatient\tannotations\ttumor\tstage"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD_ROWS = ["a\timages/a.png\tp1\timages/a.png\tyes\ts1", "b\timages/b.png\tp2\t\tno\ts2",
             "c\timages/c.png\tp3\t\tno\ts1"]


def _run_fails(tmp_path, config):
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", check=False)
    assert result.returncode != 0
    assert not (tmp_path / "results").exists(), "a job ran before the checks"
    return result.stdout + result.stderr


def test_wrong_config_key_stops_before_any_job(tmp_path):
    config = _config(tmp_path, _sheet(tmp_path, GOOD_ROWS), evalution={"folds": 3})
    output = _run_fails(tmp_path, config)
    assert "unknown key `evalution`. Did you mean `evaluation`?" in output
    assert "Traceback" not in output


def test_missing_sample_file_stops_before_any_job(tmp_path):
    rows = GOOD_ROWS[:2] + ["c\timages/gone.png\tp3\t\tno\ts1"]
    output = _run_fails(tmp_path, _config(tmp_path, _sheet(tmp_path, rows)))
    assert "line 4 (c): path" in output and "gone.png does not exist" in output


def test_duplicated_slide_id_stops_before_any_job(tmp_path):
    rows = GOOD_ROWS[:2] + ["a\timages/c.png\tp3\t\tno\ts1"]
    output = _run_fails(tmp_path, _config(tmp_path, _sheet(tmp_path, rows)))
    assert "slide id 'a' appears more than once" in output


def test_config_without_tasks_stops_instead_of_running_the_demo(tmp_path):
    # Issue 14: a user's --configfile without `tasks` inherited the demo's tasks and `demo` key (118 jobs, exit 0).
    config = tmp_path / "my.yaml"
    config.write_text(yaml.safe_dump({"samples": str(_sheet(tmp_path, GOOD_ROWS))}))
    result = snakemake(tmp_path, "--configfile", str(config), "-n", "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert str(config) in output and "`tasks`" in output and "config/examples/wsi.yaml" in output
    assert "demo_data" not in output, "the demo was planned"


def test_more_folds_than_a_class_has_patients_stops_before_any_embedding(tmp_path):
    # Issue 14, hole 4: found only in the head jobs, after the embedding, with advice that did not work.
    rows = [f"s{i}\timages/{'abc'[i % 3]}.png\tp{i}\t\t{'yes' if i % 2 else 'no'}\ts1" for i in range(8)]
    config = _config(tmp_path, _sheet(tmp_path, rows), evaluation={"folds": 5},
                     tasks={"tumor": {"level": "slide", "label": "tumor", "kind": "binary", "tiling": "wsi",
                                      "backbones": ["resnet18"]}}, selection={})
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # Stopped while the DAG was built: a run that asks only for tiles or stores is not stopped by it.
    assert not [p for p in (tmp_path / "results").rglob("*") if p.suffix in (".parquet", ".zarr", ".png")]
    assert "task 'tumor' (label 'tumor'): class 'no' has 4 patient(s); class 'yes' has 4 patient(s)" in output
    assert "lower evaluation.folds to 4" in output and "`drop_rare_classes` cannot help" in output
    assert "set `drop_rare_classes: true`" not in output


def test_a_bad_regression_or_survival_cell_stops_before_any_job_naming_its_line(tmp_path):
    rows = [f"s{i}\timages/{'abc'[i % 3]}.png\tp{i}\t\t{'yes' if i % 2 else 'no'}\t{50 + i}" for i in range(6)]
    rows[4] = rows[4].rsplit("\t", 1)[0] + "\tfifty"
    tasks = {"age": {"level": "slide", "label": "stage", "kind": "regression", "tiling": "wsi",
                     "backbones": ["resnet18"]},
             "os": {"level": "slide", "label": "stage", "event": "tumor", "kind": "survival", "tiling": "wsi",
                    "backbones": ["resnet18"]}}
    output = _run_fails(tmp_path, _config(tmp_path, _sheet(tmp_path, rows), tasks={"age": tasks["age"]},
                                          selection={}))
    assert "line 6: task 'age' (kind regression): column 'stage' of slide 's4' holds 'fifty', not a number" in output
    assert "Traceback" not in output
    rows[4] = rows[4].replace("fifty", "54")  # events written yes/no instead of 1/0
    output = _run_fails(tmp_path, _config(tmp_path, _sheet(tmp_path, rows), tasks={"os": tasks["os"]},
                                          selection={}))
    assert "slide 's0' has event 'no' in column 'tumor'; write 1 where the event was observed" in output
