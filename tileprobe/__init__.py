__version__ = "0.1.0"

from tileprobe import quiet as _quiet  # noqa: E402

_quiet.install()
