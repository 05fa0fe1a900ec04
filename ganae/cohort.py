"""Class cohorts: the live runs of one server that share a structure train together, as one Ensemble.

    pool = Cohorts(admission)                      # Registry(cohorts=True) makes one (dashboard: GANAE_COHORTS=1)
    runner = Runner(cfg, admission=admission, pool=pool)
    runner.play()                                  # joins the cohort of its structure at the next chunk boundary

In class, the teacher shares one link and most students train the same structure. Instead of one thread per
run queueing for a handful of training slots, the runs that can be batched (ensemble.unsupported is None, at the
fastest speed) become members of a **cohort**: an `ensemble.Ensemble` of their Trainers stepped by one thread.
A member is still an ordinary Runner to its page -- its own snapshot, history, status, share link, checkpoint --
and a member at another step, with other learning rates, penalty weights or seed, trains beside the others
exactly as it would alone (tests/test_cohort.py compares its trajectory with the solo one).

The handover, and why it is safe: a running member's own thread calls `host()` and sleeps in it; while it sleeps,
the cohort's thread owns that runner's Trainer and its bookkeeping (publishing snapshots, evaluations, the last
good copy, finishing at the planned steps, divergence). At every chunk boundary the cohort lets a member go when
its runner has a command waiting (Pause, Step D / G, Reset, a read such as a checkpoint save), is stopping, or no
longer trains at the fastest speed: its Trainer is brought up to date (weights, optimiser, scheduler, step) and
its thread wakes up and executes the command alone -- so Step D / Step G act on that one member only. Runs that
join or leave make the cohort regroup its Ensemble (`Ensemble.regroup`): the leavers' Trainers are brought up to
date, the members that stay keep their stacked state, the joiners are stacked after them.

Admission is a compute budget: one training slot of the `Admission` holds a whole cohort of up to `max_members`
runs (GANAE_COHORT_SIZE, default 32), so `GANAE_MAX_TRAINING` counts cohorts (and runs that train alone: other
families, slow-motion speeds) training at once. A run whose structure has a cohort with room joins it at once;
a run of a new structure opens a cohort of one, which needs a slot; only when every slot is taken does a run wait
("queued", with its cohort's place in the line).

Snapshots and evaluations stay within the overhead budget of the runner (a share of the wall time): a cohort of
K members gives each member 1/K of it, so publishing does not grow with the class, and that share shrinks with the
part of a core the cohort's thread actually gets (`Cohort.cpu_share`: beside a class's pages on one core, a fixed
share of the wall time was two to three times that share of the cohort's own CPU). Publishing and evaluating read a
member's weights only (`Ensemble.view(k, optimizer=False)`).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

import torch

from .ensemble import Ensemble, structure, unsupported
from .live import lower_thread_priority, name_os_thread
from .trainer import DivergenceError

log = logging.getLogger(__name__)

MAX_MEMBERS = int(os.environ.get("GANAE_COHORT_SIZE", "32"))   # runs one cohort (one training slot) holds
CHUNK_S = 0.05                 # a cohort's chunk takes about this long: a command waits at most one chunk
# The chunk after a run joined fresh (its student pressed Train) is this many steps: the joiner's first frame is
# published after it, so Train shows a moving counter after one batched step instead of a whole chunk (on a core
# shared with a class's pages, where the cohort gets a small share, a chunk is seconds of wall time).
FIRST_CHUNK = 1
# Turns: a cohort that has held its training slot this long while others wait in line gives the slot to the first
# of them and queues again at the end (0: never). A solo run's slot passes on when its student pauses; a cohort's
# members never all pause at once, so without turns the other setups of a mixed class would wait for the lesson's end.
SLICE_S = float(os.environ.get("GANAE_COHORT_SLICE_S", "20"))
TURN_MESSAGE = ("Taking turns: every training slot is in use, so the setups of this class train in turns of "
                "{slice:g} s. This run goes on when its setup's turn comes.")
THREAD_PREFIX = "ganae-cohort-"


def eligible(cfg: Any, speed: int) -> bool:
    """Whether a run of `cfg` at `speed` trains in a cohort: a batchable structure, at the fastest speed (a
    slow-motion run trains alone: its frames are timed for its own page)."""
    return unsupported(cfg) is None and speed == 0


class Cohort:
    """The runs of one structure training together: one thread, one Ensemble (or a single Trainer), one
    training slot. Made and closed by `Cohorts`; members come and go at chunk boundaries."""

    def __init__(self, pool: "Cohorts", key: tuple, number: int):
        self.pool, self.key, self.number = pool, key, number
        # its name in the Admission's line (a cluster-wide admission, ganae/placement.py, knows runs by id)
        self.run_id = f"cohort-{uuid.uuid4().hex[:12]}-{number}"
        self.reserved: set[Any] = set()         # runs admitted to this cohort (training, or about to join)
        self.members: list[Any] = []            # runs whose Trainer this cohort's thread steps now
        self.joining: list[tuple[Any, bool]] = []    # (runner, fresh) waiting at the next chunk boundary
        self.cond = threading.Condition()
        self.closed = False
        self._wake = threading.Event()          # set by Admission when this cohort gets its slot
        self.ens: Ensemble | None = None
        self.rate = 0.0                         # batched iterations per second (each member's steps/s)
        # the part of a core this cohort's thread gets (its CPU time / wall time over its recent chunks): on a core
        # shared with a class's pages it is well under 1, and the members' overhead budget (a share of wall time)
        # shrinks with it, so publishing and evaluating stay a small part of what the cohort itself computes
        self.cpu_share = 1.0
        self._clock: tuple[float, float] | None = None
        self.chunks = 0                         # chunks trained (monitoring, tests)
        self.turns = 0                          # times it gave its slot to the next in line (monitoring, tests)
        self.held_since: float | None = None    # when it got its slot (for its turn)
        self._turn_checked = 0.0
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<Cohort {self.number}: {len(self.members)} members, {len(self.reserved)} admitted>"

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- a member's thread -------------------------------------------------------------------------
    def host(self, runner: Any, fresh: bool) -> bool:
        """Called by a running member's own thread: join at the next chunk boundary and sleep until the cohort
        lets it go (a command, stopping, finished, diverged). False when this cohort cannot host it (closed):
        the caller then trains a chunk alone."""
        with self.cond:
            if self.closed or runner not in self.reserved:
                return False
            if not self.alive:
                self._thread = threading.Thread(target=self._loop, name=f"{THREAD_PREFIX}{self.number}",
                                                daemon=True)
                self._thread.start()
            self.joining.append((runner, fresh))
            self.cond.notify_all()
            while any(r is runner for r, _ in self.joining) or runner in self.members:
                if not self.alive:             # the cohort's thread is gone: take the Trainer back
                    self.joining = [(r, f) for r, f in self.joining if r is not runner]
                    if runner in self.members:
                        self.members.remove(runner)
                    break
                self.cond.wait(0.1)
        return True

    # ---- the cohort's thread ---------------------------------------------------------------------------
    def _must_leave(self, r: Any, held: bool = True) -> bool:
        return (not held or r._stopping or not r._commands.empty() or r._state != "running" or r._speed > 0
                or r not in self.reserved)

    def _turn_over(self) -> None:
        """After a chunk: when this cohort has trained for a turn (SLICE_S) and someone waits for a slot, it gives
        the slot to the first in line and queues again at the end; its members then wait, queued, for its next
        turn. (The line is asked at most once a second.)"""
        now = time.monotonic()
        if self.held_since is None:
            self.held_since = now
        if SLICE_S <= 0 or now - self.held_since < SLICE_S or now - self._turn_checked < 1.0:
            return
        self._turn_checked = now
        if self.pool.admission.counts()[1] > 0:
            self.held_since = None
            self.turns += 1
            self.pool.take_turn(self)

    def _restack(self, joiners: list[Any], leavers: list[Any]) -> None:
        """New members in, leaving members out. The Ensemble regroups: the leavers' Trainers are brought up to
        date, the members that stay keep their stacked state, the joiners are stacked after them (a cohort of one
        trains its Trainer directly)."""
        keep = [k for k, r in enumerate(self.members) if r not in leavers]
        self.members = [self.members[k] for k in keep] + joiners
        share = 1.0 / max(1, len(self.members))
        for r in self.members:
            r._overhead_share = share
        # (the leavers keep theirs: a member out for its student's Pause or Step D is still one of a class on this
        # core, and its Step D does not buy an evaluation the class's budget would not give it -- a class of 30
        # clicking Step D every few seconds spent 3 % of the training process on those; a run that goes on training
        # alone gets the whole budget back, Runner._run_chunk)
        if self.ens is not None and len(self.members) > 1:
            try:
                self.ens.regroup(keep, [r.trainer for r in joiners])
                return
            except Exception as e:             # should not happen (one structure): restack from the Trainers
                log.warning("cohort %s: cannot regroup its members (%s); restacking them", self.number, e)
        if self.ens is not None:
            self.ens.views()                   # (every Trainer up to date: the one left trains it directly)
        self.ens = None
        if len(self.members) > 1:
            try:
                self.ens = Ensemble([r.trainer for r in self.members])
            except Exception as e:             # should not happen (one structure): train them one by one
                log.warning("cohort %s: cannot stack its members (%s); stepping them one by one", self.number, e)
                self.ens = None

    def _loop(self) -> None:
        name_os_thread(f"{THREAD_PREFIX}{self.number}")
        pool = self.pool
        if pool.nice:
            lower_thread_priority(pool.nice)
        if pool.threads > 0 and torch.get_num_threads() != pool.threads:
            torch.set_num_threads(pool.threads)
        try:
            while True:
                held = bool(pool.admission.holds(self))      # (not after giving its slot away for a turn)
                if not held:
                    self.held_since = None
                with self.cond:
                    leavers = [r for r in self.members if self._must_leave(r, held)]
                    joiners = [(r, f) for r, f in self.joining if not self._must_leave(r, held)]
                    self.joining.clear()         # (a joiner that must leave already is simply not taken in)
                    if leavers or joiners:
                        self._restack([r for r, _ in joiners], leavers)
                    self.cond.notify_all()       # leavers (and refused joiners) wake up on their own threads
                    if not self.members:
                        self._clock = None         # (waiting is not a share of the core taken by others)
                        if self.closed:
                            return
                        self.cond.wait(0.5)
                        if self.closed and not self.joining:
                            return
                        continue
                    members = list(self.members)
                fresh = any(f for _, f in joiners)       # a student just pressed Train: its first frame first
                if pool.gate is not None and not fresh:
                    pool.gate.give_way(lambda: bool(self.joining) or any(self._must_leave(r) for r in members))
                self._chunk(members, FIRST_CHUNK if fresh else None)
                self._turn_over()
        except BaseException as e:   # never die silently: every member stops with the reason
            log.exception("cohort %s crashed", self.number)
            with self.cond:
                for r in self.members:
                    r._cohort_failed(e)
                self.members.clear()
        finally:
            with self.cond:
                self.ens = None
                self.cond.notify_all()

    def _note_cpu_share(self) -> None:
        """Update `cpu_share` from the CPU and wall time since the last chunk (a pause of the cohort -- no members,
        a turn given away -- restarts the clock; see _loop)."""
        now = (time.thread_time(), time.perf_counter())
        if self._clock is not None and now[1] - self._clock[1] > 0:
            share = min(1.0, max(0.05, (now[0] - self._clock[0]) / (now[1] - self._clock[1])))
            self.cpu_share = 0.8 * self.cpu_share + 0.2 * share
        self._clock = now

    def _chunk_size(self, members: list[Any]) -> int:
        n = int(min(max(1, (self.rate or 100.0) * CHUNK_S), 500))
        for r in members:
            if r._target is not None:
                n = min(n, max(1, r._target - r.trainer.step_count))
        return n

    def _chunk(self, members: list[Any], most: int | None = None) -> None:
        """One batched chunk for every member (at most `most` steps), then each member's bookkeeping (as
        Runner._run_chunk does)."""
        n = self._chunk_size(members) if most is None else min(most, self._chunk_size(members))
        t0 = time.perf_counter()
        if self.ens is not None:
            try:
                self.ens.step(n)
            except Exception as e:
                log.exception("cohort %s: a batched step failed", self.number)
                for r in members:
                    r._cohort_failed(e)
                return
            errors = list(self.ens.errors)
        else:
            r = members[0]
            errors = [""]
            try:
                r.trainer.step(n)
            except DivergenceError as e:
                errors = [str(e)]
            except Exception as e:
                log.exception("run %s failed", r.run_id)
                r._cohort_failed(e)
                return
        dt = time.perf_counter() - t0
        rate = n / dt if dt > 0 else 0.0
        self.rate = rate if not self.rate else 0.7 * self.rate + 0.3 * rate
        self.chunks += 1
        self._note_cpu_share()
        share = self.cpu_share / len(members)
        for k, r in enumerate(members):
            r._overhead_share = share
            if errors[k]:
                if self.ens is not None:
                    self.ens.view(k)           # its Trainer keeps the state it diverged with
                r._cohort_diverged(errors[k])
                continue
            if r._bookkeeping_due():
                if self.ens is not None:        # (the optimiser's state only for a last-good copy)
                    self.ens.view(k, optimizer=r._good_due())
                r._after_chunk()
            else:
                r._note_rate()


class Cohorts:
    """The cohorts of one server process, sharing one Admission (a slot per cohort)."""

    def __init__(self, admission: Any, max_members: int = MAX_MEMBERS, gate: Any = None, nice: int = 0,
                 threads: int = 1):
        self.admission = admission
        self.max_members = max(1, int(max_members))
        self.gate, self.nice, self.threads = gate, int(nice), int(threads)
        self._lock = threading.Lock()
        self._cohorts: list[Cohort] = []
        self._of: dict[int, Cohort] = {}        # id(runner) -> its cohort
        self._made = 0

    def _key(self, runner: Any) -> tuple:
        return structure(runner.cfg)

    def cohort_of(self, runner: Any) -> Cohort | None:
        with self._lock:
            return self._of.get(id(runner))

    def admit(self, runner: Any) -> bool:
        """Place `runner` in a cohort of its structure (one with room, else a new one, which asks for a slot);
        True when that cohort holds a training slot, i.e. the run trains now; False: it waits (queued)."""
        with self._lock:
            c = self._of.get(id(runner))
            if c is None or c.closed:
                key = self._key(runner)
                c = next((c for c in self._cohorts if c.key == key and not c.closed
                          and len(c.reserved) < self.max_members), None)
                if c is None:
                    self._made += 1
                    c = Cohort(self, key, self._made)
                    self._cohorts.append(c)
                c.reserved.add(runner)
                self._of[id(runner)] = c
        return bool(self.admission.request(c))

    def can_join(self, runner: Any) -> bool:
        """Whether a cohort of `runner`'s structure trains now and has room for it."""
        key = self._key(runner)
        with self._lock:
            cs = [c for c in self._cohorts if c.key == key and not c.closed and len(c.reserved) < self.max_members]
        return any(self.admission.holds(c) for c in cs)

    def holds(self, runner: Any) -> bool:
        c = self.cohort_of(runner)
        return c is not None and bool(self.admission.holds(c))

    def position(self, runner: Any) -> int:
        c = self.cohort_of(runner)
        return self.admission.position(c) if c is not None else 0

    def release(self, runner: Any) -> None:
        """`runner` stops training (paused, finished, reset, freed): out of its cohort; an empty cohort closes and
        gives its slot back."""
        with self._lock:
            c = self._of.pop(id(runner), None)
            if c is None:
                return
            c.reserved.discard(runner)
            empty = not c.reserved
            if empty:
                c.closed = True
                self._cohorts.remove(c)
        with c.cond:
            c.cond.notify_all()
        if empty:
            self.admission.release(c)

    def host(self, runner: Any, fresh: bool) -> bool:
        c = self.cohort_of(runner)
        return c is not None and self.admission.holds(c) and c.host(runner, fresh)

    def waiting_turn(self, runner: Any) -> bool:
        """Whether `runner`'s cohort has given its slot away for a turn (its members wait, queued)."""
        c = self.cohort_of(runner)
        return c is not None and not c.closed and not self.admission.holds(c)

    def take_turn(self, c: Cohort) -> bool:
        """`c` gives its slot to the first in line and queues again at the end; True if it holds one still."""
        self.admission.release(c)
        return bool(self.admission.request(c))

    def stats(self) -> dict[str, Any]:
        """What a monitor shows: cohorts and their sizes."""
        with self._lock:
            cs = list(self._cohorts)
        return {"cohorts": len(cs), "members": [len(c.members) for c in cs],
                "admitted": [len(c.reserved) for c in cs], "turns": sum(c.turns for c in cs)}


def cohort_threads() -> list[str]:
    """Names of the cohort threads alive in this process."""
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX) and t.is_alive()]


__all__ = ["Cohorts", "Cohort", "eligible", "cohort_threads", "MAX_MEMBERS"]
