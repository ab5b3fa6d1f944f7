"""What bounds the retriever's memory while it embeds (issue 29): the dense model's batches
bounded in padded tokens (embedding.token_batches), glibc's heaps trimmed after each ingest group,
and glibc's mmap threshold when one is set (services/retriever/memory.py). The figures:
bench/ingest_bench.py."""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from services.retriever.embedding import token_batches

ROOT = Path(__file__).resolve().parents[3]


def check_batches(counts: list[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    batches = list(token_batches(counts, max_texts, max_tokens))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(counts)))  # every text once
    assert [counts[i] for i in flat] == sorted(counts, reverse=True)  # longest first
    for batch in batches:
        longest = max(counts[i] for i in batch)
        assert len(batch) <= max_texts
        assert len(batch) == 1 or longest * len(batch) <= max_tokens
    # A batch ends only where the next text would break a bound.
    for batch in batches[:-1]:
        longest = max(counts[i] for i in batch)
        assert len(batch) == max_texts or longest * (len(batch) + 1) > max_tokens
    return batches


@pytest.mark.parametrize("seed", range(20))
def test_token_batches_stay_within_both_bounds_and_cover_every_text_once(seed: int) -> None:
    rng = random.Random(seed)
    counts = [rng.randint(3, 256) for _ in range(rng.randint(0, 300))]
    max_texts, max_tokens = rng.choice([1, 8, 64]), rng.choice([256, 1024, 4096])
    check_batches(counts, max_texts, max_tokens)


def test_token_batches_of_short_texts_are_bounded_by_count_and_of_long_ones_by_tokens() -> None:
    short = check_batches([10] * 200, max_texts=64, max_tokens=4096)
    assert [len(b) for b in short] == [64, 64, 64, 8]
    long = check_batches([256] * 40, max_texts=64, max_tokens=4096)
    assert [len(b) for b in long] == [4096 // 256] * 2 + [40 - 2 * (4096 // 256)]


def test_a_text_longer_than_the_token_bound_makes_a_batch_of_its_own() -> None:
    batches = check_batches([50, 300, 50], max_texts=64, max_tokens=200)
    assert batches == [[1], [0, 2]]


def test_token_batches_refuse_empty_bounds() -> None:
    with pytest.raises(ValueError):
        list(token_batches([1, 2], max_texts=0, max_tokens=10))
    with pytest.raises(ValueError):
        list(token_batches([1, 2], max_texts=1, max_tokens=0))


@pytest.mark.integration  # the real embedding model
def test_bounded_batches_give_the_vectors_of_one_batch_in_the_callers_order(dense_embedder) -> None:  # type: ignore[no-untyped-def]
    from supportbot.sample import HELPCENTER

    words = " ".join(p.read_text() for p in sorted(HELPCENTER.rglob("*.md"))).split()
    rng = random.Random(7)
    # Lengths from a few words to past the model's 256 tokens (truncated), in no order.
    texts = []
    for _ in range(60):
        start, length = rng.randrange(len(words)), rng.choice([3, 20, 80, 150, 400])
        texts.append(" ".join(words[start : start + length]) or "refund")
    lengths = [
        min(dense_embedder.count_tokens(t) + 2, dense_embedder.max_seq_length) for t in texts
    ]
    assert (
        len(list(token_batches(lengths, dense_embedder.batch_size, dense_embedder.batch_tokens)))
        > 1
    )

    bounded = dense_embedder.embed_documents(texts)
    one_batch = dense_embedder.model.encode(
        texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True
    )
    assert bounded.shape == (len(texts), dense_embedder.dimension) and bounded.dtype == np.float32
    np.testing.assert_allclose(bounded, one_batch, atol=1e-5)


# In a fresh process: frees an 8 MiB block (glibc's dynamic threshold then rises to 8 MiB), then
# asks for 1 MiB and says whether it got a mapping of its own (mallinfo2's hblks) or heap.
THRESHOLD_PROBE = """
import ctypes
from services.retriever.memory import set_mmap_threshold
from services.retriever.settings import RetrieverSettings

applied = set_mmap_threshold(RetrieverSettings().malloc_mmap_threshold_bytes)

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(8 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
mapped = libc.mallinfo2().hblks - before
libc.free(block)
print(applied, mapped)
"""


def probe(threshold: str | None) -> tuple[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "SUPPORTBOT_RETRIEVER_MALLOC_MMAP_THRESHOLD_BYTES"
    }
    env["PYTHONPATH"] = str(ROOT)
    if threshold is not None:
        env["SUPPORTBOT_RETRIEVER_MALLOC_MMAP_THRESHOLD_BYTES"] = threshold
    done = subprocess.run(
        [sys.executable, "-c", THRESHOLD_PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    applied, mapped = done.stdout.split()
    return applied, mapped


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_a_threshold_set_is_fixed_and_the_default_leaves_glibcs_own() -> None:
    # Set: large blocks keep their own mappings after a larger one was freed.
    assert probe(str(128 * 1024)) == ("True", "1")
    # The default, 0: glibc's dynamic threshold, raised by the freed 8 MiB, puts the 1 MiB block
    # in the heap (which the trim after each ingest group hands back).
    assert probe(None) == ("False", "0")
    assert probe("0") == ("False", "0")


# In a fresh process: 125 MiB of heap blocks written, a small block after them holding the heap's
# top, the large ones freed: glibc keeps their pages until malloc_trim hands them back.
TRIM_PROBE = """
import ctypes
from services.retriever.memory import release_free_memory

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def rss_mb():
    line = next(l for l in open("/proc/self/status") if l.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024

blocks = [libc.malloc(64 << 10) for _ in range(2000)]
for block in blocks:
    ctypes.memset(block, 1, 64 << 10)
top = libc.malloc(64)
for block in blocks:
    libc.free(block)
kept = rss_mb()
released = release_free_memory()
print(released, kept - rss_mb())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_releasing_free_memory_hands_a_freed_heap_back() -> None:
    done = subprocess.run([sys.executable, "-c", TRIM_PROBE], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    released, dropped_mb = done.stdout.split()
    assert released == "True" and int(dropped_mb) >= 100, done.stdout
