import json
import re

import numpy as np
import openslide
import pandas as pd
import pytest
from PIL import Image
from skimage.draw import polygon as draw_polygon
from skimage.measure import points_in_poly
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tileprobe.demo import synthetic as demo
from tileprobe.demo.synthetic import DEMO_DEFAULTS, demo_samples, make_demo
from tileprobe.learn.metrics import harrell_c

SLIDES, IMAGES = 4, 24  # enough for every check, small enough to run in seconds
CLASSES = {"tumor", "stroma", "normal"}
ID = re.compile(r"[A-Za-z0-9._-]+")


def read_sheet(path):
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def regions(path):
    """[(class name, (n, 2) level-0 xy ring)] from a demo GeoJSON."""
    doc = json.loads(path.read_text())
    assert doc["type"] == "FeatureCollection"
    out = []
    for feature in doc["features"]:
        assert feature["geometry"]["type"] == "Polygon"
        assert feature["properties"]["objectType"] == "annotation"
        ring = np.asarray(feature["geometry"]["coordinates"][0], float)
        assert (ring[0] == ring[-1]).all() and len(ring) >= 4
        out.append((feature["properties"]["classification"]["name"], ring))
    return out


def class_masks(regs, shape, scale):
    """Boolean masks per class at a level whose downsample is `scale`."""
    masks = {name: np.zeros(shape, bool) for name in CLASSES}
    for name, ring in regs:
        rr, cc = draw_polygon(ring[:, 1] / scale, ring[:, 0] / scale, shape)
        masks[name][rr, cc] = True
    return masks


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    make_demo(out, seed=0, slides=SLIDES, images=IMAGES)
    return out


@pytest.fixture(scope="module")
def sheet(demo_dir):
    return read_sheet(demo_dir / "samples.tsv")


@pytest.fixture(scope="module")
def wsi(sheet):
    return sheet[sheet["tumor"] != ""]


@pytest.fixture(scope="module")
def ish(sheet):
    return sheet[sheet["stage"] != ""]


def test_defaults_sheet_contract(tmp_path):
    df = demo_samples(tmp_path, **DEMO_DEFAULTS)
    assert list(tmp_path.iterdir()) == []  # pure: nothing written
    assert list(df.columns) == ["slide", "path", "patient", "mpp", "annotations", "group", "tumor", "tumor_fraction",
                                "months", "death", "stage", "terms"]
    assert df["slide"].is_unique and all(ID.fullmatch(s) for s in df["slide"])
    assert all(ID.fullmatch(p) for p in df["patient"])
    assert (df["mpp"] == "").all()
    assert not any(p.startswith("/") for p in df["path"])

    slides = df[df["tumor"] != ""]
    assert len(slides) == DEMO_DEFAULTS["slides"]
    assert slides["tumor"].value_counts().to_dict() == {"yes": 6, "no": 6}
    assert slides["patient"].nunique() == 9
    assert (slides.groupby("patient")["tumor"].nunique() == 1).all()  # a patient's slides share the label
    assert slides.groupby("tumor")["patient"].nunique().min() >= 4  # 3-fold stratified group CV works
    assert (slides[["group", "stage", "terms"]] == "").all().all()
    # A number and a survival per slide: tumour fraction 0 without tumour; deaths come sooner with more tumour
    fraction, months, death = (slides[c].astype(float) for c in ("tumor_fraction", "months", "death"))
    assert (fraction[slides["tumor"] == "no"] == 0).all() and (fraction[slides["tumor"] == "yes"] >= 0.35).all()
    assert (months > 0).all() and set(death) == {0.0, 1.0} and 0.5 <= death.mean() < 1
    assert harrell_c(months.to_numpy(), death.to_numpy(), fraction.to_numpy()) > 0.75
    assert slides["path"].str.fullmatch(r"slides/slide_\d+\.tiff").all()
    assert slides["annotations"].str.fullmatch(r"annotations/slide_\d+\.geojson").all()

    images = df[df["stage"] != ""]
    assert len(images) == DEMO_DEFAULTS["images"] and len(df) == len(slides) + len(images)
    assert images["stage"].value_counts().to_dict() == {"stage_1": 8, "stage_2": 8, "stage_3": 8}
    assert (images["group"] == images["patient"] + "_" + images["stage"]).all()
    assert (images[["tumor", "annotations", "tumor_fraction", "months", "death"]] == "").all().all()
    terms = images["terms"].str.split(";")
    assert terms.map(lambda t: 1 <= len(t) <= 3 and set(t) <= set(demo.TERMS)).all()
    assert (images.groupby("patient")["terms"].nunique() == 1).all()  # terms belong to the gene
    assert set().union(*terms) == set(demo.TERMS)


def test_written_sheet_is_demo_samples_and_paths_exist(demo_dir, sheet):
    expected = demo_samples(demo_dir, seed=0, slides=SLIDES, images=IMAGES)
    pd.testing.assert_frame_equal(sheet, expected)
    for column in ("path", "annotations"):
        for rel in sheet[column][sheet[column] != ""]:
            assert (demo_dir / rel).is_file(), rel
    assert not list(demo_dir.rglob(".*tmp-*"))  # no leftover temporaries


def test_same_seed_same_demo_other_seed_differs(tmp_path):
    made = {name: make_demo(tmp_path / name, seed=seed, slides=1, images=3)
            for name, seed in (("a", 5), ("b", 5), ("c", 6))}

    def content(name):
        root = made[name].parent
        slide = openslide.OpenSlide(root / "slides" / "slide_01.tiff")
        pixels = np.asarray(slide.get_thumbnail((512, 512)))
        slide.close()
        png = np.asarray(Image.open(root / read_sheet(made[name])["path"].iloc[-1]))
        return made[name].read_text(), pixels, png, (root / "annotations" / "slide_01.geojson").read_text()

    a, b, c = content("a"), content("b"), content("c")
    assert a[0] == b[0] and a[3] == b[3]
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert a[3] != c[3]
    assert not np.array_equal(a[1], c[1]) and not np.array_equal(a[2], c[2])


