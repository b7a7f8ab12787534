"""Synthetic demo data: H&E-like whole-slide images with region annotations, and ISH embryo images.

Everything is drawn from a seed, offline, in seconds. Classes differ strongly in colour and texture so that even
features of a randomly initialised network separate them: the demo must show a working pipeline, not a hard task.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from PIL import Image, ImageDraw
from scipy import ndimage

from tileprobe.atomic import atomic_path
from tileprobe.config.defaults import defaults

DEMO_DEFAULTS = defaults("demo")  # seed, slides, images: the config's `demo:` defaults

COLUMNS = ["slide", "path", "patient", "mpp", "annotations", "group", "tumor", "tumor_fraction", "months", "death",
           "stage", "terms"]

SLIDE_SIZE = (4096, 3072)  # level-0 (width, height)
SLIDE_MPP = 0.5
SLIDE_MAG = 20
SLIDE_DOWNSAMPLES = (1, 4, 16)
SLIDE_TILE = 256
JPEG_QUALITY = 90
REGION_CLASSES = ("tumor", "stroma", "normal")
TUMOR, STROMA, NORMAL = 1, 2, 3  # their values in label maps; 0 is glass
RASTER_STEP = 4  # polygons are rasterised on a 4x coarser grid, then upsampled

ISH_SIZE = (320, 224)  # (width, height)
STAGES = ("stage_1", "stage_2", "stage_3")
TERMS = ("anterior", "posterior", "dorsal", "ventral", "central")

# Separate random streams per purpose, so one slide's pixels do not depend on how many slides are made.
_STREAM_SHEET, _STREAM_TERMS, _STREAM_SLIDE, _STREAM_ISH, _STREAM_SURVIVAL = 0, 1, 2, 3, 4
# Survival of the demo's patients: Weibull months to death (shape WEIBULL_SHAPE: deaths cluster around the
# scale rather than spreading like an exponential's) under proportional hazards in the tumour's share of the
# tissue (hazard ratio exp(HAZARD_PER_FRACTION) from none to all tumour), censored by the end of follow-up.
BASELINE_MONTHS, WEIBULL_SHAPE, HAZARD_PER_FRACTION, FOLLOW_UP_MONTHS = 60.0, 3.0, 6.0, (30.0, 90.0)


# ---------------------------------------------------------------- sample sheet


def _ids(prefix: str, n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{prefix}_{i + 1:0{width}d}" for i in range(n)]


def _slide_labels(rng: np.random.Generator, n: int) -> list[str]:
    labels = (["yes", "no"] * n)[:n]
    rng.shuffle(labels)
    return labels


def _slide_patients(rng: np.random.Generator, labels: list[str]) -> list[str]:
    """About 3 patients per 4 slides; pairs share a label, and each class keeps >= 4 patients where it can."""
    by_class = {c: [i for i, label in enumerate(labels) if label == c] for c in ("yes", "no")}
    capacity = {c: min(len(s) // 2, max(0, len(s) - 4)) for c, s in by_class.items()}
    pairs = {"yes": 0, "no": 0}
    for _ in range(len(labels) // 4):
        open_classes = [c for c in ("yes", "no") if pairs[c] < capacity[c]]
        if not open_classes:
            break
        pairs[min(open_classes, key=lambda c: pairs[c])] += 1
    owner = list(range(len(labels)))  # slide index -> first slide of its patient
    for c, slides in by_class.items():
        order = [slides[i] for i in rng.permutation(len(slides))]
        for k in range(pairs[c]):
            a, b = sorted(order[2 * k : 2 * k + 2])
            owner[b] = a
    firsts = sorted(set(owner))
    names = dict(zip(firsts, _ids("patient", len(firsts))))
    return [names[o] for o in owner]


def _gene_terms(seed: int, n_genes: int) -> list[list[str]]:
    """1-3 expression terms per gene; the primary term cycles so every term occurs once there are 5 genes."""
    rng = np.random.default_rng([seed, _STREAM_TERMS])
    offset = int(rng.integers(len(TERMS)))
    out = []
    for g in range(n_genes):
        primary = TERMS[(g + offset) % len(TERMS)]
        others = [t for t in TERMS if t != primary]
        extra = rng.choice(others, size=int(rng.integers(0, 3)), replace=False).tolist()
        out.append([t for t in TERMS if t == primary or t in extra])
    return out


def _ish_layout(images: int) -> list[tuple[int, int]]:
    """(gene, stage) per image: each gene imaged once at every stage, so more images means more genes."""
    return [(i // len(STAGES), i % len(STAGES)) for i in range(images)]


def demo_samples(out_dir, seed: int = DEMO_DEFAULTS["seed"], slides: int = DEMO_DEFAULTS["slides"],
                 images: int = DEMO_DEFAULTS["images"]) -> pd.DataFrame:
    """The sample sheet `make_demo` writes, without drawing a pixel; paths are relative to the sheet's folder.

    `out_dir` is accepted for symmetry with `make_demo`; the sheet does not depend on it.
    """
    rng = np.random.default_rng([seed, _STREAM_SHEET])
    labels = _slide_labels(rng, slides)
    patients = _slide_patients(rng, labels)
    fractions = [tumor_fraction(seed, i, label == "yes") for i, label in enumerate(labels)]
    months, death = _survival(np.random.default_rng([seed, _STREAM_SURVIVAL]), np.array(fractions))
    rows = []
    for i, (name, label, patient) in enumerate(zip(_ids("slide", slides), labels, patients)):
        rows.append(dict(slide=name, path=f"slides/{name}.tiff", patient=patient, mpp="",
                         annotations=f"annotations/{name}.geojson", group="", tumor=label,
                         tumor_fraction=f"{fractions[i]:.3f}", months=f"{months[i]:.1f}", death=str(death[i]),
                         stage="", terms=""))
    layout = _ish_layout(images)
    terms = _gene_terms(seed, math.ceil(images / len(STAGES)))
    genes = _ids("gene", len(terms))
    for g, s in layout:
        name = f"{genes[g]}_{STAGES[s]}"  # one image per (gene, stage) group
        rows.append(dict(slide=name, path=f"ish/{name}.png", patient=genes[g], mpp="", annotations="",
                         group=name, tumor="", tumor_fraction="", months="", death="", stage=STAGES[s],
                         terms=";".join(terms[g])))
    return pd.DataFrame(rows, columns=COLUMNS).astype(str)


def tumor_fraction(seed: int, index: int, tumor: bool) -> float:
    """The share of slide `index`'s tissue area that its tumour regions cover (0 without tumour): the same
    polygons `_render_slide` paints, drawn from the same random stream without a pixel."""
    regions = _slide_regions(np.random.default_rng([seed, _STREAM_SLIDE, index]), tumor)
    areas = {name: 0.0 for name in REGION_CLASSES}
    for name, polygon in regions:
        areas[name] += _polygon_area(polygon)
    return areas["tumor"] / sum(areas.values())


def _survival(rng: np.random.Generator, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed months and death (1) or censoring (0), cut by a follow-up drawn uniformly."""
    scale = BASELINE_MONTHS * np.exp(-HAZARD_PER_FRACTION * fractions / WEIBULL_SHAPE)
    death_time = scale * rng.weibull(WEIBULL_SHAPE, size=len(fractions))
    follow_up = rng.uniform(*FOLLOW_UP_MONTHS, size=len(fractions))
    return np.minimum(death_time, follow_up), (death_time <= follow_up).astype(int)


