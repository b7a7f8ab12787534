"""The sample sheet: read, check and resolve it before any job runs.

A sheet is a TSV with one row per slide or image: `slide` (unique id), `path`, and optional `patient`, `mpp`,
`annotations`, `group`, plus one column per label. Relative paths resolve against the sheet's own directory, so
a sheet and its images can move together. Errors name the file, the line and the fix.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from tileprobe.atomic import atomic_path
from tileprobe.config.check import GROUP_BY
from tileprobe.errors import TileprobeError

SLIDE_ID = re.compile(r"^[A-Za-z0-9._-]+$")
PATH_COLUMNS = ("path", "annotations")
RESERVED = ("slide", "path", "patient", "mpp", "annotations", "group")
# µm/px from a 200x scan to a coarse overview; outside it is a typo or a unit mix-up (nm, mm, px/µm).
MPP_RANGE = (0.05, 100.0)
# Words spreadsheets and R/pandas exports write for "no value"; in a label column they mean unlabelled, not a class.
MISSING_WORDS = {"nan", "na", "n/a", "null", "none"}


class SampleSheetError(TileprobeError):
    """A row or column of the sample sheet is wrong."""


def _line(index: int) -> int:
    """The 1-based line of a data row in the TSV (line 1 is the header)."""
    return index + 2


def _fail(sheet_path, problems: list[str], fix: str) -> None:
    shown = "\n".join(f"  - {p}" for p in problems[:10])
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    raise SampleSheetError(f"sample sheet {sheet_path}:\n{shown}{more}\n{fix}")


def parse_sheet(sheet_path: str | os.PathLike) -> pd.DataFrame:
    """Read the TSV as strings; empty cells become missing values (label words like `NA` are handled in check_sheet)."""
    sheet_path = Path(sheet_path)
    if not sheet_path.is_file():
        raise SampleSheetError(f"sample sheet not found: {sheet_path}; set `samples` in the config to a TSV file.")
    try:
        sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:  # pandas' own message does not name the file
        raise SampleSheetError(f"sample sheet {sheet_path} is empty; write a header line of tab-separated column "
                               "names (`slide`, `path`, then any optional and label columns) and one row per "
                               "slide.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SampleSheetError(f"sample sheet {sheet_path} is not a readable TSV: {err}") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    return sheet


def resolve(sheet_dir: Path, value) -> str | None:
    """A sheet path made usable from the working directory (kept relative when the sheet's was)."""
    if pd.isna(value):
        return None
    value = os.path.expanduser(str(value).strip())
    return value if os.path.isabs(value) else os.path.normpath(os.path.join(sheet_dir, value))


def check_sheet(
    sheet: pd.DataFrame, sheet_path, tasks: dict, pending: Iterable[str] = ()
) -> pd.DataFrame:
    """Check and resolve a parsed sheet. `pending` holds paths that a rule of the workflow will make."""
    missing_columns = [c for c in ("slide", "path") if c not in sheet.columns]
    if missing_columns:
        _fail(sheet_path, [f"missing column(s) {', '.join(missing_columns)}; found: {', '.join(sheet.columns)}"],
              "The first line must name the columns, tab-separated; `slide` and `path` are required.")
    if sheet.empty:  # otherwise the first complaint would be a task's "fewer than two classes: []"
        _fail(sheet_path, ["it has no rows, only a header"], "Add one row per slide under the header.")
    # Blank cells mean "missing", whether the sheet came from a TSV or was built in memory.
    sheet = sheet.replace(r"^\s*$", None, regex=True)
    _missing_words(sheet, sheet_path)
    problems = []
    for i, slide in sheet["slide"].items():
        if pd.isna(slide) or not SLIDE_ID.match(str(slide)):
            problems.append(f"line {_line(i)}: slide id {slide!r} must be non-empty letters, digits, '.', '_' or '-'")
    if problems:
        _fail(sheet_path, problems, "Slide ids become file names: rename them.")
    duplicated = sheet["slide"][sheet["slide"].duplicated(keep=False)]
    if len(duplicated):
        problems = [f"line {_line(i)}: slide id {s!r} appears more than once" for i, s in duplicated.items()]
        _fail(sheet_path, problems, "Slide ids must be unique: give each row its own id.")

    sheet_dir = Path(sheet_path).parent
    pending = {os.path.normpath(p) for p in pending}
    for column in PATH_COLUMNS:
        if column not in sheet.columns:
            continue
        sheet[column] = [resolve(sheet_dir, v) for v in sheet[column]]
        absent = [
            f"line {_line(i)} ({sheet.at[i, 'slide']}): {column} {p} does not exist"
            for i, p in sheet[column].items()
            if pd.notna(p) and p not in pending and not os.path.exists(p)
        ]
        if column == "path":
            absent += [f"line {_line(i)} ({sheet.at[i, 'slide']}): empty path" for i in sheet.index[sheet[column].isna()]]
        if absent:
            _fail(sheet_path, absent, f"Fix the `{column}` column (relative paths resolve against {sheet_dir}/).")

    if "mpp" in sheet.columns:
        numbers = pd.to_numeric(sheet["mpp"], errors="coerce")
        low, high = MPP_RANGE
        bad = [f"line {_line(i)} ({sheet.at[i, 'slide']}): mpp {v!r} is "
               + ("not a number" if pd.isna(numbers[i]) else f"outside the plausible range {low:g}-{high:g} µm/px")
               for i, v in sheet["mpp"].items() if pd.notna(v) and not (low <= numbers[i] <= high)]
        if bad:
            _fail(sheet_path, bad, "`mpp` is microns per pixel, e.g. 0.25 for a 40x scan; leave it empty to use the file's.")
        sheet["mpp"] = numbers
    else:
        sheet["mpp"] = float("nan")
    sheet["patient"] = sheet["patient"].fillna(sheet["slide"]) if "patient" in sheet.columns else sheet["slide"]
    for column in ("annotations", "group"):
        if column not in sheet.columns:
            sheet[column] = pd.NA

    _check_task_columns(sheet, sheet_path, tasks)
    return sheet.set_index("slide", drop=False).rename_axis(None)


# What a missing value means in each reserved column that can be missing; label columns lose the row from a task.
_MISSING_MEANS = {
    "patient": "each such slide counts as its own patient",
    "group": "those images belong to no group",
}


def _missing_words(sheet: pd.DataFrame, sheet_path) -> None:
    """Turn `NA`, `n/a`, `None`... in label, `patient` and `group` columns into missing values, in place, and say
    what that means: read literally, all "NA" patients would be one patient, all "NA" labels one class."""
    for column in [c for c in sheet.columns if c not in RESERVED or c in _MISSING_MEANS]:
        words = sheet[column].astype("string").str.strip().str.lower().isin(MISSING_WORDS).fillna(False)
        if not words.any():
            continue
        sheet.loc[words, column] = None
        said = f"sample sheet {sheet_path}: column `{column}`: {int(words.sum())} row(s) say NA, n/a, None or similar"
        if column in _MISSING_MEANS:
            warnings.warn(f"{said}, read as missing: {_MISSING_MEANS[column]}. Fill them in if they are known.")
            continue
        unlabelled = int(sheet[column].isna().sum())
        warnings.warn(f"{said}, read as missing labels; {unlabelled} row(s) of {len(sheet)} have no `{column}` label "
                      "and are left out of its tasks. Fill them in if they are known.")


def _check_task_columns(sheet: pd.DataFrame, sheet_path, tasks: dict) -> None:
    labels = [c for c in sheet.columns if c not in RESERVED]
    for name, task in tasks.items():
        if task["level"] == "tile":
            if sheet["annotations"].isna().all():
                _fail(sheet_path, [f"task `{name}` is tile-level but no row has an `annotations` file"],
                      "Add an `annotations` column with GeoJSON files of labelled regions.")
            continue
        column = task["label"]
        if column not in sheet.columns:
            _fail(sheet_path, [f"task `{name}` needs label column `{column}`, which the sheet lacks"],
                  f"Add the column, or point `tasks.{name}.label` at one of: {', '.join(labels) or '(none)'}.")
        if task["level"] == "group":
            group_by = task.get("group_by", GROUP_BY)
            if group_by not in sheet.columns:
                _fail(sheet_path, [f"task `{name}` groups images by `{group_by}`, which the sheet lacks"],
                      "Add that column or change `group_by`.")
        if task["kind"] == "survival" and task.get("event") not in sheet.columns:
            _fail(sheet_path, [f"survival task `{name}` needs event column `{task.get('event')}`, which the sheet "
                               "lacks"],
                  f"Add a column of 1 (event observed) and 0 (censored), and name it in `tasks.{name}.event`.")
        if task["kind"] in ("regression", "survival"):
            _check_targets(sheet, sheet_path, name, task)
            continue
        values = sheet[column].dropna()
        if task["kind"] == "multilabel":
            values = values.str.split(";").explode().str.strip()
        classes = sorted(values.unique())
        if task["kind"] == "binary" and len(classes) != 2:
            _fail(sheet_path, [f"task `{name}` is binary but column `{column}` has {len(classes)} classes: {classes}"],
                  "Use `kind: multiclass`, or fix the labels.")
        if len(classes) < 2:
            _fail(sheet_path, [f"task `{name}`: column `{column}` has fewer than two classes: {classes}"],
                  "A task needs at least two labelled classes.")


def _check_targets(sheet: pd.DataFrame, sheet_path, name: str, task: dict) -> None:
    """Every row's number (survival: time and event) as the task will read it; all bad rows named at once."""
    from tileprobe.learn.data import TaskError, samples_for_task, target_value

    problems = []
    wanted = set(samples_for_task({**task, "name": name}, sheet))
    for i, row in sheet.iterrows():
        if str(row["slide"]) in wanted:
            try:
                target_value({**task, "name": name}, str(row["slide"]), row)
            except TaskError as err:
                problems.append(f"line {_line(i)}: {err}")
    if problems:
        _fail(sheet_path, problems, "Fix those cells (or empty them to leave the rows out of the task).")
    if task["kind"] == "survival":
        time, event = (sheet[c].notna() for c in (task["label"], task["event"]))
        half = [f"line {_line(i)} ({sheet.at[i, 'slide']})" for i in sheet.index[time ^ event]]
        if half:
            warnings.warn(f"sample sheet {sheet_path}: task `{name}`: {len(half)} row(s) have a time "
                          f"(`{task['label']}`) or an event (`{task['event']}`) but not both and are left out: "
                          f"{', '.join(half)}. Fill in the missing cell if it is known.")


def read_samples(sheet_path, tasks: dict, pending: Iterable[str] = ()) -> pd.DataFrame:
    """Parse and check the sheet at `sheet_path`; the index is the slide id."""
    return check_sheet(parse_sheet(sheet_path), sheet_path, tasks, pending)


def write_manifest(sheet: pd.DataFrame, path) -> None:
    """The checked, resolved sheet as Parquet: what every later stage was given."""
    with atomic_path(path) as tmp:
        sheet.reset_index(drop=True).to_parquet(tmp, index=False)
