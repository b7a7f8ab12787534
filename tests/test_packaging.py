"""pyproject.toml, constraints.txt and the conda environment must name the same packages at the same versions."""

import re
import tomllib

import yaml

from tests.support.runner import ROOT


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=\[ ;]", requirement.strip())[0]).lower()


def _pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {_name(line): line.split("==")[1] for line in lines if "==" in line}


def test_every_dependency_is_pinned():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    unpinned = [d for d in dependencies if _name(d) not in _pins()]
    assert not unpinned, f"add these to constraints.txt: {unpinned}"


def test_conda_env_lists_the_pyproject_packages_at_pinned_versions():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "envs" / "tileprobe.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pins = {_name(r): r.split("==")[1] for r in pip_section if "==" in r}
    assert set(conda_pins) == {_name(d) for d in dependencies}
    pins = _pins()
    assert {n: pins[n] for n in conda_pins} == conda_pins
