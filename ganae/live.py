"""LiveRunner: the one live engine under every page that trains -- a thread, a command queue and a state machine.

    class Runner(LiveRunner):                    # ganae/runner.py hosts one Trainer
        def _run_chunk(self, fresh): ...         # train a chunk, publish
        def _do_play(self): ...                  # one method per command name: _send("play") runs it on the thread

Both live hosts -- `Runner` (one Trainer: the Playground, the image pages, the class cohorts) and `ArenaRunner`
(a Comparison: variants × seeds as ensembles) -- are small subclasses of this one class, so there is one copy of:
- the thread: named in the operating system (`top -H` shows who trains), optionally nicer than the server, with
  its own torch intra-op thread count; it never imports streamlit;
- the command queue: every control is a command the thread executes between chunks (`_send` -> `_do_<name>`), so
  the hosted steppable is never touched by two threads; a caller gets the command's result or its exception, and
  a stopped thread answers every waiting command with an error instead of leaving it blocked;
- the states: idle / queued / running / paused / finished / error (and what the host adds: diverged, stopped), a
  message (a sentence) with each, published under one lock with a condition readers wait on;
- admission: a training slot from an `Admission` (or none needed), waiting "queued" in FIFO order until one frees;
- the gate: between chunks the thread gives way to a page answering a click (runner.Gate) -- except for the first
  chunk after play, which that page waits for (`fresh`);
- ownership: a host made with `owner=<secret>` obeys only commands bringing that secret; anyone may watch.

The loop: drain commands; `_tick()` (a host's housekeeping, e.g. the Arena pausing when nobody looks; False ends
the thread); then by state -- running: give way, `_run_chunk(fresh)`; queued: take the slot when granted
(`_on_slot`); otherwise wait for a command.
"""
from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from typing import Any, Callable

import torch

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0


class NotOwner(RuntimeError):
    """A command for a run (or an arena) from someone other than the browser that started it."""

    def __init__(self, what: str, action: str):
        super().__init__(f"Only the browser that started this {what} can {action} it: you are watching. Make your "
                         f"own copy to train it yourself.")


def owned_by(owner: str | None, token: str | None) -> bool:
    """True when `token` may command something owned by `owner` (None: owned by nobody, anyone may)."""
    return owner is None or (token is not None and secrets.compare_digest(str(owner), str(token)))


class _Command:
    __slots__ = ("name", "args", "done", "result", "error")

    def __init__(self, name: str, *args: Any):
        self.name, self.args = name, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Owned:
    """The owner check of anything a browser commands (a LiveRunner, a Ray RemoteRunner): `_owner` is the secret
    a command must bring; WHAT names it in NotOwner's sentence."""
    WHAT = "run"
    _owner: str | None = None

    def owned_by(self, token: str | None) -> bool:
        """True when `token` may command this (its owner's secret, or any token when it has no owner)."""
        return owned_by(self._owner, token)

    def _check(self, owner: str | None, action: str) -> None:
        if not self.owned_by(owner):
            raise NotOwner(self.WHAT, action)


