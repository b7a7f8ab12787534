import pandas as pd
import pytest

from tileprobe.config.samples import SampleSheetError, read_samples, write_manifest

TASKS = {"tumor": {"level": "slide", "label": "tumor", "kind": "binary"}}


def _sheet(tmp_path, rows, header="slide\tpath\tpatient\tmpp\ttumor"):
    for name in ("a.tiff", "b.tiff", "c d é.tiff"):
        (tmp_path / name).write_bytes(b"x")
    path = tmp_path / "samples.tsv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_good_sheet_resolves_paths_and_defaults(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t0.25\tyes", "s2\tc d é.tiff\t\t\tno"])
    sheet = read_samples(path, TASKS)
    assert list(sheet.index) == ["s1", "s2"]
    assert sheet.at["s1", "path"] == str(tmp_path / "a.tiff")
    assert sheet.at["s2", "path"] == str(tmp_path / "c d é.tiff")
    assert sheet.at["s2", "patient"] == "s2"
    assert sheet.at["s1", "mpp"] == 0.25 and pd.isna(sheet.at["s2", "mpp"])


def test_duplicated_slide_id_names_both_lines(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes", "s1\tb.tiff\tp2\t\tno"])
    with pytest.raises(SampleSheetError) as err:
        read_samples(path, TASKS)
    assert "line 2: slide id 's1' appears more than once" in str(err.value)
    assert "line 3" in str(err.value) and str(path) in str(err.value)


def test_missing_file_names_row_and_path(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes", "s2\tmissing.svs\tp2\t\tno"])
    with pytest.raises(SampleSheetError, match=r"line 3 \(s2\): path .*missing\.svs does not exist"):
        read_samples(path, TASKS)


def test_missing_label_column_lists_alternatives(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes"], header="slide\tpath\tpatient\tmpp\tcancer")
    with pytest.raises(SampleSheetError, match=r"(?s)needs label column `tumor`.*one of: cancer"):
        read_samples(path, TASKS)


def test_bad_id_and_bad_mpp(tmp_path):
    with pytest.raises(SampleSheetError, match=r"line 2: slide id 's 1'"):
        read_samples(_sheet(tmp_path, ["s 1\ta.tiff\tp1\t\tyes", "s2\tb.tiff\tp\t\tno"]), TASKS)
    with pytest.raises(SampleSheetError, match=r"line 3 \(s2\): mpp 'fast' is not a number"):
        read_samples(_sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes", "s2\tb.tiff\tp\tfast\tno"]), TASKS)


def test_binary_task_needs_two_classes(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes", "s2\tb.tiff\tp2\t\tmaybe", "s3\ta.tiff\tp3\t\tno"])
    with pytest.raises(SampleSheetError, match="binary but column `tumor` has 3 classes"):
        read_samples(path, TASKS)


def test_pending_files_may_be_absent(tmp_path):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t\tyes", "s2\tlater.tiff\tp2\t\tno"])
    sheet = read_samples(path, TASKS, pending=[str(tmp_path / "later.tiff")])
    assert len(sheet) == 2


def test_manifest_round_trip(tmp_path):
    sheet = read_samples(_sheet(tmp_path, ["s1\ta.tiff\tp1\t0.5\tyes", "s2\tb.tiff\tp2\t\tno"]), TASKS)
    write_manifest(sheet, tmp_path / "manifest.parquet")
    back = pd.read_parquet(tmp_path / "manifest.parquet")
    assert list(back["slide"]) == ["s1", "s2"] and back["mpp"].iloc[0] == 0.5


@pytest.mark.parametrize("mpp", ["1e6", "0", "-0.5", "0.01", "250"])
def test_absurd_mpp_names_slide_and_plausible_range(tmp_path, mpp):
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t0.25\tyes", f"s2\tb.tiff\tp2\t{mpp}\tno"])
    with pytest.raises(SampleSheetError) as err:
        read_samples(path, TASKS)
    assert str(path) in str(err.value) and "line 3 (s2): mpp" in str(err.value)
    assert "0.05-100 µm/px" in str(err.value)


def test_empty_sheet_file_is_named_and_says_what_to_write(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_bytes(b"")
    with pytest.raises(SampleSheetError, match=r"samples\.tsv is empty; .*\(`slide`, `path`"):
        read_samples(path, TASKS)


def test_header_without_rows_says_so(tmp_path):
    path = _sheet(tmp_path, [])
    with pytest.raises(SampleSheetError, match=r"samples\.tsv:\n  - it has no rows"):
        read_samples(path, TASKS)


def test_missing_label_words_are_missing_and_counted(tmp_path):
    # read_csv keeps these as strings (keep_default_na=False), so they used to become classes of their own.
    words = ["NaN", "NA", "n/a", "N/A", "nan", "null", " None "]
    rows = ["s1\ta.tiff\tp1\t\tyes", "s2\tb.tiff\tp2\t\tno", "s3\ta.tiff\tp3\t\t"]
    rows += [f"w{i}\ta.tiff\tq{i}\t\t{w}" for i, w in enumerate(words)]
    with pytest.warns(UserWarning, match=r"samples\.tsv: column `tumor`: 7 row\(s\) .*8 row\(s\) of 10"):
        sheet = read_samples(_sheet(tmp_path, rows), TASKS)
    assert sheet["tumor"].isna().sum() == 8 and sorted(sheet["tumor"].dropna().unique()) == ["no", "yes"]


def test_na_patients_are_each_their_own_patient_not_one_patient_called_na(tmp_path):
    rows = ["s1\ta.tiff\tp1\t\tyes", "s2\tb.tiff\tNA\t\tno", "s3\ta.tiff\tn/a\t\tyes", "s4\ta.tiff\tp1\t\tno"]
    with pytest.warns(UserWarning, match=r"column `patient`: 2 row\(s\) say NA.*its own patient"):
        sheet = read_samples(_sheet(tmp_path, rows), TASKS)
    assert sheet["patient"].tolist() == ["p1", "s2", "s3", "p1"]


def test_na_groups_are_missing(tmp_path):
    rows = ["s1\ta.tiff\tp1\tg1\tyes", "s2\tb.tiff\tp2\tNA\tno"]
    with pytest.warns(UserWarning, match=r"column `group`: 1 row\(s\) say NA.*no group"):
        sheet = read_samples(_sheet(tmp_path, rows, header="slide\tpath\tpatient\tgroup\ttumor"), TASKS)
    assert sheet["group"].tolist()[0] == "g1" and sheet["group"].isna().tolist() == [False, True]


def test_regression_and_survival_cells_are_checked_at_read_time_naming_each_line(tmp_path):
    tasks = {"age": {"level": "slide", "label": "age", "kind": "regression"},
             "os": {"level": "slide", "label": "months", "event": "death", "kind": "survival"}}
    header = "slide\tpath\tpatient\tage\tmonths\tdeath"
    good = read_samples(_sheet(tmp_path, ["s1\ta.tiff\tp1\t61\t12.5\t1", "s2\tb.tiff\tp2\t\t30\t0"], header), tasks)
    assert list(good.index) == ["s1", "s2"]
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\tsixty\t12.5\t1", "s2\tb.tiff\tp2\t50\t-3\t0",
                             "s3\tb.tiff\tp3\t50\t3\tyes"], header)
    with pytest.raises(SampleSheetError, match="line 2: task 'age' .kind regression.: column 'age' of slide 's1' "
                                               "holds 'sixty', not a number"):
        read_samples(path, tasks)
    with pytest.raises(SampleSheetError) as err:
        read_samples(path, {"os": tasks["os"]})
    text = str(err.value)
    assert "line 3: task 'os': slide 's2' has a negative time -3" in text
    assert "line 4: task 'os': slide 's3' has event 'yes' in column 'death'; write 1 where the event" in text
    no_event = _sheet(tmp_path, ["s1\ta.tiff\tp1\t61\t12.5\t1"], "slide\tpath\tpatient\tage\tmonths\tdead")
    with pytest.raises(SampleSheetError, match="survival task `os` needs event column `death`, which the sheet lacks"):
        read_samples(no_event, tasks)


def test_a_survival_row_with_a_time_but_no_event_is_left_out_with_a_warning_naming_its_line(tmp_path):
    tasks = {"os": {"level": "slide", "label": "months", "event": "death", "kind": "survival"}}
    path = _sheet(tmp_path, ["s1\ta.tiff\tp1\t12.5\t1", "s2\tb.tiff\tp2\t30\t", "s3\tb.tiff\tp3\t\t"],
                  "slide\tpath\tpatient\tmonths\tdeath")
    with pytest.warns(UserWarning, match=r"task `os`: 1 row\(s\) have a time .* left out: line 3 \(s2\)\."):
        read_samples(path, tasks)
