"""Runner: a background thread around a Trainer, steered from outside (a page, a notebook, a test).

    runner = Runner(RunConfig())            # builds the Trainer now: config and data errors raise here
    runner.play()                           # the thread trains in small chunks
    runner.snapshot()                       # the latest immutable Snapshot (published at most every ~0.2 s)
    runner.status()                        # state, message, step, queue position, speed
    runner.pause(); runner.step(5, "d")     # manual steps: D only, G only or both
    runner.stop()                           # the thread exits; join with a timeout

One thread owns the Trainer: every control is a command put on a queue and executed by that thread between
chunks, so a trainer is never touched by two threads at once. The thread never imports streamlit. That machinery
(thread, command queue, states, admission, gate, owner check) is ganae/live.py's LiveRunner, shared with the
Arena; a Runner is the host of one Trainer on it.

States: idle (built, not started) / queued (waiting for a training slot) / running / paused / diverged
(a loss became NaN or inf; the last good state can be restored) / finished (train.steps reached) / error
(an exception; its message is kept as a sentence).

A process-wide `Registry` maps short run ids to runners, frees runs nobody has looked at for a grace period
(a reaper thread), and admits at most `limit` concurrently *training* runs; the others wait, first come
first served, in state "queued" with their position.

Ownership: a run made with `owner=<secret>` obeys only commands that bring the same secret (the browser that
started it); anyone else may watch it (snapshot, status, call for reading) and fork it into a run of their own:

    runner = Runner(cfg, owner="s3cret")
    runner.pause(owner="other")             # NotOwner: a sentence saying who may, and what to do instead
    mine = registry.fork(runner.run_id, owner="other")    # weights, optimiser, history, config: a new run
"""
from __future__ import annotations

import collections
import contextlib
import copy
import logging
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from . import cohort as cohort_mod
from .cohort import MAX_MEMBERS, TURN_MESSAGE, Cohorts, cohort_threads, eligible
from .config import RunConfig
from .live import JOIN_TIMEOUT_S, LiveRunner, NotOwner, lower_thread_priority, name_os_thread, owned_by
from .trainer import DivergenceError, Snapshot, Trainer

log = logging.getLogger(__name__)

STATES = ("idle", "queued", "running", "paused", "diverged", "finished", "error")
PUBLISH_EVERY_S = 0.2        # newest snapshot at most this often while training (snapshots cost time)
FRAME_S = 0.2                # with a fixed speed, one frame (= `speed` steps) at most this often (set_speed)
EVAL_EVERY_STEPS = 200       # trainer.evaluate() at least every this many steps ...
EVAL_EVERY_S = 1.0           # ... or after this much wall time, whichever comes first
GOOD_EVERY_STEPS = 200       # copy of the last good (finite) state every this many healthy steps
OVERHEAD_SHARE = 0.05        # snapshots and evaluations may use at most ~5% of the wall time
MAX_MANUAL_STEPS = 5_000     # a single step(n) request
AUTO_CHUNK_S = 0.02          # speed 0 ("max"): chunks sized to take about this long (commands wait at most one chunk)
THREAD_PREFIX = "ganae-run-"     # runner threads are named THREAD_PREFIX + run id (also in /proc: see name_os_thread)


@dataclass(frozen=True)
class RunStatus:
    """What a UI shows about a run besides the Snapshot: its state and why."""
    run_id: str
    state: str                  # one of STATES
    message: str                # a sentence for the user ("" when there is nothing to say)
    step: int                   # iterations done
    target_steps: int | None    # train.steps, or None when continuing past it
    queue_position: int         # 1-based position in the admission queue; 0 when not queued
    speed: int                  # steps per redraw; 0 = as fast as possible
    it_per_s: float             # training throughput over the latest stretch of running
    version: int                # increases with every published snapshot
    last_good_step: int | None  # step of the state restore_last_good() returns to
    eval_note: str              # why quality metrics are missing, if they are
    cohort: int = 0             # runs training together in this run's class cohort (ganae/cohort.py), 0: alone

    @property
    def active(self) -> bool:
        """Training or waiting to train: a page should keep refreshing."""
        return self.state in ("running", "queued")