# ---------------------------------------------------------------- slide geometry


def _harmonics(rng: np.random.Generator, n: int, amplitude: float):
    """A smooth periodic function of angle: a sum of a few random cosines."""
    k = np.arange(1, n + 1)
    amp = amplitude * rng.uniform(0.3, 1.0, n) / k
    phase = rng.uniform(0, 2 * np.pi, n)
    return lambda theta: (amp[:, None] * np.cos(k[:, None] * np.asarray(theta)[None] + phase[:, None])).sum(0)


def _blob_boxes(rng: np.random.Generator) -> list[tuple[float, float, float, float]]:
    """One or two boxes (x0, y0, x1, y1) that each hold one tissue blob; two blobs sit side by side."""
    w, h = SLIDE_SIZE
    if rng.random() < 0.5:
        return [(0, 0, w, h)]
    split = w * rng.uniform(0.45, 0.55)
    return [(0, 0, split, h), (split, 0, w, h)]


def _blob_cells(rng: np.random.Generator, box) -> list[np.ndarray]:
    """Partition one irregular, star-shaped tissue blob into a core and 4-6 wavy sectors (level-0 xy polygons).

    Cells are drawn in polar-like coordinates (t in [0, 1] of the local radius, angle), so every cell lies
    inside the blob by construction, and neighbours share their boundary vertices exactly.
    """
    x0, y0, x1, y1 = box
    margin = 0.03 * min(SLIDE_SIZE)
    cx = (x0 + x1) / 2 + rng.uniform(-0.02, 0.02) * (x1 - x0)
    cy = (y0 + y1) / 2 + rng.uniform(-0.02, 0.02) * (y1 - y0)
    outline = _harmonics(rng, 5, 0.2)
    core = _harmonics(rng, 4, 0.25)
    # Stretch the wobbly outline to the box on each axis, so its extremes touch the margins.
    probe = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    r = 1 + outline(probe)
    sx = ((x1 - x0) / 2 - margin - abs(cx - (x0 + x1) / 2)) / np.abs(r * np.cos(probe)).max()
    sy = ((y1 - y0) / 2 - margin - abs(cy - (y0 + y1) / 2)) / np.abs(r * np.sin(probe)).max()

    def to_xy(t, theta):
        rad = t * (1 + outline(theta))
        return np.stack([cx + sx * rad * np.cos(theta), cy + sy * rad * np.sin(theta)], axis=1)

    def core_t(theta):
        return 0.42 * (1 + 0.6 * core(theta))

    # Sector boundaries: evenly spread from a random start, jittered, each a wavy line across the ring.
    k = int(rng.integers(4, 7))
    gap = 2 * np.pi / k
    starts = rng.uniform(0, 2 * np.pi) + gap * (np.arange(k) + rng.uniform(-0.2, 0.2, k))
    s = np.linspace(0, 1, 24)
    wiggle = [0.22 * gap * np.sin(np.pi * s * rng.uniform(1, 3) + rng.uniform(0, 2 * np.pi)) * s for _ in range(k)]
    bounds = [starts[i] + wiggle[i] for i in range(k)] + [starts[0] + 2 * np.pi + wiggle[0]]

    def ring_xy(s_vals, theta):
        ts = core_t(theta)
        return to_xy(ts + s_vals * (1 - ts), theta)

    cells, inner_edges = [], []
    for i in range(k):
        lo, hi = bounds[i], bounds[i + 1]
        n_arc = max(8, int(48 * (hi[0] - lo[0]) / (2 * np.pi)))
        inner = np.linspace(lo[0], hi[0], n_arc, endpoint=False)
        outer = np.linspace(hi[-1], lo[-1], n_arc)
        cell = np.concatenate([
            ring_xy(np.zeros_like(inner), inner),  # along the core, counter to the next sector
            ring_xy(s, hi),  # up the shared wavy boundary with the next sector
            ring_xy(np.ones_like(outer), outer)[1:],  # back along the tissue edge
            ring_xy(s[::-1], lo[::-1])[1:-1],  # down our own starting boundary
        ])
        cells.append(cell)
        inner_edges.append(ring_xy(np.zeros_like(inner), inner))
    cells.insert(0, np.concatenate(inner_edges))  # the core, built from the sectors' inner edges
    return cells


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2


