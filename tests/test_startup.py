"""dashboard/startup.py: on a fresh server Home starts the engine's imports in the background, once; everything
else that needs them waits for that thread (never imports beside it)."""
from __future__ import annotations

import ast
import builtins
import threading
import time
from pathlib import Path

import pytest

from dashboard import startup


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    """A server process that has not started its engine yet."""
    monkeypatch.setattr(startup, "_ready", threading.Event())
    monkeypatch.setattr(startup, "_thread", None)


def test_the_engine_loads_once_in_the_background_and_others_wait_for_it(monkeypatch):
    gate, calls = threading.Event(), []

    def slow_load():
        calls.append(threading.current_thread().name)
        gate.wait(10)

    monkeypatch.setattr(startup, "_load", slow_load)
    monkeypatch.setattr(startup, "_loaded", lambda: False)        # a fresh server: nothing imported yet
    monkeypatch.setattr(startup, "_thread", None)
    assert not startup.ready()
    startup.begin()
    startup.begin()                                               # a second visit (or rerun) starts nothing new
    time.sleep(0.05)
    assert calls == ["ganae-startup"] and not startup.ready()
    waited = []
    waiter = threading.Thread(target=lambda: (startup.wait(), waited.append(time.monotonic())))
    waiter.start()
    time.sleep(0.2)
    assert waited == []                                           # another page blocks while the load runs
    released = time.monotonic()
    gate.set()
    waiter.join(5)
    assert waited and waited[0] >= released and startup.ready()
    startup.begin()
    assert calls == ["ganae-startup"]                             # once per server process


def test_a_warm_process_is_ready_without_a_thread(monkeypatch):
    monkeypatch.setattr(startup, "_thread", None)
    monkeypatch.setattr(startup, "_loaded", lambda: True)
    assert startup.ready()
    startup.begin()
    assert startup._thread is None
    startup.wait()                                                # returns at once


def test_the_servers_own_start_waits_for_nobody_but_leaves_a_visitor_their_first_page(monkeypatch):
    """dashboard/server.py calls begin_unvisited a moment after the server starts: with nobody there the engine
    loads then; once a page's script has started, that visitor's page starts it (after drawing what it can)."""
    calls = []
    monkeypatch.setattr(startup, "_load", lambda: calls.append("load"))
    monkeypatch.setattr(startup, "_loaded", lambda: False)
    monkeypatch.setattr(startup, "_thread", None)
    monkeypatch.setattr(startup, "_visitor", True)
    startup.begin_unvisited()
    assert startup._thread is None and calls == []
    monkeypatch.setattr(startup, "_visitor", False)
    startup.begin_unvisited()
    startup.wait()
    assert calls == ["load"]


def _stub_engine(monkeypatch, split: bool):
    """startup._load with its imports replaced: the first part returns at once, the late part (PRELOAD_LATE) waits
    for the returned gate. Returns (gate, calls: what was loaded, on which thread, and whether ready() said so)."""
    import torch  # noqa: F401  (the real one: already loaded in the test process)

    from dashboard import runtime
    gate, calls = threading.Event(), []

    def preload(names=runtime.PRELOAD):
        calls.append((names, threading.current_thread().name, startup.ready()))
        if names == runtime.PRELOAD_LATE:
            assert ast.parse is not ORIGINAL_PARSE        # the late imports make syntax trees one thread at a time
            gate.wait(10)

    monkeypatch.setattr(runtime, "preload", preload)
    monkeypatch.setattr(runtime, "runs_exist", lambda: True)      # (no gc.freeze in a test process)
    monkeypatch.setattr(startup, "_compile_pages", lambda: split)
    monkeypatch.setattr(startup, "_loaded", lambda: False)
    return gate, calls


ORIGINAL_PARSE = ast.parse