# ---- admission -----------------------------------------------------------------------------------------
class Admission:
    """At most `limit` holders of a training slot; the others wait in FIFO order (limit None = no limit)."""

    def __init__(self, limit: int | None = None):
        self._lock = threading.Lock()
        self._limit = limit
        self._holders: list[Runner] = []
        self._queue: collections.deque[Runner] = collections.deque()

    @property
    def limit(self) -> int | None:
        return self._limit

    def set_limit(self, limit: int | None) -> None:
        with self._lock:
            self._limit = limit
            self._promote()

    def request(self, runner: "Runner") -> bool:
        """True when `runner` holds (or now gets) a slot; otherwise it waits in the queue."""
        with self._lock:
            if runner in self._holders:
                return True
            if runner not in self._queue:
                self._queue.append(runner)
            self._promote()
            return runner in self._holders

    def release(self, runner: "Runner") -> None:
        """Give back the slot or leave the queue; the first queued runner gets the slot."""
        with self._lock:
            if runner in self._holders:
                self._holders.remove(runner)
            if runner in self._queue:
                self._queue.remove(runner)
            self._promote()

    def holds(self, runner: "Runner") -> bool:
        with self._lock:
            return runner in self._holders

    def position(self, runner: "Runner") -> int:
        with self._lock:
            try:
                return self._queue.index(runner) + 1
            except ValueError:
                return 0

    def counts(self) -> tuple[int, int]:
        """(training, queued)."""
        with self._lock:
            return len(self._holders), len(self._queue)

    def _promote(self) -> None:
        while self._queue and (self._limit is None or len(self._holders) < self._limit):
            r = self._queue.popleft()
            self._holders.append(r)
            r._wake.set()


