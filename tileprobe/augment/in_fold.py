"""In-fold augmentation (`gaussian_noise`, `mixup`, `interpolate`, `balance`): these use other rows (a
spread, a partner, a neighbour, class counts), so they run on the training part of each cross-validation fold
and never see the test part. `precomputed` is the same hook for per-tile copies.
"""

from __future__ import annotations

import numpy as np

from tileprobe.augment.specs import Augment, AugmentError


def _append(X, y, groups, new_X, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Originals first, then synthetic rows labelled (and grouped) like the original row they came from."""
    rows = np.asarray(rows, dtype=np.int64)
    return (np.concatenate([X, np.asarray(new_X, dtype=X.dtype).reshape(-1, X.shape[1])]),
            np.concatenate([y, y[rows]]), np.concatenate([groups, groups[rows]]))


def gaussian_noise(X, y, groups, rng, sigma, copies):
    spread = X.std(axis=0)  # of the training part only: the test part must not shape the noise
    rows = np.tile(np.arange(len(X)), copies)
    return _append(X, y, groups, X[rows] + sigma * spread * rng.standard_normal((len(rows), X.shape[1])), rows)


def mixup(X, y, groups, rng, alpha, copies):
    """Each row mixed with a random row of its own class: label-preserving, so no soft labels are needed."""
    rows = np.tile(np.arange(len(X)), copies)
    partners = np.empty_like(rows)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        mask = y[rows] == label
        partners[mask] = members[rng.integers(len(members), size=int(mask.sum()))]
    lam = rng.beta(alpha, alpha, size=(len(rows), 1))
    return _append(X, y, groups, lam * X[rows] + (1 - lam) * X[partners], rows)


def _same_class_neighbours(X, y, k) -> list[np.ndarray]:
    """For each row, indices of its (up to) k nearest other rows of the same class; itself when it is alone."""
    from sklearn.neighbors import NearestNeighbors

    out: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(X)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) == 1:
            out[members[0]] = members
            continue
        n = min(k, len(members) - 1) + 1
        _, idx = NearestNeighbors(n_neighbors=n).fit(X[members]).kneighbors(X[members])
        for row, near in zip(members, idx):
            near = members[near]
            out[row] = near[near != row][: n - 1] if (near != row).any() else near[:1]
    return out


def _smote(X, rows, neighbours, rng) -> np.ndarray:
    """A random point on the segment from each row to one of its same-class nearest neighbours."""
    partners = np.array([neighbours[r][rng.integers(len(neighbours[r]))] for r in rows], dtype=np.int64)
    lam = rng.random((len(rows), 1))
    return X[rows] + lam * (X[partners] - X[rows])


def interpolate(X, y, groups, rng, k, copies):
    rows = np.tile(np.arange(len(X)), copies)
    return _append(X, y, groups, _smote(X, rows, _same_class_neighbours(X, y, k), rng), rows)


def balance(X, y, groups, rng, k):
    """Oversample every class up to the largest one with SMOTE-like rows; the largest class is left alone."""
    labels, counts = np.unique(y, return_counts=True)
    rows = np.concatenate([rng.choice(np.flatnonzero(y == label), size=counts.max() - n)
                           for label, n in zip(labels, counts)]).astype(np.int64)
    return _append(X, y, groups, _smote(X, rows, _same_class_neighbours(X, y, k), rng), rows)


IN_FOLD = {"gaussian_noise": gaussian_noise, "mixup": mixup, "interpolate": interpolate, "balance": balance}


def in_fold(spec: dict) -> Augment:
    """augment(X, y, groups, seed) for the training part of a fold; `seed` is the fold's, mixed with spec's."""
    fn = IN_FOLD[spec["kind"]]
    params = {k: v for k, v in spec.items() if k not in ("kind", "seed")}

    def augment(X, y, groups, seed):
        rng = np.random.default_rng([int(spec["seed"]), int(seed)])
        return fn(np.asarray(X), np.asarray(y, dtype=object), np.asarray(groups, dtype=object), rng, **params)

    return augment


def precomputed(X: np.ndarray, copies: np.ndarray) -> Augment:
    """augment(...) that appends the precomputed copies (copies, n, dim) of exactly the rows it is given.

    The hook receives training rows, not their indices, so rows are found by their bytes; a test row is never
    given, so its copies never reach training.
    """
    X = np.ascontiguousarray(X)
    index: dict[bytes, int] = {}
    for i, row in enumerate(X):
        index.setdefault(row.tobytes(), i)
    if copies.shape[1:] != X.shape:
        raise AugmentError(f"precomputed copies have shape {copies.shape}, rows {X.shape}: re-run the augment rule")

    def augment(X_train, y, groups, seed):
        X_train = np.ascontiguousarray(X_train, dtype=X.dtype)
        try:
            idx = np.array([index[row.tobytes()] for row in X_train], dtype=np.int64)
        except KeyError:
            raise AugmentError("a training row is not among the task's rows; precomputed copies do not apply") from None
        rows = np.tile(np.arange(len(X_train)), copies.shape[0])
        return _append(X_train, np.asarray(y, dtype=object), np.asarray(groups, dtype=object),
                       copies[:, idx].reshape(-1, X.shape[1]), rows)

    return augment
