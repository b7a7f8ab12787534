"""Real slide files for tests: Aperio-style pyramidal TIFFs that OpenSlide reads, and plain images."""

from __future__ import annotations

import json
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
from PIL import Image

WHITE = (255, 255, 255)
TISSUE = (200, 60, 140)  # an eosin-like pink: saturated, so Otsu on saturation finds it


def tissue_image(width: int, height: int, box: tuple[int, int, int, int], colour=TISSUE) -> np.ndarray:
    """White (h, w, 3) uint8 with a `colour` rectangle at box = (x0, y0, x1, y1), exclusive ends."""
    image = np.full((height, width, 3), WHITE, np.uint8)
    x0, y0, x1, y1 = box
    image[y0:y1, x0:x1] = colour
    return image


def position_image(width: int, height: int) -> np.ndarray:
    """Every pixel says where it is: R = x mod 256, G = y mod 256, B = which 256-px block (x, y) it lies in."""
    y, x = np.mgrid[0:height, 0:width]
    blocks = (x // 256) * 37 + (y // 256) * 91
    return np.stack([x % 256, y % 256, blocks % 256], axis=-1).astype(np.uint8)


def pyramid(image: np.ndarray, downsamples=(1, 4, 16)) -> list[np.ndarray]:
    """Box-averaged levels of `image`, each `w // d` x `h // d`."""
    h, w = image.shape[:2]
    pil = Image.fromarray(image)
    return [np.asarray(pil.resize((w // d, h // d), Image.Resampling.BOX)) for d in downsamples]


def write_aperio(
    path: str | Path,
    image: np.ndarray,
    mpp: float | None = 0.5,
    downsamples=(1, 4, 16),
    compression: str = "jpeg",
    associated: tuple[str, ...] = (),
) -> list[np.ndarray]:
    """A tiled, pyramidal TIFF with an Aperio ImageDescription (OpenSlide's "aperio" format); returns the levels
    as written. `compression="zlib"` makes pixels exact; "jp2k" writes Aperio's JPEG 2000 (RGB, code 33005)."""
    levels = pyramid(image, downsamples)
    h, w = image.shape[:2]
    description = f"Aperio Image Library v10.0.0\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=90|AppMag = 20"
    if mpp is not None:
        description += f"|MPP = {mpp}"
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels):
            data, kwargs = level, {"compression": compression}
            if compression == "jp2k":  # tifffile has no Aperio JPEG 2000 encoder: hand it encoded tiles
                data = (imagecodecs.jpeg2k_encode(t, level=90, codecformat="J2K") for t in tiles_of(level))
                kwargs = {"compression": 33005, "shape": level.shape, "dtype": np.uint8}
            tif.write(data, tile=(256, 256), photometric="rgb", metadata=None,
                      description=description if i == 0 else f"Aperio level {i}", **kwargs)
        for name in associated:  # stripped pages after the pyramid, named on their description's second line
            tif.write(np.full((64, 96, 3), 128, np.uint8), photometric="rgb", metadata=None, subfiletype=1,
                      description=f"Aperio Image Library v10.0.0\n{name} 96x64")
    return levels


def tiles_of(image: np.ndarray, side: int = 256):
    """Row-major `side` x `side` tiles of `image`, edge tiles padded with white (as scanners write them)."""
    h, w = image.shape[:2]
    for y in range(0, h, side):
        for x in range(0, w, side):
            tile = np.full((side, side, image.shape[2]), 255, np.uint8)
            part = image[y : y + side, x : x + side]
            tile[: part.shape[0], : part.shape[1]] = part
            yield tile


def write_generic_tiff(path, image, downsamples=(1, 4), pixels_per_cm=None, compression="jpeg") -> list[np.ndarray]:
    """A tiled pyramid, one level per TIFF directory, no vendor description (OpenSlide's "generic-tiff"; it
    takes coarser directories as levels only when marked reduced-resolution, NewSubfileType 1)."""
    levels = pyramid(image, downsamples)
    kwargs = {"resolution": (pixels_per_cm, pixels_per_cm), "resolutionunit": "CENTIMETER"} if pixels_per_cm else {}
    with tifffile.TiffWriter(path) as tif:
        for i, level in enumerate(levels):
            tif.write(level, tile=(256, 256), compression=compression, photometric="rgb", metadata=None,
                      subfiletype=1 if i else 0, **kwargs)
    return levels


def write_ome_tiff(path, image, mpp=0.5, downsamples=(1, 4), compression="zlib", magnification=None):
    """An OME-TIFF pyramid: level 0 in the main IFD, coarser levels in its SubIFDs, mpp in the OME XML."""
    levels = pyramid(image, downsamples)
    metadata = {"axes": "YXS"}
    if mpp is not None:
        metadata.update(PhysicalSizeX=mpp, PhysicalSizeY=mpp, PhysicalSizeXUnit="µm", PhysicalSizeYUnit="µm")
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(levels[0], subifds=len(levels) - 1, tile=(256, 256), compression=compression,
                  photometric="rgb", metadata=metadata)
        for level in levels[1:]:
            tif.write(level, subfiletype=1, tile=(256, 256), compression=compression, photometric="rgb")
    if magnification is not None:  # tifffile writes no Instrument; patch one in, same length file is not needed
        with tifffile.TiffFile(path) as tif:
            xml = tif.ome_metadata
        instrument = (f'<Instrument ID="Instrument:0"><Objective ID="Objective:0:0" '
                      f'NominalMagnification="{magnification}"/></Instrument>')
        xml = xml.replace("<Image ", instrument + "<Image ", 1)
        tifffile.tiffcomment(path, xml.encode())
    return levels


def write_png(path: str | Path, image: np.ndarray) -> np.ndarray:
    Image.fromarray(image).save(path)
    return image


def write_plain_tiff(path: str | Path, image: np.ndarray, pixels_per_cm: float | None = None,
                     rowsperstrip: int | None = None, compression=None) -> np.ndarray:
    """A stripped (untiled) TIFF: no OpenSlide format claims it, so tifffile reads it strip by strip."""
    kwargs = {"resolution": (pixels_per_cm, pixels_per_cm), "resolutionunit": "CENTIMETER"} if pixels_per_cm else {}
    tifffile.imwrite(path, image, photometric="rgb", metadata=None, rowsperstrip=rowsperstrip,
                     compression=compression, **kwargs)
    return image


def polygon_feature(rings: list[list[tuple[float, float]]], properties: dict) -> dict:
    """A GeoJSON Polygon feature; the first ring is the exterior, the rest are holes. Rings are closed here."""
    closed = [[list(p) for p in ring] + [list(ring[0])] for ring in rings]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": closed}, "properties": properties}


def box(x0, y0, x1, y1) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def write_geojson(path: str | Path, features: list[dict], collection: bool = True) -> Path:
    data = {"type": "FeatureCollection", "features": features} if collection else features
    Path(path).write_text(json.dumps(data))
    return Path(path)


def write_dicom(folder: str | Path, image: np.ndarray, mpp: float = 0.5, tile: int = 256,
                downsamples=(1, 2)) -> list[np.ndarray]:
    """A DICOM VL Whole Slide Microscopy series, one file per level in `folder`, as OpenSlide 4 reads it:
    TILED_FULL frames of `tile` px (native RGB, so pixels compare exactly), pixel spacing in mm."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    levels = pyramid(image, downsamples)
    for index, (level, downsample) in enumerate(zip(levels, downsamples)):
        h, w = level.shape[:2]
        padded = np.full((-(-h // tile) * tile, -(-w // tile) * tile, 3), 255, np.uint8)
        padded[:h, :w] = level
        frames = [padded[y:y + tile, x:x + tile] for y in range(0, padded.shape[0], tile)
                  for x in range(0, padded.shape[1], tile)]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_reference
        ds.Modality, ds.Manufacturer, ds.ContainerIdentifier = "SM", "tileprobe tests", "slide"
        ds.ImageType = ["ORIGINAL" if index == 0 else "DERIVED", "PRIMARY", "VOLUME", "NONE"]
        ds.PatientID = ds.PatientName = ds.StudyID = "test"
        ds.SeriesNumber, ds.InstanceNumber = 1, index + 1
        ds.DimensionOrganizationType = "TILED_FULL"
        ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows, ds.TotalPixelMatrixFocalPlanes = w, h, 1
        ds.Rows = ds.Columns = tile
        ds.NumberOfFrames, ds.NumberOfOpticalPaths = len(frames), 1
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        spacing_mm = mpp * downsample / 1000
        ds.ImagedVolumeWidth, ds.ImagedVolumeHeight, ds.ImagedVolumeDepth = w * spacing_mm, h * spacing_mm, 0.001
        measures = Dataset()
        measures.PixelSpacing, measures.SliceThickness = [spacing_mm, spacing_mm], 0.001
        shared = Dataset()
        shared.PixelMeasuresSequence = Sequence([measures])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        optical_path = Dataset()
        optical_path.OpticalPathIdentifier = "1"
        ds.OpticalPathSequence = Sequence([optical_path])
        ds.PixelData = np.stack(frames).tobytes()
        ds.save_as(folder / f"level{index}.dcm", enforce_file_format=True)
    return levels
