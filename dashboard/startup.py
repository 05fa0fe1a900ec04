"""The training engine's start on a fresh server, off the pages' script threads.

Home needs neither torch nor the run registry; its sidebar and every other page do, and on a fresh 2-core server
importing them (torch, ganae and runtime.PRELOAD) takes 5-7 s. One thread imports them, started with the server
(dashboard/server.py) or by the first visit: Home is drawn meanwhile, its sidebar says the engine is starting and
fills in by itself when it is ready (app.py). Every other page, and anything on Home that needs torch, first waits
for that thread (`wait`), so pages never import these packages beside it (runtime.PRELOAD says why that matters). A
failed import is not hidden: the next run imports again on its own thread and shows the error where it happens.

The thread works in two parts. First what a page needs to be drawn: torch, ganae, dashboard.runtime and the
packages of runtime.PRELOAD that pages import (pandas for the charts, ...); then Streamlit compiles every page
script into its script cache (`_compile_pages`), and `ready()` turns true: pages are drawn from here on (≈ 3 s after
the start here instead of ≈ 5 s). Then, while the first page is drawn and read, the packages only training needs
(runtime.PRELOAD_LATE: torch._dynamo, which torch's optimisers import on their first step, ~2 s here, and
torchvision) load on the same thread. Page scripts are not parsed then (all compiled before), syntax trees are made
one thread at a time (`serial_ast`), and a first optimiser step meanwhile waits for that import (Python's module
lock) instead of making its own. Where the script cache cannot be reached, the thread loads everything before
`ready()`, as one part.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import logging
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

_lock = threading.Lock()
_thread: threading.Thread | None = None
_ready = threading.Event()         # the first part is done (or failed): pages can be drawn
_visitor = False
PAGES = Path(__file__).resolve().parent       # dashboard/: app.py and views/*.py


def _load() -> None:
    try:
        import torch
        torch.set_num_threads(1)           # process-wide: the runner threads share two cores with the server
        from dashboard import runtime
        runtime.preload(runtime.PRELOAD_EARLY)
        split = _compile_pages()
    except Exception:    # the script thread imports again after wait() and shows the error there
        _ready.set()
        return
    if split:
        _ready.set()                       # the pages can be drawn; what only training needs follows
    try:
        with serial_ast():
            runtime.preload(runtime.PRELOAD_LATE)
        if split and not runtime.runs_exist():
            gc.freeze()                    # what the late imports made, as runtime.registry does (no run exists yet)
    finally:
        _ready.set()


_AST_LOCK = threading.RLock()


@contextlib.contextmanager
def serial_ast():
    """While inside: Python code that makes or reads syntax trees (`ast.parse`, which `ast.literal_eval` and
    `inspect` use, and `compile`) does so one thread at a time. Python 3.11 keeps the recursion counter of its AST
    conversions per interpreter (CPython gh-106905): torch._dynamo's import makes ~120 trees, and a page parsing
    one at the same moment (a .npy header, a C function's signature) could fail with "SystemError: AST constructor
    recursion depth mismatch". Page scripts themselves are compiled before (`_compile_pages`)."""
    parse, comp = ast.parse, builtins.compile

    def locked_parse(*a, **k):
        with _AST_LOCK:
            return parse(*a, **k)

    def locked_compile(*a, **k):
        with _AST_LOCK:
            return comp(*a, **k)

    ast.parse, builtins.compile = locked_parse, locked_compile
    try:
        yield
    finally:
        ast.parse, builtins.compile = parse, comp


def _compile_pages() -> bool:
    """Have Streamlit compile app.py and every page into the script cache all pages are run from (its "magic"
    parses each script once, on the first run); True when done, False when that cache cannot be reached."""
    try:
        from streamlit.runtime import Runtime
        if not Runtime.exists():
            return False
        cache = getattr(Runtime.instance(), "_script_cache", None)
        if cache is None or not hasattr(cache, "get_bytecode"):
            return False
        for path in [PAGES / "app.py", *sorted((PAGES / "views").glob("*.py"))]:
            cache.get_bytecode(str(path))
        return True
    except Exception as e:            # compiling is only a head start: the script runner compiles as before
        log.debug("page scripts not compiled ahead: %s", e)
        return False


def _loaded() -> bool:
    return "dashboard.runtime" in sys.modules


def ready() -> bool:
    """The pages can be drawn without waiting: the engine is loaded, or the first part of its load has ended."""
    with _lock:
        if _thread is not None:
            return _ready.is_set() or not _thread.is_alive()
    return _loaded()


def loading_late() -> bool:
    """The engine's thread is still running: once pages are drawn, it is loading what only training needs
    (runtime.registry leaves that to it)."""
    with _lock:
        return _thread is not None and _thread.is_alive()


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
    """Return when the pages can be drawn: at once on a warm server, else when the first part of the load ends."""
    t = _thread
    if t is not None:
        while not _ready.wait(0.1):
            if not t.is_alive():
                return


def wait_all() -> None:
    """Return when nothing is loading any more (tests, tools)."""
    t = _thread
    if t is not None:
        t.join()