class LiveRunner(Owned):
    """One daemon thread hosting something steppable; controls are commands that thread executes between chunks.

    A subclass sets WHAT (its name in sentences: "run", "comparison"), implements `_run_chunk(fresh)` and one
    `_do_<command>` method per command, and calls `_start()` once it is built."""

    WHAT = "run"

    def __init__(self, thread_name: str, *, admission: Any = None, threads: int = 1, nice: int = 0,
                 gate: Any = None, owner: str | None = None):
        self._owner = owner                # the secret a command must bring (None: anyone may command)
        self._admission = admission        # an Admission (training slots), or None: always admitted
        self._threads = int(threads)       # torch intra-op threads of the training thread (0: leave as is)
        self._nice = max(0, int(nice))     # the thread's niceness (Linux): > 0 lets clicks and pages go first
        self._gate = gate                  # interactive work this thread gives way to between chunks
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)
        self._wake = threading.Event()     # set by commands, and by Admission when a slot frees up
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._stopping = False
        self._state = "idle"
        self._message = ""
        self._version = 0
        self._fresh = True                 # the next chunk is the first after play: not held back by the gate
        self._thread = threading.Thread(target=self._loop, name=thread_name, daemon=True)

    def _start(self) -> None:
        self._thread.start()

    # ---- public (any thread) -----------------------------------------------------------------------
    @property
    def thread(self) -> threading.Thread:
        return self._thread

    @property
    def state(self) -> str:
        return self._state

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


    def stop(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop the thread and wait for it; True when it has exited."""
        self._stopping = True
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._release()
        return not self._thread.is_alive()

    # ---- hooks a host overrides --------------------------------------------------------------------
    def _label(self) -> str:
        """Who it is in an error message: "run 1a2b3c4d"."""
        return self.WHAT

    def _run_chunk(self, fresh: bool) -> None:
        """Train one chunk while running and publish (at once when `fresh`: the first chunk after play)."""
        raise NotImplementedError

    def _begin(self) -> None:
        """On the thread, before the loop."""

    def _tick(self) -> bool:
        """On the thread, every turn of the loop after the commands; False ends the thread."""
        return True

    def _on_slot(self) -> None:
        """A queued host got its training slot and is running now."""

    def _crash_message(self, e: BaseException) -> str:
        return f"Training stopped by an error ({type(e).__name__}: {e})."

    def _end(self) -> None:
        """On the thread, last: wake the readers (a host may publish its final state here)."""
        with self._published:
            self._published.notify_all()

    # ---- commands ------------------------------------------------------------------------------------

    def _send(self, name: str, *args: Any, wait: bool = True, timeout: float = 30.0) -> Any:
        """Put command `name` on the queue; with `wait`, block for its result (its exception is raised here)."""
        gone = f"{self._label()} has been stopped; start a new one"
        if self._stopping or not self._thread.is_alive():
            raise RuntimeError(gone)
        cmd = _Command(name, *args)
        self._commands.put(cmd)
        self._wake.set()
        if not wait:
            return None
        deadline = time.monotonic() + timeout
        while not cmd.done.wait(0.1):
            if not self._thread.is_alive():      # stopped after the check above: nobody will answer
                if cmd.done.is_set():
                    break
                raise RuntimeError(gone)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self._label()} did not answer '{name}' within {timeout:g} s")
        if cmd.error is not None:
            raise cmd.error
        return cmd.result

    def _drain(self) -> None:
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                cmd.result = getattr(self, f"_do_{cmd.name}")(*cmd.args)
            except BaseException as e:  # handed to the caller of the command
                cmd.error = e
            finally:
                cmd.done.set()

    def _set_state(self, state: str, message: str | None = None) -> None:
        with self._lock:
            self._state = state
            if message is not None:
                self._message = message

    def _wait_published(self, holds: Callable[[], bool], timeout: float) -> bool:
        """Block until `holds()` is true after a publication, the thread ends, or the timeout passes."""
        deadline = time.monotonic() + timeout
        while True:
            if holds():
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not self._thread.is_alive():
                return holds()
            with self._published:
                self._published.wait(min(left, 0.05))

    # ---- admission -----------------------------------------------------------------------------------
    def _request(self) -> bool:
        """True when this host holds (or now gets) a training slot; otherwise it waits in the queue."""
        return True if self._admission is None else bool(self._admission.request(self))

    def _holds(self) -> bool:
        return True if self._admission is None else bool(self._admission.holds(self))

    def _release(self) -> None:
        if self._admission is not None:
            self._admission.release(self)

    def _play_state(self, message: str = "") -> None:
        """running (a slot was free) or queued (waiting for one), and the next chunk is fresh."""
        if self._request():
            self._set_state("running", message)
        else:
            self._set_state("queued", "Waiting for a free training slot: other runs are using them all.")
        self._fresh = True

    # ---- the loop ------------------------------------------------------------------------------------
    def _loop(self) -> None:
        name_os_thread(self._thread.name)
        if self._nice:
            lower_thread_priority(self._nice)
        if self._threads > 0 and torch.get_num_threads() != self._threads:   # on 2 cores, 1 trains fastest
            torch.set_num_threads(self._threads)
        try:
            self._begin()
            while not self._stopping:
                self._drain()
                if self._stopping or not self._tick():
                    break
                state = self._state
                if state == "running":
                    self._run_chunk(self._give_way())
                elif state == "queued":
                    if self._holds():
                        self._set_state("running", "")
                        self._fresh = True
                        self._on_slot()
                    else:
                        self._idle_wait(0.5)
                else:
                    self._idle_wait(1.0)
        except BaseException as e:  # never die silently: keep the reason for the page
            log.exception("%s crashed", self._label())
            self._set_state("error", self._crash_message(e))
        finally:
            self._release()
            # answer whatever is still waiting so no caller blocks on a dead thread
            while True:
                try:
                    cmd = self._commands.get_nowait()
                except queue.Empty:
                    break
                cmd.error = RuntimeError(f"{self._label()} has been stopped")
                cmd.done.set()
            try:
                self._end()
            except Exception:   # publishing the final state is best effort
                log.exception("%s: final publish failed", self._label())

    def _give_way(self) -> bool:
        """Hold back while a page answers a click (see runner.Gate), at most the gate's max_wait_s and only until a
        command arrives. Not before the first chunk after play (the page that pressed it waits for that frame).
        Returns whether this chunk is that first one."""
        fresh, self._fresh = self._fresh, False
        if self._gate is not None and not fresh:
            self._gate.give_way(lambda: self._stopping or not self._commands.empty())
        return fresh

    def _idle_wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` in the operating system too (Linux: the first 15 bytes), so `top -H`,
    `ps -L` and /proc/<pid>/task/*/comm show which threads train (Python 3.11 names only its own objects).
    Does nothing where that is not available."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)     # PR_SET_NAME
    except Exception:
        pass


def lower_thread_priority(nice: int) -> bool:
    """Make the calling thread `nice` steps nicer (Linux: a thread has its own niceness; raising it needs no
    privileges). A busy server then gives a click or a page's redraw the CPU before a training step, and training
    still gets every cycle nobody else wants. True when it took effect; nothing happens elsewhere."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(nice)))
        return True
    except (OSError, AttributeError):
        return False


__all__ = ["LiveRunner", "NotOwner", "owned_by", "name_os_thread", "lower_thread_priority", "JOIN_TIMEOUT_S"]
