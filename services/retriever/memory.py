"""The C allocator's settings for the retriever process (glibc's malloc).

What grew during an ingest was the C allocator's anonymous memory (bench/ingest_bench.py prints
the retriever's RSS by kind), not Qdrant's files. glibc raises its mmap threshold, up to 32 MiB,
each time a block above it is freed; after that the embedding model's activations (1-32 MiB
blocks, a new size for every batch shape) come from the heaps instead of mappings of their own,
and those heaps fragment and keep what they grew to instead of handing it back when freed.

Two remedies: fix the threshold (every large block mapped afresh and given back when freed: the
heap stays small, but each activation is faulted in anew, which cost the embedders 20% of their
speed), or leave glibc's threshold and trim the heaps after each ingest group (the default: the
heap is reused between batches and its free pages handed back between groups; peak RSS as low,
the whole help 10% faster; RetrieverSettings has the figures).
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

# mallopt's parameter number for the mmap threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3


def set_mmap_threshold(threshold_bytes: int) -> bool:
    """Blocks of at least `threshold_bytes` get their own mapping, returned to the system when
    freed. 0 leaves glibc's own (dynamic) threshold. True when the C library took the value."""
    if threshold_bytes <= 0:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        # musl, macOS, Windows: no mallopt in the process, and none of glibc's dynamic threshold.
        log.debug("no mallopt in this C library; mmap threshold left as it is")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # Setting the threshold at all also fixes it: glibc stops raising it when large blocks are
    # freed, which is what keeps the model's activations out of the heap (see the module's
    # docstring). Setting it to glibc's own starting value (128 KiB) is therefore not a no-op.
    applied = bool(mallopt(M_MMAP_THRESHOLD, threshold_bytes))
    if applied:
        log.debug("malloc mmap threshold fixed at %d bytes", threshold_bytes)
    else:
        log.debug("mallopt refused an mmap threshold of %d bytes; left as it is", threshold_bytes)
    return applied


def release_free_memory() -> bool:
    """glibc hands the free pages of its heaps back to the system (malloc_trim): what an ingest
    group's embedding batches freed stops counting as the process's memory, while the next group
    still reuses the heap's address space instead of mapping every large block afresh. True when
    the C library has malloc_trim and released something."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int
    return bool(malloc_trim(0))
