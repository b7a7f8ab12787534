"""Precise filters for warnings that dependencies raise about things that are fine, so a run's output shows only
warnings that mean something. Each filter names the message and the module, and says what it works around."""

from __future__ import annotations

import warnings


def install() -> None:
    # Snakemake writes `.snakemake_timestamp` into every directory output, our Zarr stores included; zarr 3 warns
    # about that file each time it lists a store's members. The store is fine, and the file must stay (Snakemake
    # reads its mtime), so only this message from zarr's group listing is ignored.
    warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp is not recognized",
                            module=r"zarr\.core\.group")
