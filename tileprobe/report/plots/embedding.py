"""A 2-D map of a task's embeddings (PCA), coloured by label: one panel per backbone x layer.

Clusters that follow the label mean a linear head has something to find; a shapeless cloud (the `noise`
backbone) means it has not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA

from tileprobe.learn.data import VALUE_KINDS, TaskData
from tileprobe.report.plots import Drawn, empty, plt, save

MAX_POINTS = 3000  # enough to see structure; more only slows the PNG


def project(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n, 2) PCA coordinates of standardised features; zero-variance features are left out, not divided by."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    X = (X[:, std > 0] - X[:, std > 0].mean(axis=0)) / std[std > 0]
    if X.shape[1] == 0 or len(X) < 2:
        return np.zeros((len(X), 2))
    coords = PCA(n_components=min(2, X.shape[1]), random_state=seed).fit_transform(X)
    return coords if coords.shape[1] == 2 else np.column_stack([coords, np.zeros(len(coords))])


def _values(fig, ax, coords: np.ndarray, data: TaskData, rows: np.ndarray) -> None:
    y = np.asarray(data.y[rows], dtype=np.float64)
    value = y[:, 0] if y.ndim == 2 else y
    observed = y[:, 1].astype(bool) if y.ndim == 2 else np.ones(len(y), dtype=bool)
    points = ax.scatter(coords[observed, 0], coords[observed, 1], c=value[observed], s=10, cmap="viridis",
                        vmin=value.min(), vmax=value.max(), label="event" if y.ndim == 2 else None)
    if y.ndim == 2 and (~observed).any():
        ax.scatter(coords[~observed, 0], coords[~observed, 1], s=14, facecolors="none",
                   edgecolors=plt.get_cmap("viridis")((value[~observed] - value.min()) / (np.ptp(value) or 1)),
                   label="censored")
        ax.legend(fontsize=7)
    fig.colorbar(points, ax=ax, shrink=0.8, label="time" if y.ndim == 2 else "target")


def embedding_map(task: str, panels: dict[tuple[str, str], TaskData], path: str | Path, seed: int = 0) -> Drawn:
    if not panels:
        return empty(path, f"task {task}: no embeddings to map")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2),
                             squeeze=False, layout="constrained")
    rng = np.random.default_rng(seed)
    for ax, ((backbone, layer), data) in zip(axes[0], sorted(panels.items())):
        rows = np.arange(len(data))
        if len(rows) > MAX_POINTS:
            rows = np.sort(rng.choice(rows, MAX_POINTS, replace=False))
        coords = project(data.X[rows], seed)
        if data.kind in VALUE_KINDS:  # a number (survival: the time) on a colour scale; censored rows hollow
            _values(fig, ax, coords, data, rows)
        else:
            labels = data.y[rows].astype(str)
            for i, label in enumerate(sorted(set(labels))):
                mine = labels == label
                ax.scatter(coords[mine, 0], coords[mine, 1], s=8, alpha=0.7, color=plt.get_cmap("tab10")(i % 10),
                           label=label)
            ax.legend(fontsize=7, markerscale=1.5)
        ax.set_title(f"{backbone} / {layer} ({len(rows)} of {len(data)})", fontsize=9)
        ax.set(xlabel="PC 1", ylabel="PC 2", xticks=[], yticks=[])
    fig.suptitle(f"task {task}: embeddings coloured by {'time' if data.kind == 'survival' else 'label'}",
                 fontsize=10)
    return save(fig, path)
