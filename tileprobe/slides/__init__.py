"""Slides: one reader interface over every image format.

Every reader is a `Slide` subclass (`base`) registered with `registry.register_backend`; `open_slide` asks each
in order whether it recognises a file, so a new format is one new module. Pixels always come back as uint8 RGB
with transparent or outside pixels composited onto white.

Readers, in the order they are asked: OME-TIFF (tifffile), OpenSlide's formats, other TIFFs (tifffile); any
file none claims goes to Pillow.
"""

# Importing the readers registers them (the tifffile reader puts OME-TIFF before OpenSlide itself).
from tileprobe.slides import openslide_reader, tifffile_reader  # noqa: F401
from tileprobe.slides.base import Slide, SlideError, best_level
from tileprobe.slides.registry import open_slide, register_backend

__all__ = ["Slide", "SlideError", "best_level", "open_slide", "register_backend"]