def test_failed_demo_leaves_no_sheet(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo, "_render_ish", broken)
    with pytest.raises(RuntimeError):
        make_demo(tmp_path, slides=0, images=3)
    assert not (tmp_path / "samples.tsv").exists()


def test_slides_open_with_openslide(demo_dir, wsi):
    for rel in wsi["path"]:
        with openslide.OpenSlide(demo_dir / rel) as slide:
            assert slide.properties["openslide.vendor"] == "aperio"
            assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(demo.SLIDE_MPP)
            assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(demo.SLIDE_MPP)
            assert slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == "20"
            assert slide.level_count >= 3
            assert slide.dimensions == demo.SLIDE_SIZE
            assert slide.level_downsamples[:3] == pytest.approx((1, 4, 16))
            tile = np.asarray(slide.read_region((0, 0), 0, (256, 256)).convert("RGB"))
            assert tile.mean() > 220  # the corner is glass


def test_annotations_match_painted_tissue(demo_dir, wsi):
    level = 1
    colours = {name: [] for name in CLASSES}
    for _, row in wsi.iterrows():
        regs = regions(demo_dir / row["annotations"])
        names = {name for name, _ in regs}
        w, h = demo.SLIDE_SIZE
        for _, ring in regs:
            assert (ring >= 0).all() and (ring[:, 0] <= w).all() and (ring[:, 1] <= h).all()
        with openslide.OpenSlide(demo_dir / row["path"]) as slide:
            scale = slide.level_downsamples[level]
            pixels = np.asarray(slide.read_region((0, 0), level, slide.level_dimensions[level]).convert("RGB"))
        masks = class_masks(regs, pixels.shape[:2], scale)
        tissue = np.any(list(masks.values()), axis=0)
        area = {name: m.sum() / tissue.sum() for name, m in masks.items()}
        assert 0.45 < tissue.mean() < 0.7
        # the sheet's tumour fraction is the painted tumour's share of the tissue
        assert float(row["tumor_fraction"]) == pytest.approx(area["tumor"], abs=0.03)
        if row["tumor"] == "yes":
            assert names == CLASSES and area["tumor"] >= 0.35
        else:
            assert names == {"stroma", "normal"} and area["tumor"] == 0
        # Painting follows the polygons: glass outside, stained tissue inside (gland lumens are the white part).
        glass = (pixels.min(axis=2) > 225)
        assert glass[~tissue].mean() > 0.97
        assert glass[tissue].mean() < 0.2
        for name, mask in masks.items():
            if mask.any():
                colours[name].append(pixels[mask].mean(axis=0))
    tumor, stroma, normal = (np.mean(colours[n], axis=0) for n in ("tumor", "stroma", "normal"))
    assert np.abs(tumor - stroma).sum() > 60 and np.abs(tumor - normal).sum() > 60
    assert tumor[1] < stroma[1]  # haematoxylin-rich tumour is darker in green than eosin stroma


def sample_tiles(slide, regs, rng, size=128, per_region=12):
    """Level-0 tiles whose corners and centre lie inside one region, with that region's class."""
    tiles, labels = [], []
    offsets = np.array([[0, 0], [size, 0], [0, size], [size, size], [size / 2, size / 2]])
    for name, ring in regs:
        lo, hi = ring.min(axis=0), ring.max(axis=0) - size
        candidates = rng.uniform(lo, hi, (400, 2))
        inside = np.all([points_in_poly(candidates + o, ring) for o in offsets], axis=0)
        for x, y in candidates[inside][:per_region].astype(int):
            tiles.append(np.asarray(slide.read_region((int(x), int(y)), 0, (size, size)).convert("RGB")))
            labels.append(name)
    return tiles, labels


def colour_histogram(pixels, bins=8):
    return np.concatenate([np.histogram(pixels[..., c], bins=bins, range=(0, 256))[0] for c in range(3)]) / (
        pixels.shape[0] * pixels.shape[1])


def test_region_classes_learnable_from_colour_histograms(demo_dir, wsi):
    rng = np.random.default_rng(0)
    features, labels = [], []
    for _, row in wsi.iterrows():
        with openslide.OpenSlide(demo_dir / row["path"]) as slide:
            tiles, names = sample_tiles(slide, regions(demo_dir / row["annotations"]), rng)
        features += [colour_histogram(t) for t in tiles]
        labels += names
    assert set(labels) == CLASSES and len(labels) >= 60
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    predicted = cross_val_predict(model, np.array(features), np.array(labels),
                                  cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert balanced_accuracy_score(labels, predicted) > 0.8


def test_ish_images_open_and_stage_is_learnable(demo_dir, ish):
    assert ish["stage"].value_counts().nunique() == 1  # balanced
    features = []
    for rel in ish["path"]:
        with Image.open(demo_dir / rel) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == demo.ISH_SIZE
            pixels = np.asarray(image)
            small = np.asarray(image.convert("L").resize((16, 12), Image.BILINEAR), float) / 255
        stain = (pixels[..., 2].astype(int) - pixels[..., 1]) > 30  # blue-purple expression
        assert 0.005 < stain.mean() < 0.6
        features.append(np.concatenate([small.ravel(), colour_histogram(pixels)]))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    predicted = cross_val_predict(model, np.array(features), ish["stage"].to_numpy(), groups=ish["patient"],
                                  cv=StratifiedGroupKFold(3, shuffle=True, random_state=0))
    assert balanced_accuracy_score(ish["stage"], predicted) > 0.6