def test_pages_wait_for_the_first_part_only_and_the_late_imports_follow_on_the_same_thread(monkeypatch):
    from dashboard import runtime
    gate, calls = _stub_engine(monkeypatch, split=True)
    startup.begin()
    startup.wait()                                                # returns while the late part still loads
    assert startup.ready() and startup.loading_late()
    assert [c[:2] for c in calls] == [(runtime.PRELOAD_EARLY, "ganae-startup"), (runtime.PRELOAD_LATE, "ganae-startup")]
    assert calls[0][2] is False and calls[1][2] is True           # ready only after the first part
    assert "torch._dynamo" in runtime.PRELOAD_LATE and "torch._dynamo" not in runtime.PRELOAD_EARLY
    assert set(runtime.PRELOAD_EARLY) | set(runtime.PRELOAD_LATE) == set(runtime.PRELOAD)
    gate.set()
    startup.wait_all()
    assert not startup.loading_late() and ast.parse is ORIGINAL_PARSE and builtins.compile.__name__ == "compile"


def test_without_the_script_cache_the_engine_loads_whole_before_pages_are_drawn(monkeypatch):
    gate, calls = _stub_engine(monkeypatch, split=False)
    startup.begin()
    time.sleep(0.3)
    assert len(calls) == 2 and not startup.ready()               # the late part runs, and pages still wait
    gate.set()
    startup.wait()
    assert startup.ready()


def test_the_page_scripts_are_compiled_into_streamlits_script_cache(monkeypatch):
    """What the pages are run from (Streamlit's ScriptCache, keyed by path): after _compile_pages every page and the
    router are in it, so no page script is parsed while the late imports run."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache

    class FakeRuntime:
        _script_cache = ScriptCache()
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: True))
    monkeypatch.setattr(Runtime, "instance", classmethod(lambda cls: FakeRuntime))
    assert startup._compile_pages()
    views = Path(startup.__file__).resolve().parent / "views"
    pages = {str(p) for p in views.glob("*.py")} | {str(views.parent / "app.py")}
    assert len(pages) == 10 and set(FakeRuntime._script_cache._cache) == pages
    monkeypatch.setattr(Runtime, "exists", classmethod(lambda cls: False))
    assert not startup._compile_pages()                          # no server here: the engine loads whole


def test_while_the_late_imports_run_syntax_trees_are_made_one_thread_at_a_time():
    held, done = threading.Event(), []

    def other():                       # another thread in the middle of ast.parse for 0.3 s
        with startup._AST_LOCK:
            held.set()
            time.sleep(0.3)

    with startup.serial_ast():
        t = threading.Thread(target=other)
        t.start()
        held.wait(5)
        t0 = time.monotonic()
        assert ast.literal_eval("[1, 2]") == [1, 2]               # (ast.parse inside) waited for the other thread
        done.append(time.monotonic() - t0)
        t.join()
    assert done[0] >= 0.25 and ast.parse is ORIGINAL_PARSE


@pytest.mark.parametrize("late", [True, False])
def test_the_registry_leaves_the_late_imports_to_the_engines_thread_while_it_loads_them(monkeypatch, late):
    import streamlit as st

    from dashboard import runtime
    loaded = []
    monkeypatch.setattr(runtime, "preload", lambda names=runtime.PRELOAD: loaded.append(names))
    monkeypatch.setattr(startup, "loading_late", lambda: late)
    st.cache_resource.clear()
    try:
        runtime.registry()
        assert loaded == [runtime.PRELOAD_EARLY if late else runtime.PRELOAD]
    finally:
        st.cache_resource.clear()


def test_runs_exist_asks_the_registry_without_making_or_keeping_it():
    """What the engine's thread asks before its second gc.freeze (a run made meanwhile must not be frozen)."""
    import gc

    import streamlit as st

    from dashboard import runtime
    from ganae.config import RunConfig
    st.cache_resource.clear()
    gc.collect()
    assert not runtime.runs_exist()                        # no registry: none is made by asking
    try:
        reg = runtime.registry()
        assert not runtime.runs_exist()
        reg.create(RunConfig().with_updates(**{"data.n": 200, "train.device": "cpu"}))
        assert runtime.runs_exist()
    finally:
        st.cache_resource.clear()
    del reg
    gc.collect()
    assert not runtime.runs_exist()                        # a released registry is not kept alive for the question
