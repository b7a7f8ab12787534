"""Real metrics.json files, written by the training code on small synthetic tasks, for the per-metric tests."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tileprobe.learn.data import TaskData
from tileprobe.learn.select import SELECTION_METRICS
from tileprobe.learn.train import run_task

# Backbone -> how far the class means sit apart (0: features carry nothing about the label).
SIGNAL = {"noise": 0.0, "weak": 0.5, "good": 3.0}


def synthetic(classes: list[str], signal: float, seed: int, patients: int = 18, per_patient: int = 2) -> TaskData:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.array(classes, dtype=object)[np.arange(patients) % len(classes)], per_patient)
    groups = np.repeat([f"p{i}" for i in range(patients)], per_patient).astype(object)
    centres = rng.normal(size=(len(classes), 6)) * signal
    X = rng.normal(size=(len(y), 6)) + centres[[classes.index(c) for c in y]]
    return TaskData(X=X.astype(np.float32), y=y, groups=groups, ids=pd.DataFrame({"slide": groups}),
                    kind="binary" if len(classes) == 2 else "multiclass")


@pytest.fixture(scope="session", params=SELECTION_METRICS)
def metric(request):
    """Every metric `selection.metric` accepts."""
    return request.param


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A binary and a multiclass task, one logreg head per backbone: `paths` to their metrics.json (noise
    first, so an unsorted summary would show) and `candidates` per task for the proxy selection."""
    root = tmp_path_factory.mktemp("heads")
    paths, candidates = [], {}
    for task, classes in (("tumour", ["no", "yes"]), ("tissue", ["a", "b", "c"])):
        candidates[task] = {}
        for seed, (backbone, signal) in enumerate(SIGNAL.items()):
            data = synthetic(classes, signal, seed)
            candidates[task][(backbone, "final")] = data
            meta = {"task": task, "backbone": backbone, "layer": "final", "augmentation": "none", "head": "logreg",
                    "level": "slide", "kind": data.kind}
            out = root / task / backbone
            run_task(data, "logreg", {"folds": 3, "repeats": 1, "seed": 0, "bootstrap": 30}, out, meta)
            paths.append(out / "metrics.json")
    return SimpleNamespace(paths=paths, candidates=candidates)


@pytest.fixture
def write_records(tmp_path):
    """Writes metrics.json dicts under tmp_path; returns their paths."""
    import json

    written = []

    def write(records):
        paths = []
        for r in records:
            path = tmp_path / "heads" / f"run{len(written)}" / "metrics.json"
            path.parent.mkdir(parents=True)
            written.append(path)
            path.write_text(json.dumps(r))
            paths.append(path)
        return paths

    return write
