"""Defaults of one config section, read from the schema: the only place they are written.

Library functions are also called with a partial section (a test's `{"mpp": 0.5, "tile_px": 256}`, a script's
`{"model": "resnet18"}`); they fill it here rather than from a dictionary of their own. A section is a `$defs`
entry (tiling, backbone, task, augmentation) or a top-level object (evaluation, dask, demo, selection).
"""

from __future__ import annotations

import copy
import functools

from referencing import Registry, Resource

from tileprobe.config.check import defaults_validator, load_schema

_URI = "urn:tileprobe:config"


@functools.cache
def _schema() -> dict:
    return load_schema("config")


def _pointer(section: str) -> str:
    schema = _schema()
    if "properties" in schema["$defs"].get(section, {}):
        return f"#/$defs/{section}"
    if "properties" in schema["properties"].get(section, {}):
        return f"#/properties/{section}"
    known = sorted(name for part in (schema["$defs"], schema["properties"]) for name, sub in part.items()
                   if "properties" in sub)
    raise KeyError(f"no config section {section!r} in the schema; known: {', '.join(known)}")


def section_schema(section: str) -> dict:
    """The schema of `section` (read-only: it is shared)."""
    where, _, name = _pointer(section).rpartition("/")
    return _schema()[where.removeprefix("#/")][name]


def section_keys(section: str) -> list[str]:
    """The keys `section` accepts, in schema order."""
    return list(section_schema(section)["properties"])


@functools.cache
def _validator(section: str):
    # A reference into the whole schema, so `$ref`s inside the section still resolve.
    registry = Registry().with_resource(_URI, Resource.from_contents(_schema()))
    return defaults_validator()({"$ref": f"{_URI}{_pointer(section)}"}, registry=registry)


def fill_defaults(section: str, values: dict | None = None) -> dict:
    """A copy of `values` with the schema's defaults for `section` filled in, those under `if`/`then` too.

    Nothing is checked here: callers check the values and name the key in their own words.
    """
    filled = copy.deepcopy(dict(values or {}))
    for _ in _validator(section).iter_errors(filled):
        pass  # defaults are filled while validating; the errors are the caller's to report
    return filled


def defaults(section: str) -> dict:
    """The defaults of `section` alone (a fresh copy)."""
    return fill_defaults(section)
