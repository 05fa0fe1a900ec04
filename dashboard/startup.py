"""The training engine's start on a fresh server, off Home's script thread.

Home needs neither torch nor the run registry; its sidebar and every other page do, and on a fresh 2-core server
importing them (torch, ganae and runtime.PRELOAD) takes 5-7 s. The first visit to Home therefore starts a thread
that imports them and returns at once: Home is drawn and finished in about 2 s, its sidebar says the engine is
starting and fills in by itself when it is ready (app.py). Every other page, and anything on Home that needs torch,
first waits for that thread (`wait`), so no two threads ever import these packages at the same moment
(runtime.PRELOAD says why that matters). A failed import is not hidden: the next run imports again on its own
thread and shows the error where it happens.
"""
from __future__ import annotations

import sys
import threading

_lock = threading.Lock()
_thread: threading.Thread | None = None
_visitor = False


def _load() -> None:
    try:
        import torch
        torch.set_num_threads(1)           # process-wide: the runner threads share two cores with the server
        from dashboard import runtime
        runtime.preload()
    except Exception:    # the script thread imports again after wait() and shows the error there
        pass


def _loaded() -> bool:
    return "dashboard.runtime" in sys.modules


def ready() -> bool:
    """The engine can be used without waiting: loaded, or its loading thread has ended."""
    with _lock:
        if _thread is not None:
            return not _thread.is_alive()
    return _loaded()


def begin() -> None:
    """Start loading the engine in the background (once per server process)."""
    global _thread
    with _lock:
        if _thread is None and not _loaded():
            _thread = threading.Thread(target=_load, name="ganae-startup", daemon=True)
            _thread.start()


def visited() -> None:
    """A page's script has started (app.py calls this first): a visitor is here, whose pages start the load when
    they have drawn what they can without it (begin_unvisited leaves it to them)."""
    global _visitor
    _visitor = True


def begin_unvisited() -> None:
    """begin(), unless a visitor came first (dashboard/server.py calls this a moment after the server starts: with
    nobody there, the engine loads at once; with a visitor, their page starts it without the imports competing for
    the GIL with its first drawing)."""
    if not _visitor:
        begin()


def wait() -> None:
    """Return when no background load is running (at once on a warm server)."""
    t = _thread
    if t is not None:
        t.join()
