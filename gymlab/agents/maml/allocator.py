"""Keeping freed memory in the process for the next tensor of its size.

glibc's malloc hands blocks above its mmap threshold (128 KiB at first) straight to and
from the kernel, and gives the top of its heap back once more than the trim threshold is
free there. A loop that allocates and frees megabyte-sized tensors every op (MAML's
meta-update: hundreds per Hessian product) then pays a page fault for every 4 KiB of
every new tensor, CPU time spent in the kernel rather than on the update
(benchmarks/maml.py --parts training compares glibc's defaults with these settings).
glibc raises both thresholds by itself only after it frees a block above the current one,
which a run's first large free may or may not be.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20
"""Blocks from this size up still come from the kernel: glibc's own ceiling for its
self-raised threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)."""
TRIM_THRESHOLD = 256 * 2**20
"""Free memory the heap keeps at its top before returning it to the kernel."""


@functools.cache
def reuse_freed_memory() -> bool:
    """Set glibc's thresholds for this process (once); whether it took them (False where
    the C library is not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
