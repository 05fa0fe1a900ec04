"""dashboard/startup.py: on a fresh server Home starts the engine's imports in the background, once; everything
else that needs them waits for that thread (never imports beside it)."""
from __future__ import annotations

import threading
import time

from dashboard import startup


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
