"""Where tensors live and how randomness is seeded.

`pick("auto")` prefers cuda, then Apple's mps, then the cpu; an explicit name is honoured or refused with a
sentence. Runs in one process train in threads side by side, so each run owns a `torch.Generator` for its
noise and batches (`generator(...)`) instead of sharing torch's global one.
"""
from __future__ import annotations

import contextlib
import ctypes
import random
import sys
import threading

import numpy as np
import torch

from .config import ConfigError

_INIT_LOCK = threading.Lock()
# glibc's malloc (Linux) and memory the batched models free at every step; see keep_freed_memory
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3          # mallopt's parameter numbers (malloc.h)
KEEP_FREED_BYTES = 64 << 20        # free memory a malloc arena keeps before it gives some back to the system
MMAP_ABOVE_BYTES = 16 << 20        # blocks at least this large get pages of their own (mmap) and go back when freed
_kept: bool | None = None


def pick(name: str = "auto") -> torch.device:
    """Resolve 'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' to a device that exists here."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("train.device", f"'{name}' was asked for but no CUDA GPU is visible; use auto or cpu")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError("train.device", f"'{name}' does not exist: this machine has "
                                              f"{torch.cuda.device_count()} CUDA device(s)")
        return dev
    if name == "mps":
        if not _mps_available():
            raise ConfigError("train.device", "'mps' was asked for but Apple's Metal backend is not available")
        return torch.device("mps")
    raise ConfigError("train.device", f"'{name}' is not a device; allowed: auto, cpu, cuda, cuda:N, mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe(device: torch.device | str) -> str:
    """A short human sentence: which device runs and what it is."""
    dev = torch.device(device)
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch's global generators (CLI and notebooks; runs use their own generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(device: torch.device, seed: int) -> torch.Generator:
    """A private generator for one run on `device`."""
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


@contextlib.contextmanager
def seeded_init(seed: int):
    """Build modules from a seed without disturbing or racing other threads' runs.

    Weight initialisers draw from torch's global CPU generator: hold a lock, fork its state, seed it, and
    restore it afterwards.
    """
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def set_threads(n: int) -> None:
    """Set torch's intra-op thread count (0 leaves it unchanged)."""
    if n and n > 0 and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def keep_freed_memory() -> bool:
    """Let this process keep the memory its tensors free and reuse it, instead of handing it back to the system
    and faulting fresh pages in at the next step. True when the setting took (glibc on Linux), False elsewhere.

    Why: an ensemble's activations are K times a solo run's -- (24, 128, 64) floats is 786 KB per layer output. glibc
    serves blocks that large by mmap, or from the top of its heap and trims the heap back to the system whenever more
    than ~1.5 MB lie free there (both thresholds adapt to the largest block freed so far). At every step the
    batched model frees and re-allocates tens of such blocks: measured, a 24-member cohort of the Playground's
    default took ~1,060-1,300 page faults per step, 4 of its 19 ms in the kernel. With the heap keeping up to
    KEEP_FREED_BYTES free and blocks under MMAP_ABOVE_BYTES coming from it, the same step's tensors fault no page
    (the steady state reuses the same memory; the 0-40 faults a step left are Python's own object arenas), and the
    process's size stays what its largest step needs.
    (benchmarks/ensemble.py prints the page faults per step, `--plain-malloc` without this; tests/test_ensemble.py
    checks it.)
    Setting it is process-wide and once is enough; the ensembles call it when they are made."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL("libc.so.6")
                _kept = bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
                             and libc.mallopt(M_MMAP_THRESHOLD, MMAP_ABOVE_BYTES))
            except (OSError, AttributeError):    # not glibc (musl, ...): nothing to set
                _kept = False
    return _kept
