"""The one way tileprobe caps its threads: embedding and head training both run as jobs given `threads`."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def limited_threads(threads: int):
    """Cap torch and BLAS/OpenMP threads to `threads` (at least one) inside the block, and restore torch's after.

    A Snakemake job gets `threads` cores; small fits also run several times faster on one thread than on a
    pool that fights other jobs for the same cores. torch is imported here, not at module import, so code
    that never trains or embeds does not pay for it.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