# ---- interactive work first -------------------------------------------------------------------------------
class Gate:
    """Interactive work in progress in this process (a page drawn after a click): training threads hold back at
    their next chunk until it is done -- at most `max_wait_s`, and never when a command for them is waiting -- so a
    click gets Python's one GIL and the CPU first instead of a third of them next to two training threads.

        with gate.hold():      # around a page's full run (dashboard/app.py)
            page.run()
    """

    def __init__(self, max_wait_s: float = 0.5):
        self.max_wait_s = float(max_wait_s)
        self._n = 0
        self._cond = threading.Condition()

    @property
    def busy(self) -> bool:
        return self._n > 0

    @contextlib.contextmanager
    def hold(self):
        with self._cond:
            self._n += 1
        try:
            yield self
        finally:
            with self._cond:
                self._n -= 1
                if self._n == 0:
                    self._cond.notify_all()

    def wait_open(self, timeout: float) -> bool:
        """Wait until nothing holds the gate (True) or `timeout` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._n == 0, timeout)

    def give_way(self, has_work: Callable[[], bool]) -> None:
        """A training thread's pause between chunks: while the gate is held, at most max_wait_s, and only until
        `has_work()` (a command for that thread arrived: the click may be waiting for its answer)."""
        if not self._n:
            return
        deadline = time.monotonic() + self.max_wait_s
        while self._n and not has_work():
            left = deadline - time.monotonic()
            if left <= 0 or self.wait_open(min(left, 0.01)):
                return


# ---- runner --------------------------------------------------------------------------------------------
class Runner(LiveRunner):
    """A Trainer trained by a daemon thread (a LiveRunner); controls are commands executed by that thread.

    `source` is a RunConfig (the trainer is built from it) or a Trainer already built (e.g. restored from a
    checkpoint payload, or a copy of another run): the run then starts paused-at-its-step, as "idle"."""

    def __init__(self, source: RunConfig | Trainer, trainer_factory: Callable[..., Trainer] = Trainer, *,
                 run_id: str | None = None, admission: Admission | None = None, speed: int = 0,
                 threads: int = 1, publish_every_s: float = PUBLISH_EVERY_S,
                 eval_every_steps: int = EVAL_EVERY_STEPS, eval_every_s: float = EVAL_EVERY_S,
                 good_every_steps: int = GOOD_EVERY_STEPS, n_real: int = 1000, nice: int = 0,
                 gate: Gate | None = None, owner: str | None = None, pool: Cohorts | None = None):
        self.run_id = run_id or new_run_id()
        super().__init__(THREAD_PREFIX + self.run_id, admission=admission if admission is not None else Admission(None),
                         threads=threads, nice=nice, gate=gate, owner=owner)
        self._factory = trainer_factory
        self._pool = pool                   # class cohorts (ganae/cohort.py): train with the runs of this structure
        self._overhead_share = 1.0          # this run's part of OVERHEAD_SHARE (1/K as one of K cohort members)
        self._publish_every = float(publish_every_s)
        self._eval_every_steps = int(eval_every_steps)
        self._eval_every_s = float(eval_every_s)
        self._good_every = int(good_every_steps)
        self._n_real = int(n_real)
        self._speed = max(0, int(speed))
        self._frame_s = FRAME_S
        self._it_per_s = 0.0
        self._last_publish = 0.0
        self.created = time.time()
        if isinstance(source, RunConfig):
            self._install(self._build(source))      # raises ConfigError / DataError to the caller
        else:
            self._install(source, restored=True)
        self._start()

    # ---- public controls (any thread) ----------------------------------------------------------------
    @property
    def cfg(self) -> RunConfig:
        return self._cfg

    @property
    def real(self) -> np.ndarray | None:
        """A fixed sample of the training data for drawing: (n, 2) points or (n, C, H, W) images."""
        return self._real

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snap

    @property
    def initial(self) -> Snapshot:
        """The snapshot of the freshly built trainer (step 0 of the run, or of its latest reset): a page that
        first draws after Train still has the starting point to show (e.g. the first grid of a scrubber)."""
        with self._lock:
            return self._initial

    def status(self) -> RunStatus:
        """The run now: `step` counts the trainer's iterations, which run ahead of the latest snapshot."""
        return self._status()[0]

    def frame(self) -> tuple[RunStatus, Snapshot]:
        """The latest snapshot and the status published with it, read together: what one frame of a page draws,
        its state line (status.step == snapshot.step) and its plots from the same moment."""
        return self._status(of_snapshot=True)

    def _status(self, of_snapshot: bool = False) -> tuple[RunStatus, Snapshot]:
        with self._lock:
            state, message, version = self._state, self._message, self._version
            snap, it = self._snap, self._it_per_s
            step = int(snap.step if of_snapshot else self.trainer.step_count)
            good = self._good_step
            target = self._target
            note = self._eval_note
        pos = self._queue_position() if state == "queued" else 0
        c = self._pool.cohort_of(self) if self._pool is not None and state == "running" else None
        size = len(c.members) if c is not None and self in c.members else 0
        return RunStatus(self.run_id, state, message, step, target, pos, self._speed, it, version, good, note,
                         size), snap

    def play(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "train")
        self._send("play", wait=wait)

    def pause(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "pause")
        self._send("pause", wait=wait)

    def step(self, n: int = 1, part: str = "both", wait: bool = True, timeout: float = 30.0,
             owner: str | None = None) -> None:
        """Pause, then train `n` iterations of `part` ("both", "d" or "g") and publish the result."""
        self._check(owner, "step")
        if part not in ("both", "d", "g"):
            raise ValueError(f"part must be 'both', 'd' or 'g', got {part!r}")
        n = int(n)
        if not 1 <= n <= MAX_MANUAL_STEPS:
            raise ValueError(f"n must be between 1 and {MAX_MANUAL_STEPS}, got {n}")
        self._send("step", n, part, wait=wait, timeout=timeout)

    def reset(self, cfg: RunConfig | None = None, wait: bool = True, owner: str | None = None) -> None:
        """A new Trainer from `cfg` (default: the same config); history cleared, state idle.

        The new trainer is built in the calling thread, so ConfigError / DataError reach the caller and the
        current run is left untouched."""
        self._check(owner, "reset")
        trainer = self._build(cfg if cfg is not None else self._cfg)
        self._send("reset", trainer, wait=wait)

    def restore_last_good(self, wait: bool = True, owner: str | None = None) -> None:
        """Back to the latest copy of a finite state (paused)."""
        self._check(owner, "restore")
        self._send("restore", wait=wait)

    def set_speed(self, steps_per_redraw: int, frame_s: float | None = None, owner: str | None = None) -> None:
        """Train `steps_per_redraw` steps per frame of `frame_s` seconds (default FRAME_S): a slow motion where
        each redraw of a page that refreshes every frame_s shows exactly that many more steps. 0 = as fast as
        possible (snapshots at most every publish_every_s)."""
        self._check(owner, "change the speed of")
        self._speed = max(0, int(steps_per_redraw))
        if frame_s is not None:
            self._frame_s = max(0.01, float(frame_s))
        self._wake.set()

    def call(self, fn: Callable[[Trainer], Any], timeout: float = 30.0) -> Any:
        """Run fn(trainer) on the runner's thread (between chunks) and return its result. For reading (a
        checkpoint, a decoded latent code): anyone watching may, so `fn` must not change the trainer."""
        return self._send("call", fn, wait=True, timeout=timeout)

    def copy_trainer(self, timeout: float = 120.0) -> Trainer:
        """A new Trainer equal to this run's now: weights, optimiser and scheduler state, random state, history,
        step and config (a copy taken between chunks; the copy shares the read-only dataset)."""
        payload, data, device = self.call(lambda t: (copy_payload(t.payload(note=f"copy of run {self.run_id}")),
                                                     t.data, t.device), timeout=timeout)
        return self._from_payload(payload, device, data)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A copy of the model's parameters and buffers, taken between chunks."""
        return self.call(lambda t: {k: v.detach().clone() for k, v in t.model.state_dict().items()})

    def wait_for(self, predicate: Callable[[RunStatus], bool], timeout: float = 5.0) -> bool:
        """Block until predicate(status) holds for a published status (or the timeout passes)."""
        return self._wait_published(lambda: predicate(self.status()), timeout)

    def wait_for_snapshot(self, past_step: int, timeout: float = 0.5) -> bool:
        """Block until the published snapshot shows a step after `past_step` (what a page needs to draw a first
        frame with data after play(): the live step counter moves before the chunk's snapshot is published), or
        the run is not training (queued runs do not wait), or the timeout passes. True when such a snapshot is there."""
        self.wait_for(lambda s: self.snapshot().step > past_step or s.state != "running", timeout)
        return self.snapshot().step > past_step

    # ---- internals: building ------------------------------------------------------------------------
    def _build(self, cfg: RunConfig) -> Trainer:
        if self._threads > 0 and torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        return self._factory(cfg)

    def _from_payload(self, payload: dict[str, Any], device: Any, data: Any) -> Trainer:
        build = getattr(self._factory, "from_payload", None) or Trainer.from_payload
        return build(payload, device=device, data=data)

    def _install(self, trainer: Trainer, restored: bool = False) -> None:
        """Make `trainer` the run's trainer (called before the thread starts, or on the thread). A `restored`
        trainer (from a payload) goes on from its step: its evaluations are in its history already."""
        self.trainer = trainer
        self._cfg = trainer.cfg
        self._target: int | None = int(trainer.cfg.train.steps)
        self._eval_note = ""
        self._evals_ok = True
        self._last_eval_step = -1
        self._last_eval_t = 0.0
        self._eval_cost = 0.0
        self._good: dict[str, Any] | None = None
        self._good_step: int | None = None
        self._real = self._real_sample(trainer)
        self._save_good()
        if restored:
            self._last_eval_step, self._last_eval_t = trainer.step_count, time.perf_counter()
        else:
            self._evaluate(force=True)
        snap = self._take_snapshot()
        with self._lock:
            self._snap = snap if snap is not None else _empty_snapshot(trainer)
            if not restored or not hasattr(self, "_initial"):     # where this run starts from
                self._initial = self._snap
            self._version += 1

    def _real_sample(self, trainer: Trainer) -> np.ndarray | None:
        data = getattr(trainer, "data", None)
        x = getattr(data, "x_train", None)
        if x is None:
            return None
        arr = x[: self._n_real].detach().float().cpu().numpy().copy()
        arr.setflags(write=False)
        return arr

    # ---- internals: commands (LiveRunner._send runs _do_<name> on the thread) ----------------------------
    def _do_play(self) -> None:
        st = self._state
        if st in ("running", "queued"):
            return
        if st in ("diverged", "error"):   # the message already says what to do (restore / reset)
            return
        if st == "finished" or (self._target is not None and self.trainer.step_count >= self._target):
            self._target = None   # train on past the planned length
            msg = f"Continuing past the planned {self._cfg.train.steps:,} steps."
        else:
            msg = ""
        self._play_state(msg)
        self._publish()
        self._mark_running_start()            # after publishing the new state: the first chunk is published at once

    def _do_pause(self) -> None:
        if self._state in ("running", "queued"):
            self._release()
            self._set_state("paused", "")
        self._publish()

    def _do_step(self, n: int, part: str) -> None:
        if self._state in ("diverged", "error"):
            raise RuntimeError(self._message or f"the run is in state '{self._state}'")
        if self._state in ("running", "queued"):
            self._release()
        self._set_state("paused", "")
        self._train(n, part)
        if self._state == "paused":
            self._after_steps(force_publish=True)

    def _do_reset(self, trainer: Trainer) -> None:
        self._release()
        self._install(trainer)
        self._set_state("idle", "")
        with self._lock:
            self._it_per_s = 0.0
        self._publish(snapshot=False)

    def _do_restore(self) -> None:
        if self._good is None:
            raise RuntimeError("there is no good state to restore yet")
        self._release()
        t = self._from_payload(copy_payload(self._good), self.trainer.device, self.trainer.data)
        good, good_step, real = self._good, self._good_step, self._real
        self._install(t, restored=True)
        self._good, self._good_step, self._real = good, good_step, real
        self._set_state("paused", f"Restored the last good state (step {t.step_count:,}). It diverged once "
                                  f"from here: lower the learning rates or add a penalty before training on.")
        self._publish(snapshot=False)

    def _do_call(self, fn: Callable[[Trainer], Any]) -> Any:
        return fn(self.trainer)

    # ---- internals: class cohorts (ganae/cohort.py) ------------------------------------------------------
    def _pooled(self) -> bool:
        """Whether this run trains in a class cohort now (batchable, at the fastest speed)."""
        return self._pool is not None and eligible(self._cfg, self._speed)

    def _request(self) -> bool:
        if self._pooled():
            return self._pool.admit(self)          # a place in a cohort of its structure (a slot per cohort)
        return super()._request()

    def _holds(self) -> bool:
        if self._pool is not None and self._pool.cohort_of(self) is not None:
            return self._pool.holds(self)
        return super()._holds()

    def _release(self) -> None:
        if self._pool is not None:
            self._pool.release(self)
        super()._release()

    def _queue_position(self) -> int:
        if self._pool is not None and self._pool.cohort_of(self) is not None:
            return self._pool.position(self)
        return self._admission.position(self)

    def _bookkeeping_due(self) -> bool:
        """Whether _after_chunk has something to do after this chunk (a cohort then brings the Trainer up to
        date first; most chunks of a member need nothing but its step count)."""
        step, now = self.trainer.step_count, time.perf_counter()
        if self._target is not None and step >= self._target:
            return True
        if now - self._last_publish >= self._publish_interval():
            return True
        if self._good_due():
            return True
        return self._evals_ok and self._eval_due(step, now)

    def _good_due(self) -> bool:
        """A copy of the last good state is due (the one piece of bookkeeping that reads the optimiser state)."""
        step = self.trainer.step_count
        return bool(self._good_every) and (self._good_step is None or step - self._good_step >= self._good_every)

    def _cohort_diverged(self, message: str) -> None:
        """On the cohort's thread: this member's loss became NaN / inf (its Trainer holds that state)."""
        self._release()
        self._publish(state=("diverged", message))

    def _cohort_failed(self, e: BaseException) -> None:
        """On the cohort's thread: the batched step raised; this member stops with the reason."""
        self._release()
        self._publish(state=("error", _sentence(e)))

    # ---- internals: the LiveRunner hooks ---------------------------------------------------------------
    def _label(self) -> str:
        return f"run {self.run_id}"

    def _crash_message(self, e: BaseException) -> str:
        return _sentence(e)

    def _on_slot(self) -> None:
        self._publish(snapshot=False)
        self._mark_running_start()

    def _mark_running_start(self) -> None:
        self._run_t0 = time.perf_counter()
        self._run_step0 = self.trainer.step_count
        self._last_publish = 0.0     # publish the first chunk at once

    def _chunk_size(self) -> int:
        if self._speed > 0:
            n = self._speed
        else:
            rate = self._it_per_s or 100.0
            n = int(min(max(1, rate * AUTO_CHUNK_S), 500))
        if self._target is not None:
            n = min(n, max(1, self._target - self.trainer.step_count))
        return n

    def _run_chunk(self, fresh: bool = False) -> None:
        """One chunk; the first after play (`fresh`) is published at once (_mark_running_start). A run in a class
        cohort sleeps in its cohort instead, which trains it with the others until it must act alone."""
        if self._pooled():
            if self._pool.cohort_of(self) is None and self._pool.can_join(self):
                self._pool.admit(self)               # e.g. back to full speed: into the cohort of its structure,
                self._admission.release(self)        # whose slot trains it now; its own slot is free again
            if self._pool.host(self, fresh):
                return
            if self._pool.waiting_turn(self):       # its cohort gave the slot to another setup for a turn
                self._set_state("queued", TURN_MESSAGE.format(slice=cohort_mod.SLICE_S))
                return
        self._overhead_share = 1.0                  # training alone: the whole overhead budget is its own
        n = self._chunk_size()
        if not self._train(n, "both"):
            return
        self._after_chunk()

    def _note_rate(self) -> None:
        now = time.perf_counter()
        elapsed = now - self._run_t0
        if elapsed > 0.25:
            with self._lock:
                self._it_per_s = (self.trainer.step_count - self._run_step0) / elapsed
            if elapsed > 3.0:  # a sliding window: restart the measurement now and then
                self._run_t0, self._run_step0 = now, self.trainer.step_count

    def _after_chunk(self) -> None:
        """After a chunk of training (alone, or as a cohort member on the cohort's thread): the speed, the end
        of the plan, the frame time of a slow-motion run, publishing."""
        self._note_rate()
        if self._target is not None and self.trainer.step_count >= self._target:
            self._release()
            self._after_steps(force_publish=True, state=(
                "finished", f"Finished the planned {self._target:,} steps. Press Train to go on."))
            return
        if self._speed > 0:
            # a fixed number of steps per frame: wait for the frame time (commands interrupt the wait)
            left = self._frame_s - (time.perf_counter() - self._last_publish)
            if left > 0:
                self._wake.wait(left)
                self._wake.clear()
            self._after_steps(force_publish=True)
        else:
            self._after_steps()

    def _train(self, n: int, part: str) -> bool:
        """trainer.step with divergence and errors turned into states; True when it went well."""
        try:
            self.trainer.step(n, part)
            return True
        except DivergenceError as e:
            self._release()
            self._publish(state=("diverged", str(e)))
        except Exception as e:
            log.exception("run %s failed", self.run_id)
            self._release()
            self._publish(state=("error", _sentence(e)))
        return False

    def _after_steps(self, force_publish: bool = False, state: tuple[str, str] | None = None) -> None:
        if self._good_due():
            self._save_good()
        self._evaluate()
        now = time.perf_counter()
        if force_publish or state is not None or now - self._last_publish >= self._publish_interval():
            self._publish(state=state)

    def _publish_interval(self) -> float:
        return max(self._publish_every, getattr(self, "_snap_cost", 0.0) / (OVERHEAD_SHARE * self._overhead_share))

    def _eval_due(self, step: int, now: float) -> bool:
        """An evaluation is due: new steps, enough of them or enough time, and within the overhead budget."""
        if step == self._last_eval_step:
            return False
        due = step - self._last_eval_step >= self._eval_every_steps or now - self._last_eval_t >= self._eval_every_s
        return due and now - self._last_eval_t >= self._eval_cost / (OVERHEAD_SHARE * self._overhead_share)

    def _evaluate(self, force: bool = False) -> None:
        if not self._evals_ok:
            return
        step, now = self.trainer.step_count, time.perf_counter()
        if not force and not self._eval_due(step, now):
            return
        c0 = time.thread_time()
        try:
            self.trainer.evaluate()
        except ImportError as e:
            self._evals_ok = False
            self._eval_note = f"Quality metrics are not available ({e})."
        except Exception as e:  # a metric failing must not stop training
            log.warning("run %s: evaluation failed: %s", self.run_id, e)
            self._evals_ok = False
            self._eval_note = f"Quality metrics stopped ({type(e).__name__}: {str(e)[:200]})."
        if not force:   # the first evaluation pays one-off imports: not a fair price to plan with
            self._eval_cost = time.thread_time() - c0
        self._last_eval_step, self._last_eval_t = step, time.perf_counter()

    def _save_good(self) -> None:
        t = self.trainer
        try:
            if t.last and not all(math.isfinite(v) for v in t.last.values()):
                return
            if not all(bool(torch.isfinite(p).all()) for p in t.model.parameters()):
                return
            self._good = copy_payload(t.payload(note="last good state"))
            self._good_step = t.step_count
        except Exception as e:  # a trainer without payloads (tests, odd families) just has no restore point
            log.debug("run %s: no last-good copy: %s", self.run_id, e)

    def _trainer_mark(self) -> tuple:
        """What changes whenever a snapshot of the trainer would: itself, its step, its logged values."""
        t = self.trainer
        return id(t), t.step_count, len(t.history), t.history.stride, len(t.evals), t.evals.stride

    def _take_snapshot(self) -> Snapshot | None:
        c0 = time.thread_time()   # CPU time: what a snapshot takes from training, whatever else the machine runs
        mark = self._trainer_mark()
        try:
            snap = self.trainer.snapshot()
        except Exception as e:
            log.warning("run %s: snapshot failed: %s", self.run_id, e)
            return None
        self._snap_cost = time.thread_time() - c0
        self._snap_mark = mark
        return snap

    def _publish(self, snapshot: bool = True, state: tuple[str, str] | None = None) -> None:
        """A new snapshot (and, with `state`, a new (state, message)) for the readers, in one step: whoever sees
        the new state also sees the snapshot that goes with it (a 'diverged' run with its NaN loss). A trainer
        that has not changed since the last snapshot keeps it (Train after Pause: a class's most frequent command)."""
        if snapshot and getattr(self, "_snap_mark", None) == self._trainer_mark():
            snapshot = False
        snap = self._take_snapshot() if snapshot else None
        with self._published:
            if state is not None:
                self._state, self._message = state
            if snap is not None:
                self._snap = snap
            self._version += 1
            self._published.notify_all()
        self._last_publish = time.perf_counter()


