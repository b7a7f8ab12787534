"""Check a tileprobe configuration before any job runs.

The JSON schema in tileprobe/config/schema/ is the single description of every key and its default. Errors are turned
into one line per problem that names the key path and, for typos, suggests the closest valid key, instead of
jsonschema's dump of the whole schema.
"""

from __future__ import annotations

import copy
import difflib
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tileprobe.errors import TileprobeError

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"  # inside the package: a non-editable install checks configs too


GROUP_BY = "group"  # a group task's default `group_by`: the sample sheet's `group` column


class ConfigError(TileprobeError):
    """The configuration has a wrong, missing or inconsistent key."""


def load_schema(name: str = "config") -> dict:
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


@functools.cache
def defaults_validator():
    """A validator class that fills in `default` values while it validates, so defaults live only in the schema."""
    validate_properties = jsonschema.Draft202012Validator.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"properties": properties})


def _key_path(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        lines = []
        for key in sorted(set(error.instance) - set(allowed)):
            full = f"{where}.{key}" if error.absolute_path else key
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            lines.append(f"unknown key `{full}`.{hint} Valid keys here: {', '.join(allowed)}.")
        return "\n".join(lines)
    if error.validator == "required":
        return f"`{where}` is missing a required key: {error.message}."
    if error.validator == "pattern" and error.absolute_path:
        return f"`{where}`: {error.instance!r} is not a valid name (letters, digits, '_' and '-' only)."
    if error.validator == "propertyNames":
        return f"`{where}`: {error.instance!r}: {error.message}; names may use letters, digits, '_' and '-' only."
    return f"`{where}`: {error.message}."


@functools.cache
def _config_validator():
    return defaults_validator()(load_schema("config"))


def check_schema(config: dict) -> dict:
    """Validate `config` in place against the schema and fill in defaults; raise one ConfigError for all problems."""
    validator = _config_validator()
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        problems = "\n".join(f"  - {_explain(e)}" for e in errors)
        raise ConfigError(f"config: {len(errors)} problem(s):\n{problems}\nFix the config file (or --config).")
    return config


def check_given_config(config: dict[str, Any], files) -> None:
    """A config given with --configfile must be complete on its own: the built-in demo fills in nothing.

    Without this, a config lacking `tasks` would silently run the demo's tasks on the demo's images (the
    Snakefile merges the demo config only when no config file is given). Names the files and the missing keys.
    """
    missing = [key for key in load_schema("config")["required"] if key not in config]
    if "samples" not in config and "demo" not in config:
        missing.append("samples")
    if missing:
        keys = ", ".join(f"`{key}`" for key in missing)
        names = ", ".join(str(f) for f in files)
        raise ConfigError(
            f"config file {names} has no {keys}; the built-in demo is used only when no config file is given. "
            "Add the missing keys (copy config/examples/wsi.yaml, or ish.yaml for image collections, and edit it)."
        )


def _check_names(kind: str, where: str, names, known) -> None:
    unknown = [n for n in names if n not in known]
    if unknown:
        close = {n: difflib.get_close_matches(n, list(known), n=1) for n in unknown}
        hints = "; ".join(f"`{n}`" + (f" (did you mean `{c[0]}`?)" if c else "") for n, c in close.items())
        raise ConfigError(f"config: `{where}` names unknown {kind} {hints}. Configured: {', '.join(sorted(known))}.")


def check_config(config: dict[str, Any], known_heads) -> dict[str, Any]:
    """Schema check plus the cross-references a schema cannot express. Returns `config` with defaults filled.

    Defaults left to code: a task's `backbones` is every configured backbone (another section's names), and a
    group task's `group_by` is GROUP_BY, set after it: tasks are rule params, and Snakemake compares their
    repr, key order included, so a reordered task would rerun its jobs.
    """
    check_schema(config)
    if "samples" not in config and "demo" not in config:
        raise ConfigError("config: set `samples` to your sample sheet (TSV), or add `demo: {}` to run the demo.")
    for name, tiling in config["tilings"].items():
        wrong = {"whole": "slides_per_job", "grid": "shard_size"}[tiling["mode"]]
        if wrong in tiling:
            right = "shard_size (images per shard)" if wrong == "slides_per_job" else "slides_per_job"
            raise ConfigError(f"config: tilings.{name}.{wrong} does not apply to `mode: {tiling['mode']}`; "
                              f"remove it (or use {right}).")
    for name, task in config["tasks"].items():
        _check_names("tiling", f"tasks.{name}.tiling", [task["tiling"]], config["tilings"])
        task.setdefault("backbones", sorted(config["backbones"]))
        if task["backbones"] != "best":  # `best`: the proxy task's top backbone (tileprobe.select)
            _check_names("backbone", f"tasks.{name}.backbones", task["backbones"], config["backbones"])
        _check_names("head", f"tasks.{name}.heads", task["heads"], known_heads)
        tuned = [h for h in task["heads"] if h.startswith("finetune_")]
        if tuned:
            raise ConfigError(f"config: `tasks.{name}.heads` names {', '.join(tuned)}; fine-tuning is asked for with "
                              f"`finetune: [{', '.join(h.removeprefix('finetune_') for h in tuned)}]` in the task.")
        if task["level"] == "tile" and config["tilings"][task["tiling"]]["mode"] != "grid":
            raise ConfigError(
                f"config: task `{name}` is tile-level but tiling `{task['tiling']}` has mode `whole`; "
                "tile labels come from annotated regions, so use a `grid` tiling."
            )
        if task["level"] == "group":
            task.setdefault("group_by", GROUP_BY)
        if "augmentations" in task:
            _check_names("augmentation", f"tasks.{name}.augmentations", task["augmentations"],
                         ["none", *(config.get("augmentations") or {})])
        if task["kind"] == "survival" and not task.get("event"):
            raise ConfigError(f"config: survival task `{name}` has no `event`; set it to the sample-sheet column "
                              "that holds 1 (event observed) or 0 (censored). `label` names the time column.")
        if task.get("finetune") and (task["level"] not in ("tile", "image") or task["kind"] == "survival"):
            raise ConfigError(f"config: task `{name}` asks for `finetune`, which trains on one tile or image per "
                              f"row with a class or number target; a {task['level']}-level {task['kind']} task has "
                              "none, so remove `finetune` from it.")
        if task.get("calibrate") and (task["kind"] not in ("binary", "multiclass")
                                      or (task["calibrate"] == "platt" and task["kind"] != "binary")):
            raise ConfigError(f"config: task `{name}` asks for `calibrate: {task['calibrate']}`, which a "
                              f"{task['kind']} task cannot use; temperature scaling is for binary and multiclass "
                              "tasks, Platt scaling for binary ones.")
        if task["kind"] == "survival" and task["level"] == "tile":
            raise ConfigError(f"config: task `{name}` is survival at tile level; survival belongs to a patient's "
                              "slide, so use `level: slide`, `image` or `group`.")
    proxy = config["selection"].get("proxy_task")
    if proxy is not None:
        _check_names("task", "selection.proxy_task", [proxy], config["tasks"])
    return config