def _assign_classes(rng: np.random.Generator, areas: list[float], tumor: bool) -> list[str]:
    """Stroma and normal on every slide; on tumour slides tumour covers 40-70% of the tissue."""
    shares = np.asarray(areas) / sum(areas)
    for _ in range(1000):
        order = rng.permutation(len(areas))
        classes = [None] * len(areas)
        share = 0.0
        for i in order if tumor else ():
            if share < 0.4 and share + shares[i] <= 0.7:
                classes[i], share = "tumor", share + shares[i]
        rest = [i for i in order if classes[i] is None]
        if (tumor and share < 0.4) or len(rest) < 2:
            continue
        picks = ["stroma", "normal"] + rng.choice(["stroma", "normal"], len(rest) - 2).tolist()  # both occur
        for i, name in zip(rest, picks):
            classes[i] = name
        return classes
    raise RuntimeError("could not assign demo region classes")  # not reached: blobs have 5+ cells


def _slide_regions(rng: np.random.Generator, tumor: bool) -> list[tuple[str, np.ndarray]]:
    cells = [cell for box in _blob_boxes(rng) for cell in _blob_cells(rng, box)]
    classes = _assign_classes(rng, [_polygon_area(c) for c in cells], tumor)
    return list(zip(classes, cells))


def _label_map(regions) -> np.ndarray:
    """Level-0 label map (0 background, 1.. classes) rasterised from the polygons themselves."""
    w, h = SLIDE_SIZE
    step = RASTER_STEP
    canvas = Image.new("L", (w // step, h // step), 0)
    draw = ImageDraw.Draw(canvas)
    for name, xy in regions:
        # Coarse pixel j covers level-0 [step*j, step*(j+1)); its centre is at step*j + step/2.
        draw.polygon([tuple(p) for p in (xy / step - 0.5).tolist()], fill=REGION_CLASSES.index(name) + 1)
    coarse = np.array(canvas)
    # Neighbours share edges; should rasterising leave a hairline gap between them, close it.
    gaps = ndimage.binary_closing(coarse > 0) & (coarse == 0)
    coarse[gaps] = ndimage.maximum_filter(coarse, size=3)[gaps]
    return np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)


# ---------------------------------------------------------------- slide textures
#
# Objects (nuclei, glands) are small sprites drawn once per slide and pasted at jittered lattice points, clipped
# to their region; colours are then composed over whole rows at once. A Python loop runs per object (thousands),
# never per pixel, which keeps a slide near a second.

GLASS = (242, 241, 244)
BASE = np.array([GLASS, (188, 122, 192), (238, 166, 196), (246, 210, 224)], np.float32)  # by label value
NUCLEUS = np.array([GLASS, (70, 28, 112), (100, 48, 128), (88, 52, 140)], np.float32)
MOTTLE = np.array([0.0, 0.10, 0.07, 0.05], np.float32)  # low-frequency brightness variation by label
FIBRE, EPITHELIUM, LUMEN = (208, 88, 142), (226, 160, 202), (250, 247, 250)


def _upsampled_noise(rng: np.random.Generator, cell: int) -> np.ndarray:
    """Smooth noise over the whole slide, uint8: a random grid every `cell` px, bilinearly upsampled."""
    w, h = SLIDE_SIZE
    grid = rng.integers(0, 256, (h // cell + 2, w // cell + 2), dtype=np.uint8)
    big = Image.fromarray(grid).resize(((w // cell + 2) * cell, (h // cell + 2) * cell), Image.BILINEAR)
    return np.asarray(big)[:h, :w]


def _nucleus_sprite(rng, radius, elongation, angle, irregular) -> np.ndarray:
    """Alpha (float32, 0..1) of one irregular elliptical nucleus with speckled chromatin."""
    half = int(np.ceil(radius * elongation * (1 + irregular))) + 2
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / (radius * elongation)
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) / radius
    phi = np.arctan2(v, u)
    lobes = 0.6 * np.sin(2 * phi + rng.uniform(0, 2 * np.pi)) + 0.4 * np.sin(3 * phi + rng.uniform(0, 2 * np.pi))
    d = np.sqrt(u * u + v * v) * (1 + irregular * lobes)
    alpha = np.clip((1 - d) * radius * 0.8 + 0.5, 0, 1)
    return alpha * rng.uniform(0.75, 1.0, alpha.shape).astype(np.float32)


def _gland_sprite(rng, radius) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alphas of one gland: white lumen, a ring of epithelium, and small nuclei strung around the lumen."""
    half = int(radius) + 20
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    rho = np.sqrt(xx * xx + yy * yy)
    lumen = np.clip((radius - rho) * 0.5 + 0.5, 0, 1)
    epithelium = np.clip(1 - np.abs(rho - radius - 8) / 9, 0, 1) ** 0.5
    # Nuclei at regular angles on the ring: distance to the nearest spot centre.
    count = int(2 * np.pi * radius / 12)
    step = 2 * np.pi / count
    phi = np.arctan2(yy, xx) + rng.uniform(0, step)
    nearest = np.round(phi / step) * step
    along = rho * np.sin(phi - nearest)
    across = rho * np.cos(phi - nearest) - (radius + 6)
    nuclei = np.clip((1 - np.sqrt((along / 4.5) ** 2 + (across / 3.5) ** 2)) * 3 + 0.5, 0, 1)
    return lumen, epithelium, nuclei


def _lattice_points(rng, label, value, spacing, jitter, presence) -> np.ndarray:
    """(y, x) centres on a jittered lattice that fall inside regions of one class."""
    h, w = label.shape
    ys, xs = np.mgrid[spacing // 2 : h : spacing, spacing // 2 : w : spacing]
    pts = np.stack([ys.ravel(), xs.ravel()], 1) + rng.uniform(-jitter, jitter, (ys.size, 2))
    pts = np.clip(np.round(pts), 0, [h - 1, w - 1]).astype(np.int64)
    keep = (label[pts[:, 0], pts[:, 1]] == value) & (rng.random(len(pts)) < presence)
    return pts[keep]


def _paste(canvas: np.ndarray, sprite: np.ndarray, y: int, x: int, clip: np.ndarray | None) -> None:
    """Max-composite a centred sprite (alpha 0..1) into a uint8 canvas, inside `clip` only, cut at the edges."""
    half_h, half_w = sprite.shape[0] // 2, sprite.shape[1] // 2
    y0, x0 = y - half_h, x - half_w
    sy0, sx0 = max(0, -y0), max(0, -x0)
    y1, x1 = min(canvas.shape[0], y0 + sprite.shape[0]), min(canvas.shape[1], x0 + sprite.shape[1])
    part = sprite[sy0 : sy0 + y1 - max(0, y0), sx0 : sx0 + x1 - max(0, x0)]
    window = canvas[max(0, y0) : y1, max(0, x0) : x1]
    alpha = (part * 255).astype(np.uint8)
    if clip is not None:
        alpha *= clip[max(0, y0) : y1, max(0, x0) : x1]
    np.maximum(window, alpha, out=window)


def _object_layers(rng: np.random.Generator, label: np.ndarray, fibre_angle: float) -> dict[str, np.ndarray]:
    """uint8 alpha canvases for nuclei, gland lumens and gland epithelium, each clipped to its own class."""
    h, w = label.shape
    layers = {k: np.zeros((h, w), np.uint8) for k in ("nuclei", "lumen", "epithelium")}

    # Tumour: crowded, large, irregular, pleomorphic nuclei.
    sprites = [_nucleus_sprite(rng, rng.uniform(7, 11), rng.uniform(1.0, 1.5), rng.uniform(0, np.pi), 0.15)
               for _ in range(24)]
    inside = label == TUMOR
    for y, x in _lattice_points(rng, label, TUMOR, 22, 7, 0.9):
        _paste(layers["nuclei"], sprites[rng.integers(len(sprites))], y, x, inside)

    # Stroma: few, thin, elongated nuclei lying along the fibres.
    sprites = [_nucleus_sprite(rng, rng.uniform(3, 4), rng.uniform(3, 4.5), fibre_angle + rng.normal(0, 0.15), 0.05)
               for _ in range(12)]
    inside = label == STROMA
    for y, x in _lattice_points(rng, label, STROMA, 80, 30, 0.35):
        _paste(layers["nuclei"], sprites[rng.integers(len(sprites))], y, x, inside)

    # Normal: glands (lumen, epithelium, a ring of small nuclei) plus a few scattered small nuclei.
    glands = [_gland_sprite(rng, rng.uniform(24, 36)) for _ in range(8)]
    inside = label == NORMAL
    for y, x in _lattice_points(rng, label, NORMAL, 140, 20, 0.9):
        lumen, epithelium, nuclei = glands[rng.integers(len(glands))]
        _paste(layers["lumen"], lumen, y, x, inside)
        _paste(layers["epithelium"], epithelium, y, x, inside)
        _paste(layers["nuclei"], nuclei, y, x, inside)
    sprites = [_nucleus_sprite(rng, rng.uniform(3.5, 5), 1.1, rng.uniform(0, np.pi), 0.1) for _ in range(8)]
    between = inside & (layers["epithelium"] == 0)
    for y, x in _lattice_points(rng, label, NORMAL, 45, 20, 0.3):
        _paste(layers["nuclei"], sprites[rng.integers(len(sprites))], y, x, between)
    return layers


def _slide_colours(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Colour tables per plane, tinted per slide (stain variation) on tissue only; label-indexed where needed."""
    tint = rng.uniform(0.95, 1.05, 3).astype(np.float32)
    tissue = np.array([1, 0, 0, 0], np.float32)[:, None] + np.array([0, 1, 1, 1], np.float32)[:, None] * tint
    flat = {"fibre": FIBRE, "epithelium": EPITHELIUM, "lumen": LUMEN}
    out = {k: np.asarray(v, np.float32) * tint for k, v in flat.items()}
    out["base"] = (BASE * tissue).T.copy()
    out["nuclei"] = (NUCLEUS * tissue).T.copy()
    return out


def _compose(rows: slice, label, layers, mottle, warp, fibre_angle, colours, rng) -> np.ndarray:
    """RGB uint8 for a band of rows: class colours, stroma fibres, then glands and nuclei on top.

    Works one colour plane at a time, in place, and skips layers absent from the band: this is the hot loop.
    """
    lab = label[rows]
    h, w = lab.shape
    out = np.empty((h, w, 3), np.uint8)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    grain *= 2.5
    shade = MOTTLE[lab] * (mottle[rows] * np.float32(2 / 255) - 1)
    shade += 1
    alphas = []
    stroma = lab == STROMA
    if stroma.any():  # wavy eosin fibres: stripes across the fibre direction, bent by smooth noise
        a = fibre_angle + np.pi / 2
        ys = np.arange(rows.start, rows.start + h, dtype=np.float32)[:, None]
        xs = np.arange(w, dtype=np.float32)[None]
        across = xs * np.float32(np.cos(a)) + ys * np.float32(np.sin(a)) + warp[rows] * np.float32(60 / 255)
        fibre = np.sin(across * np.float32(2 * np.pi / 14))
        np.clip(fibre, 0, 1, out=fibre)
        fibre *= fibre
        fibre *= stroma * np.float32(0.55)
        alphas.append(("fibre", fibre))
    for name in ("epithelium", "lumen", "nuclei"):
        layer = layers[name][rows]
        if layer.any():
            alphas.append((name, layer.astype(np.float32) * np.float32(1 / 255)))
    for c in range(3):
        plane = colours["base"][c][lab]
        plane *= shade
        for name, alpha in alphas:
            target = colours[name][c][lab] if name == "nuclei" else colours[name][c]
            delta = target - plane
            delta *= alpha
            plane += delta
        plane += grain
        np.clip(plane, 0, 255, out=plane)
        out[..., c] = plane
    return out


# ---------------------------------------------------------------- slide files


def _render_slide(seed: int, index: int, tumor: bool) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Level-0 RGB pixels and the region polygons they were painted from."""
    rng = np.random.default_rng([seed, _STREAM_SLIDE, index])
    regions = _slide_regions(rng, tumor)
    label = _label_map(regions)
    fibre_angle = rng.uniform(0, np.pi)
    layers = _object_layers(rng, label, fibre_angle)
    mottle, warp = _upsampled_noise(rng, 48), _upsampled_noise(rng, 160)
    colours = _slide_colours(rng)
    band = 64  # small bands keep float temporaries in cache
    strips = [_compose(slice(y, y + band), label, layers, mottle, warp, fibre_angle, colours, rng)
              for y in range(0, label.shape[0], band)]
    return np.concatenate(strips), regions


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter reduction: each output pixel is the mean of a factor x factor block."""
    return np.asarray(Image.fromarray(image).reduce(factor))


def _aperio_description(width: int, height: int, level_size: tuple[int, int] | None = None) -> str:
    """Aperio SVS-style ImageDescription: OpenSlide reads `key = value` pairs after the first '|'."""
    head = "Aperio Image Library v12.0.15 tileprobe-demo\r\n"
    if level_size is not None:  # reduced levels name their size, as scanners do
        return head + f"{width}x{height} -> {level_size[0]}x{level_size[1]} - "
    return (head + f"{width}x{height} [0,0 {width}x{height}] ({SLIDE_TILE}x{SLIDE_TILE}) JPEG/RGB Q={JPEG_QUALITY}"
            f"|MPP = {SLIDE_MPP}|AppMag = {SLIDE_MAG}")


def _write_slide(path: Path, pixels: np.ndarray) -> None:
    """Tiled, JPEG-compressed pyramidal TIFF that OpenSlide opens as an Aperio slide."""
    height, width = pixels.shape[:2]
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=False) as tif:
        for downsample in SLIDE_DOWNSAMPLES:
            level = pixels if downsample == 1 else _downsample(pixels, downsample)
            size = None if downsample == 1 else (level.shape[1], level.shape[0])
            tif.write(level, photometric="rgb", tile=(SLIDE_TILE, SLIDE_TILE), compression="jpeg",
                      compressionargs={"level": JPEG_QUALITY}, description=_aperio_description(width, height, size),
                      metadata=None, software=False)


def _write_annotations(path: Path, regions) -> None:
    """QuPath-style GeoJSON: one Polygon per region, class in properties.classification.name, level-0 px."""
    colours = {"tumor": [200, 0, 0], "stroma": [150, 200, 150], "normal": [20, 20, 180]}
    features = []
    for name, xy in regions:
        ring = np.round(xy, 1).tolist()
        ring.append(ring[0])
        features.append({
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "annotation", "classification": {"name": name, "color": colours[name]}},
        })
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def _make_slide(out_dir: Path, seed: int, index: int, row: dict) -> None:
    pixels, regions = _render_slide(seed, index, row["tumor"] == "yes")
    _write_slide(out_dir / row["path"], pixels)
    _write_annotations(out_dir / row["annotations"], regions)


# ---------------------------------------------------------------- ISH images


def _soft(x: np.ndarray, width: float = 0.08) -> np.ndarray:
    return 1 / (1 + np.exp(-x / width))


def _term_masks(u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    """Where each anatomical term lies, in embryo coordinates (u: anterior -1 .. posterior +1, v: dorsal -1 ..
    ventral +1)."""
    return {
        "anterior": _soft(-0.45 - u),
        "posterior": _soft(u - 0.45),
        "dorsal": _soft(-0.35 - v),
        "ventral": _soft(v - 0.35),
        "central": np.exp(-((u / 0.35) ** 2 + (v / 0.45) ** 2)),
    }


# Per stage: semi-axes (px), bend of the body axis, number of segment stripes, stripe depth, yolk colour.
_STAGE_LOOK = (
    dict(axes=(96, 80), bend=0.0, stripes=0, depth=0.0, colour=(236, 224, 186)),
    dict(axes=(134, 60), bend=0.0, stripes=4, depth=0.18, colour=(222, 202, 154)),
    dict(axes=(138, 58), bend=0.35, stripes=13, depth=0.3, colour=(192, 162, 116)),
)


def _render_ish(seed: int, gene: int, stage: int, terms: list[str]) -> np.ndarray:
    """One lateral-view embryo, anterior left, dorsal up, with dark blue-purple stain where the gene is on."""
    rng = np.random.default_rng([seed, _STREAM_ISH, gene, stage])
    look = _STAGE_LOOK[stage]
    w, h = ISH_SIZE
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(-0.12, 0.12)
    ox, oy = xx - w / 2 - rng.uniform(-10, 10), yy - h / 2 - rng.uniform(-8, 8)
    a, b = (np.asarray(look["axes"]) * rng.uniform(0.94, 1.06)).tolist()
    u = (ox * np.cos(angle) + oy * np.sin(angle)) / a
    v = (-ox * np.sin(angle) + oy * np.cos(angle)) / b
    v = v - look["bend"] * (1 - u * u) + look["bend"] * 0.5  # late embryos curl: the body axis bends
    rho = np.sqrt(u * u + v * v)
    inside = np.clip((1 - rho) * min(a, b) * 0.6 + 0.5, 0, 1)

    out = np.empty((h, w, 3), np.float32)
    out[:] = (238, 238, 232)
    embryo = np.asarray(look["colour"], np.float32) * (1 - 0.12 * rho**4)[..., None]  # darker rim
    if look["stripes"]:
        phase = (u + 1) / 2 * look["stripes"] * np.pi
        embryo *= (1 - look["depth"] * np.abs(np.sin(phase)) ** 3)[..., None]
    if stage == 2:  # a fold: the germ band turns back on itself along the dorsal side
        embryo *= (1 - 0.35 * np.exp(-(((v + 0.25) / 0.07) ** 2)) * (u > -0.6))[..., None]
    masks = _term_masks(u, v)
    expression = np.max([masks[t] for t in terms], axis=0) * rng.uniform(0.75, 0.95)
    embryo += (np.asarray((62, 44, 120), np.float32) - embryo) * expression[..., None]
    out += (embryo - out) * inside[..., None]
    out += rng.normal(0, 3, (h, w, 1)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _write_png(path: Path, pixels: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


# ---------------------------------------------------------------- the demo


def make_demo(out_dir, seed: int = DEMO_DEFAULTS["seed"], slides: int = DEMO_DEFAULTS["slides"],
              images: int = DEMO_DEFAULTS["images"]) -> Path:
    """Write the demo slides, annotations and ISH images under `out_dir`, then `samples.tsv` last.

    The sheet appears only once everything it names exists, so a half-made demo never looks finished.
    Returns the sheet's path.
    """
    out_dir = Path(out_dir)
    sheet = demo_samples(out_dir, seed=seed, slides=slides, images=images)
    wsi = sheet[sheet["tumor"] != ""].to_dict("records")
    # Slides are independent and numpy/JPEG release the GIL, so threads use the cores without pickling.
    workers = max(1, min(len(wsi), os.cpu_count() or 1, 4))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda item: _make_slide(out_dir, seed, *item), enumerate(wsi)))
    ish = sheet[sheet["stage"] != ""].to_dict("records")
    for (gene, stage), row in zip(_ish_layout(images), ish):
        pixels = _render_ish(seed, gene, stage, row["terms"].split(";"))
        _write_png(out_dir / row["path"], pixels)
    target = out_dir / "samples.tsv"
    with atomic_path(target) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False, compression=None)
    return target