def _empty_snapshot(trainer: Any) -> Snapshot:
    return Snapshot(step=int(getattr(trainer, "step_count", 0)), family="", kind="points", device="cpu",
                    last={}, history={"step": np.zeros(0, dtype=np.int64)},
                    evals={"step": np.zeros(0, dtype=np.int64)})


def copy_payload(p: dict[str, Any]) -> dict[str, Any]:
    """Tensors in a payload alias the live model and optimiser: copy them (the rest is fresh already)."""
    out = dict(p)
    for k in ("state", "optim", "sched", "rng"):
        if k in out:
            out[k] = copy.deepcopy(out[k])
    return out


def _sentence(e: BaseException) -> str:
    """An exception as one sentence for the user: 'Training stopped by an error (KeyError: 'x').'"""
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return f"Training stopped by an error ({text[:300]}). Reset the run; if it happens again, change the settings."


def new_run_id() -> str:
    return secrets.token_hex(4)


def runner_threads() -> list[str]:
    """Names of the runner threads alive in this process (a freed run leaves none)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


# ---- registry --------------------------------------------------------------------------------------------
class Registry:
    """Process-wide: run id -> Runner; admission of training runs; a reaper for runs nobody looks at.

    A run is "looked at" while a viewer session is attached to it (`touch(run_id, session)`); when the last one
    goes (`session_gone`) or stops touching it, the run is stopped and freed `grace_s` seconds later."""

    def __init__(self, limit: int | None = -1, grace_s: float = 300.0, reap_every_s: float = 10.0,
                 max_runs: int = 64, trainer_factory: Callable[..., Trainer] = Trainer,
                 runner_kwargs: dict[str, Any] | None = None, placement: Any = None, cohorts: bool = False,
                 cohort_size: int = MAX_MEMBERS):
        # placement: None = runs are threads in this process; ganae.placement.RayPlacement = Ray actors, with a
        # cluster-wide admission (its limit -1: the cluster's CPUs)
        # cohorts: runs of one structure train together as one ensemble (ganae/cohort.py); a training slot of the
        # admission then holds a cohort of up to `cohort_size` runs (limit = cohorts training at once)
        self._make = placement.runner if placement is not None else Runner
        self.placement = placement
        if placement is not None:
            self.admission = placement.admission(limit)
        else:
            self.admission = Admission((os.cpu_count() or 1) if limit == -1 else limit)
        kw = dict(runner_kwargs or {})
        self.pool = Cohorts(self.admission, cohort_size, gate=kw.get("gate"), nice=kw.get("nice", 0),
                            threads=kw.get("threads", 1)) if cohorts and placement is None else None
        self.grace_s = float(grace_s)
        self.reap_every_s = float(reap_every_s)
        self.max_runs = int(max_runs)
        self._factory = trainer_factory
        self._runner_kwargs = kw
        if self.pool is not None:
            self._runner_kwargs["pool"] = self.pool
        self._lock = threading.RLock()
        self._runs: dict[str, Runner] = {}
        self._seen: dict[str, float] = {}
        self._viewers: dict[str, set[str]] = {}
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()

    # ---- runs -----------------------------------------------------------------------------------
    def create(self, source: RunConfig | Trainer, session: str | None = None, owner: str | None = None,
               **kwargs: Any) -> Runner:
        """A new run of a config or of a Trainer already built (ConfigError / DataError propagate; nothing is
        registered then). With `owner`, only commands bringing that secret change the run (Runner.owned_by)."""
        with self._lock:
            if len(self._runs) >= self.max_runs:
                self.reap(0.0)
            if len(self._runs) >= self.max_runs:
                raise RuntimeError(f"This server already holds {self.max_runs} runs; close some tabs or wait "
                                   f"a few minutes for idle runs to be freed.")
            run_id = new_run_id()
            while run_id in self._runs:
                run_id = new_run_id()
        opts = {**self._runner_kwargs, **kwargs}
        runner = self._make(source, self._factory, run_id=run_id, admission=self.admission, owner=owner, **opts)
        with self._lock:
            self._runs[run_id] = runner
            self._seen[run_id] = time.monotonic()
            self._viewers[run_id] = {session} if session else set()
        return runner

    def fork(self, run_id: str, owner: str | None = None, session: str | None = None, **kwargs: Any) -> Runner:
        """A new run, owned by `owner`, that goes on from run `run_id` as it is now (weights, optimiser, history,
        config); the source is left as it was. Anyone may fork a run they can watch."""
        source = self.get(run_id)
        if source is None:
            raise RuntimeError(f"The run {run_id} is no longer on this server; there is nothing to copy.")
        return self.create(source.copy_trainer(), session, owner=owner, **kwargs)

    def get(self, run_id: str | None) -> Runner | None:
        if not run_id:
            return None
        with self._lock:
            return self._runs.get(run_id)

    def __contains__(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._runs

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def touch(self, run_id: str, session: str | None = None) -> bool:
        """A viewer looked at the run (and, with `session`, keeps looking until that session is gone)."""
        with self._lock:
            if run_id not in self._runs:
                return False
            self._seen[run_id] = time.monotonic()
            if session:
                self._viewers[run_id].add(session)
            return True

    def detach(self, run_id: str, session: str) -> None:
        """`session` stops viewing `run_id` (e.g. it opened another run); the grace period starts."""
        with self._lock:
            if run_id in self._viewers:
                self._viewers[run_id].discard(session)
                self._seen[run_id] = time.monotonic()

    def session_gone(self, session: str) -> None:
        """A browser session ended: its runs start their grace period."""
        now = time.monotonic()
        with self._lock:
            for run_id, viewers in self._viewers.items():
                if session in viewers:
                    viewers.discard(session)
                    self._seen[run_id] = now

    def remove(self, run_id: str, timeout: float = JOIN_TIMEOUT_S) -> bool:
        with self._lock:
            runner = self._runs.pop(run_id, None)
            self._seen.pop(run_id, None)
            self._viewers.pop(run_id, None)
        return runner.stop(timeout) if runner is not None else False

    def reap(self, grace_s: float | None = None) -> list[str]:
        """Stop and free runs without viewers that nobody touched for `grace_s` seconds."""
        grace = self.grace_s if grace_s is None else float(grace_s)
        now = time.monotonic()
        with self._lock:
            gone = [rid for rid, r in self._runs.items()
                    if (not self._viewers.get(rid) and now - self._seen.get(rid, 0.0) >= grace) or not r.alive]
            runners = [self._runs.pop(rid) for rid in gone]
            for rid in gone:
                self._seen.pop(rid, None)
                self._viewers.pop(rid, None)
        for r in runners:
            r.stop()
        return gone

    def counts(self) -> dict[str, int | None]:
        """running / queued: holders of a training slot and those waiting (with cohorts: a slot holds a cohort);
        training: the runs training or queued now (each such run has a page redrawing live)."""
        training, queued = self.admission.counts()
        with self._lock:
            runners = list(self._runs.values())
        live = sum(1 for r in runners if r.state in ("running", "queued"))
        return {"running": training, "queued": queued, "runs": len(runners), "limit": self.admission.limit,
                "training": live}

    def stats(self) -> dict[str, Any]:
        """counts() plus the runs per state and the runner threads alive in this process (for monitoring)."""
        with self._lock:
            runners = list(self._runs.values())
        states = collections.Counter(r.state for r in runners)
        out = {**self.counts(), "states": dict(states), "runner_threads": len(runner_threads()),
               "time": time.time()}
        if self.pool is not None:
            out.update(self.pool.stats(), cohort_threads=len(cohort_threads()))
        elif getattr(self.placement, "cohorts", False):      # cohorts in the Ray hosts (ganae/placement.py)
            out.update(self.placement.cohort_stats())
        return out

    # ---- reaper thread --------------------------------------------------------------------------
    def start_reaper(self) -> None:
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._closing.clear()
            self._reaper = threading.Thread(target=self._reap_loop, name="ganae-reaper", daemon=True)
            self._reaper.start()

    @property
    def closed(self) -> bool:
        """True once shutdown() has begun."""
        return self._closing.is_set()

    def _reap_loop(self) -> None:
        name_os_thread("ganae-reaper")
        while not self._closing.wait(self.reap_every_s):
            try:
                self.reap()
            except Exception:  # the reaper must outlive one bad run
                log.exception("reaper failed")

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop the reaper and every run, joining their threads."""
        self._closing.set()
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join(timeout)
        with self._lock:
            ids = list(self._runs)
        for rid in ids:
            self.remove(rid, timeout)


__all__ = ["Runner", "RunStatus", "Registry", "NotOwner", "owned_by", "Admission", "Gate", "STATES",
           "new_run_id", "runner_threads", "name_os_thread", "lower_thread_priority", "THREAD_PREFIX"]
