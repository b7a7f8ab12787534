"""A failure summary after a run with failed jobs: which jobs, which slide, where the log is, what it said.

With `--keep-going` a corrupt slide fails only its own jobs; the summary (printed, and written to
`{results}/logs/failures.txt`) names it among the good ones, so nobody has to scroll through the run's log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_ERROR = re.compile(r"^Error in (?:group job|rule) (?P<rule>\S+?):?\s*$")
_FIELD = re.compile(r"^\s+(?P<key>[a-z ]+):\s*(?P<value>.*)$")


@dataclass
class Failure:
    rule: str
    wildcards: str = ""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    reason: str = ""


def parse_snakemake_log(text: str) -> list[Failure]:
    """The failed jobs in a Snakemake log, in order, each once."""
    failures: list[Failure] = []
    current: Failure | None = None
    for line in text.splitlines():
        match = _ERROR.match(line)
        if match:
            current = Failure(match["rule"])
            failures.append(current)
            continue
        match = _FIELD.match(line) if current else None
        if not match:
            if current and line.strip() and not line.startswith((" ", "\t")):
                current = None
            continue
        if match["key"] in ("input", "output"):
            paths = [p.strip() for p in match["value"].split(",") if p.strip()]
            setattr(current, f"{match['key']}s", paths)
        elif match["key"] == "wildcards":
            current.wildcards = match["value"].strip()
        elif match["key"] == "log":
            # "log: a.log, b.log (check log file(s) for error details)"
            value = match["value"].split(" (check log")[0]
            current.logs = [p.strip() for p in value.split(",") if p.strip()]
    unique = {(f.rule, f.wildcards, tuple(f.logs), tuple(f.inputs)): f for f in failures}
    return list(unique.values())


# A line that starts a log record (runner.FORMAT); the lines up to the next one are the same record's message.
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) \S+: ")
_REASON_CHARS = 600


def _shorten(text: str, limit: int = _REASON_CHARS) -> str:
    """Its start (what failed) and its end (tileprobe's hint says the fix last), cut in the middle if need be."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} … {text[-(limit - head - 3):]}"


def _reason(log: Path) -> str:
    """The job's own error, whole: the last ERROR record (a TileprobeError names the file and the fix, after any
    multi-line message of a library it quotes), else the last exception line, else the last line."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    records: list[list[str]] = []
    current: list[str] | None = None
    for line in lines:
        match = _RECORD.match(line)
        if match:
            current = [line[match.end():]] if match["level"] == "ERROR" else None
            if current is not None:
                records.append(current)
        elif current is not None:
            current.append(line)
    if records:
        return _shorten(" ".join(part.strip() for part in records[-1] if part.strip()))
    lines = [line.strip() for line in lines if line.strip()]
    errors = [line for line in lines if re.match(r"^\w*(Error|Exception)\b", line) or line.startswith("error")]
    return _shorten(errors[-1] if errors else lines[-1] if lines else "")


def summarize(snakemake_log, workdir: str | Path = ".") -> str:
    """Text naming every failed job, its slide, its log and the reason; "" when none.

    `snakemake_log` is what an `onerror:` handler gets: a path, or a list of paths (Snakemake 9).
    """
    paths = [snakemake_log] if isinstance(snakemake_log, (str, Path)) else list(snakemake_log or [])
    text = "\n".join(Path(p).read_text(errors="replace") for p in paths if Path(p).is_file())
    failures = parse_snakemake_log(text)
    if not failures:
        return ""
    lines = [f"{len(failures)} job(s) failed; the outputs of every job that finished are complete:"]
    for failure in failures:
        lines.append(f"  - {failure.rule}" + (f" ({failure.wildcards})" if failure.wildcards else ""))
        if failure.inputs:
            lines.append(f"      input: {failure.inputs[0]}" + (" ..." if len(failure.inputs) > 1 else ""))
        if failure.outputs:  # Snakemake 9 prints no wildcards here: the output says which slide
            lines.append(f"      output: {failure.outputs[0]}" + (" ..." if len(failure.outputs) > 1 else ""))
        for log in failure.logs:
            reason = failure.reason or _reason(Path(workdir) / log)
            lines.append(f"      log: {log}")
            if reason:
                lines.append(f"      {reason}")
    lines.append("Fix or remove the named inputs, then run the same command again: finished jobs are not redone.")
    return "\n".join(lines)


def write_summary(snakemake_log, out: str | Path) -> str:
    """Write the summary to `out` (when there is one) and return it."""
    text = summarize(snakemake_log)
    if text:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    return text
