"""Stabilization Arena: a `Comparison` trained live by one background thread.

    arena = ArenaRunner(presets.get("ring8-vanilla"), [Variant("R1 + EMA", {"objective.r1": 0.1,
                        "tricks.ema": 0.99})], seeds=[0, 1], steps=2000)
    arena.play()                    # every (variant, seed) run advances in rounds, live
    view = arena.view()             # the latest immutable ArenaView: histories, samples, table, winners
    arena.pause(); arena.step(50)   # all runs advance 50 steps together, then pause
    arena.stop()

One thread owns the whole comparison and advances it through `Comparison.step`: runs of one structure train as
one batched Ensemble (ganae/ensemble.py; each member exactly its solo run), the rest solo. Each round, every
healthy run advances the same number of steps (chosen so that a round takes about ROUND_S), so the healthy runs
are always at the same step. A run that diverges is reported in the view and stops advancing; the others go on.
An arena made with `owner=<secret>` obeys only commands bringing that secret (the browser that started it, see
ganae.live.NotOwner); anyone may watch it and `ArenaStore.fork` it. The arena asks an `Admission` (the
registry's, in the dashboard) for one training slot and waits, "queued", while there is none. The thread, its
command queue, states, admission, gate and owner check are ganae/live.py's LiveRunner, the same engine as a
Playground run's (ganae/runner.py). Quality metrics are evaluated every EVAL_EVERY_S (at most OVERHEAD_SHARE of
the time) and once more at the end. Nothing here imports streamlit.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import os
import secrets
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from . import metrics
from .compare import Comparison, Run, Variant, plot_pngs
from .config import ConfigError, RunConfig
from .live import JOIN_TIMEOUT_S, LiveRunner
from .runner import Gate, copy_payload
from .trainer import Trainer

log = logging.getLogger(__name__)

MAX_RUNS = 8                 # variants × seeds in one arena: 2 CPU cores train ~8 small runs at a useful pace
ROUND_S = 0.25               # one round (every run advances one chunk) takes about this long
MAX_CHUNK = 200              # steps per run and round, at most
PUBLISH_EVERY_S = 0.3        # a new view at most this often while training
EVAL_EVERY_S = 2.0           # quality metrics at most this often ...
OVERHEAD_SHARE = 0.1         # ... and views + evaluations take at most ~10% of the time
GRACE_S = float(os.environ.get("GANAE_GRACE_S", "300"))   # an arena nobody looks at pauses after this long ...
STOP_AFTER_GRACES = 4        # ... and its thread ends after this many grace periods (its last view stays)
STATES = ("idle", "queued", "running", "paused", "finished", "error", "stopped")
PROB_LOSSES = ("minimax", "ns")          # D's outputs are probabilities: the reading can use them
N_MODES = {"ring8": 8, "grid25": 25}

# readable names of the fields a variant usually changes
FIELD_LABELS: dict[str, str] = {
    "objective.loss": "loss", "objective.gp": "GP λ", "objective.r1": "R1 γ", "objective.r2": "R2 γ",
    "objective.clip": "weight clip", "objective.spectral_norm": "spectral norm", "tricks.ema": "G EMA",
    "tricks.instance_noise": "instance noise σ", "tricks.label_smoothing": "label smoothing",
    "tricks.minibatch_std": "minibatch std", "tricks.feature_matching": "feature matching",
    "tricks.d_dropout": "D dropout", "optim.n_critic": "D steps / iteration", "optim.g_opt": "G optimiser",
    "optim.d_opt": "D optimiser", "optim.g_lr": "G lr", "optim.d_lr": "D lr", "optim.beta1": "β1",
    "optim.beta2": "β2", "model.gan_init": "G init", "model.pretrain_steps": "AE pretraining steps",
}

_LIVE: "weakref.WeakSet[ArenaRunner]" = weakref.WeakSet()


def describe_updates(updates: Mapping[str, Any], base: RunConfig | None = None) -> str:
    """A variant's changes as one line: "loss ns (was minimax) · R1 γ 0.1 · G EMA 0.99"."""
    if not updates:
        return "the base configuration"
    parts = []
    for k, v in updates.items():
        label = FIELD_LABELS.get(k, k)
        text = "on" if v is True else "off" if v is False else f"{v:g}" if isinstance(v, float) else str(v)
        if base is not None and "." in k:
            sec, name = k.split(".", 1)
            old = getattr(getattr(base, sec, None), name, None)
            if old is not None and old != v:
                o = "on" if old is True else "off" if old is False else f"{old:g}" if isinstance(old, float) \
                    else str(old)
                text += f" (was {o})"
        parts.append(f"{label} {text}")
    return " · ".join(parts)


def _sentence(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def _ro(a: Any) -> np.ndarray | None:
    if a is None:
        return None
    arr = np.array(a.detach().float().cpu().numpy() if isinstance(a, torch.Tensor) else a, copy=True)
    arr.setflags(write=False)
    return arr


# ---- the published view ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunView:
    """One (variant, seed) run as it was when the view was published."""
    variant: str
    seed: int
    step: int
    error: str                               # divergence / failure message; the run stopped advancing
    history: Mapping[str, np.ndarray]        # "step" + one read-only array per logged metric
    evals: Mapping[str, np.ndarray]          # "step" + quality metrics at each evaluation
    metrics: Mapping[str, float]             # the numbers the table averages (latest evaluation, oscillation,
                                             # ms per step, diverged)


@dataclass(frozen=True)
class ArenaView:
    """Everything a page draws for one frame. Immutable; safe to read from any thread."""
    arena_id: str
    state: str                               # one of STATES
    message: str                             # a sentence for the user ("" when there is nothing to say)
    step: int                                # the slowest healthy run's step
    target: int                              # steps per run
    version: int                             # increases with every publication
    steps_per_s: float                       # steps per second of each run (all advance together)
    dataset: str
    family: str
    kind: str                                # "points" | "images"
    variants: tuple[str, ...]                # "base" first
    changes: Mapping[str, str]               # variant -> its changes in words
    seeds: tuple[int, ...]
    runs: tuple[RunView, ...]
    samples: Mapping[str, np.ndarray | None] # variant -> generated points / images of its first seed
    real: np.ndarray | None                  # real points (points data) for the sample panels
    readings: Mapping[str, str]              # variant -> the oscillation reading of its first seed
    table: tuple[Mapping[str, Any], ...]     # Comparison.table(): mean and <m>_sd over the seeds, n runs
    winners: Mapping[str, str]               # metric -> best variant
    n_modes: int | None = None
    eval_step: int = 0                       # the step of the latest evaluation (0: none yet)
    eval_note: str = ""                      # why quality metrics are missing, if they are

    @property
    def active(self) -> bool:
        """Training or waiting to train: a page should keep refreshing."""
        return self.state in ("running", "queued")

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    def runs_of(self, variant: str) -> list[RunView]:
        return [r for r in self.runs if r.variant == variant]

    def history_rows(self) -> list[dict[str, Any]]:
        """Long format, as Comparison.history_rows(): variant, seed, step, metric, value."""
        rows = []
        for r in self.runs:
            h = r.history
            steps = h.get("step", np.zeros(0))
            for k, vals in h.items():
                if k == "step":
                    continue
                for s, v in zip(steps, vals):
                    if math.isfinite(v):
                        rows.append({"variant": r.variant, "seed": r.seed, "step": int(s), "metric": k,
                                     "value": float(v)})
        return rows

    def table_csv(self) -> str:
        return _csv([dict(r) for r in self.table])

    def histories_csv(self) -> str:
        return _csv(self.history_rows())


def _csv(rows: list[dict[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


# ---- the runner ---------------------------------------------------------------------------------------
class ArenaRunner(LiveRunner):
    """A Comparison advanced by one daemon thread (a LiveRunner); controls are commands that thread executes
    between rounds."""

    WHAT = "comparison"

    @property
    def run_id(self) -> str:
        """Its name with an admission that lives elsewhere (a training process's or the Ray cluster's: by run id)."""
        return f"arena-{self.arena_id}"

    def __init__(self, base: RunConfig, variants: Iterable[Variant] = (), seeds: Iterable[int] = (0,),
                 steps: int | None = None, *, admission: Any = None, arena_id: str | None = None,
                 threads: int = 1, max_runs: int = MAX_RUNS, device: str | None = None,
                 publish_every_s: float = PUBLISH_EVERY_S, eval_every_s: float = EVAL_EVERY_S,
                 round_s: float = ROUND_S, grace_s: float | None = GRACE_S, nice: int = 0,
                 gate: Gate | None = None, owner: str | None = None, runs: list | None = None,
                 ensembles: bool = True):
        variants = [v for v in variants if v.name != "base"]
        seeds = list(seeds)
        n = (1 + len(variants)) * len(seeds)
        if n > max_runs:
            raise ConfigError("seeds", f"{1 + len(variants)} variants (the base included) × {len(seeds)} seeds "
                                       f"make {n} runs; at most {max_runs} train at a useful pace here. Remove a "
                                       f"variant or use fewer seeds.")
        self.arena_id = arena_id or secrets.token_hex(4)
        super().__init__(f"ganae-arena-{self.arena_id}", admission=admission, threads=threads, nice=nice, gate=gate,
                         owner=owner)
        if self._threads > 0 and torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
        # ConfigError / DataError raise here; given `runs` (copy_runs() of another arena) go on from their state
        self.cmp = Comparison(base, variants, seeds, device=device, runs=runs, ensembles=ensembles)
        self.base = self.cmp.base
        self.target = int(steps if steps is not None else base.train.steps)
        if self.target < 1:
            raise ConfigError("steps", "plan at least 1 step per run")
        self.changes = {v.name: describe_updates(v.updates, self.base) for v in self.cmp.variants}
        self._publish_every = float(publish_every_s)
        self._eval_every = float(eval_every_s)
        self._round_s = float(round_s)
        self._grace_s = grace_s
        self._steps_per_s = 0.0
        self._touched = time.monotonic()
        self._last_publish = 0.0
        self._publish_cost = 0.0
        self._last_eval_t = 0.0
        self._last_eval_step = -1
        self._eval_cost = 0.0
        self._eval_step = 0
        self._evals_ok = True
        self._eval_note = ""
        self._rate_t0, self._rate_step0 = time.perf_counter(), 0
        first = self.cmp.runs[0].trainer
        self._dataset = self.base.data.name
        self._kind = first.data.kind
        self._real = _ro(first.data.x_test[:1000]) if self._kind == "points" else None
        self._view = self._build_view()
        _LIVE.add(self)
        self._start()

    # ---- public controls (any thread) ----------------------------------------------------------------
    def view(self) -> ArenaView:
        with self._lock:
            return self._view

    @property
    def n_runs(self) -> int:
        return len(self.cmp.runs)

    @property
    def last_touched(self) -> float:
        return self._touched

    def touch(self) -> None:
        """Someone is looking: the arena keeps training (it pauses after `grace_s` without a touch, and its
        thread ends after STOP_AFTER_GRACES × `grace_s`)."""
        self._touched = time.monotonic()

    def play(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "train")
        self._send("play", wait=wait)

    def pause(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "pause")
        self._send("pause", wait=wait)

    def step(self, n: int = 1, wait: bool = True, timeout: float = 60.0, owner: str | None = None) -> None:
        """Pause, then advance every healthy run `n` steps (round-robin), evaluate and publish."""
        self._check(owner, "step")
        n = int(n)
        if not 1 <= n <= 10_000:
            raise ValueError(f"n must be between 1 and 10000, got {n}")
        self._send("step", n, wait=wait, timeout=timeout)

    def call(self, fn: Callable[[Comparison], Any], timeout: float = 60.0) -> Any:
        """fn(comparison) on the arena's thread, between rounds; returns its result. For reading (exports):
        anyone watching may, so `fn` must not change the comparison."""
        return self._send("call", fn, wait=True, timeout=timeout)

    def copy_runs(self, timeout: float = 120.0) -> list[Run]:
        """Copies of this arena's runs now, in the order of `cmp.runs`: new Trainers with the same weights,
        optimiser and random state, history and step, and the same divergence marks (taken between rounds; the
        copies share the read-only datasets)."""
        taken = self.call(lambda cmp: [(r, copy_payload(r.trainer.payload()), r.trainer.data, r.trainer.device)
                                       for r in cmp.runs], timeout=timeout)
        return [Run(r.variant, r.seed, Trainer.from_payload(p, device=dev, data=data), r.error)
                for r, p, data, dev in taken]

    def png_bytes(self, timeout: float = 60.0) -> dict[str, bytes]:
        """{"losses.png": ..., "samples.png": ...}: compare.plot_pngs of the comparison as it is now."""
        def render(cmp: Comparison) -> dict[str, bytes]:
            with tempfile.TemporaryDirectory(prefix="ganae-arena-") as tmp:
                return {p.name: p.read_bytes() for p in plot_pngs(cmp, Path(tmp))}
        return self.call(render, timeout=timeout)

    def wait_for(self, predicate: Callable[[ArenaView], bool], timeout: float = 10.0) -> bool:
        """Block until predicate(view) holds for a published view (or the timeout passes)."""
        return self._wait_published(lambda: predicate(self.view()), timeout)

    # ---- internals: commands (LiveRunner._send runs _do_<name> on the thread) ----------------------------
    def _healthy(self) -> list:
        return [r for r in self.cmp.runs if not r.error and r.step < self.target]

    def _do_play(self) -> None:
        if self._state in ("running", "queued"):
            return
        msg = ""
        if not self._healthy():
            if not any(not r.error for r in self.cmp.runs):
                self._set_state("finished", "Every variant diverged: nothing left to train.")
                self._publish(force=True)
                return
            self.target += max(self.target // 2, 100)        # train on past the plan
            msg = f"Continuing to {self.target:,} steps per run."
        self._play_state(msg)           # the first round is not held back by the gate: the page waits for it
        self._rate_t0, self._rate_step0 = time.perf_counter(), self._min_step()
        self._publish(force=True)

    def _do_pause(self) -> None:
        if self._state in ("running", "queued"):
            self._release()
            self._set_state("paused", "")
            self._evaluate(force=True)
        self._publish(force=True)

    def _do_step(self, n: int) -> None:
        if self._state in ("running", "queued"):
            self._release()
        healthy = [r for r in self.cmp.runs if not r.error]
        if healthy:
            self.target = max(self.target, self._min_step() + n)
            self._advance(n, self._chunk_size(healthy))
        self._set_state("paused", self._diverged_note())
        self._evaluate(force=True)
        self._publish(force=True)

    def _do_call(self, fn: Callable[[Comparison], Any]) -> Any:
        return fn(self.cmp)

    # ---- internals: the LiveRunner hooks ---------------------------------------------------------------
    def _label(self) -> str:
        return f"the arena {self.arena_id}"

    def _crash_message(self, e: BaseException) -> str:
        return (f"The comparison stopped by an error ({_sentence(e)}). Start it again; if it happens again, change "
                f"the settings.")

    def _begin(self) -> None:
        self._evaluate(force=True)             # the starting point: every table row has numbers at once
        self._publish(force=True)

    def _tick(self) -> bool:
        """Nobody looked for grace_s: pause (the slot is freed); for STOP_AFTER_GRACES × grace_s: end the thread."""
        if self._grace_s is None:
            return True
        unseen = time.monotonic() - self._touched
        if unseen > STOP_AFTER_GRACES * self._grace_s:
            self._set_state("stopped", f"Stopped: nobody looked at this comparison for {unseen:.0f} s. Press "
                                       f"Start to run it again.")
            return False
        if unseen > self._grace_s and self._state in ("running", "queued"):
            self._release()
            self._set_state("paused", f"Paused: nobody looked at this comparison for {self._grace_s:g} s. "
                                      f"Press Resume to go on.")
            self._evaluate(force=True)
            self._publish(force=True)
        return True

    def _on_slot(self) -> None:
        self._rate_t0, self._rate_step0 = time.perf_counter(), self._min_step()
        self._publish(force=True)

    def _run_chunk(self, fresh: bool) -> None:
        self._round(publish_now=fresh)

    def _end(self) -> None:
        self._publish(force=True, samples=False)   # the last view (and it wakes the readers)

    def _min_step(self) -> int:
        healthy = [r.step for r in self.cmp.runs if not r.error]
        return min(healthy) if healthy else max(r.step for r in self.cmp.runs)

    def _chunk_size(self, runs: list) -> int:
        """Steps per run this round: the round should take about `round_s` for all runs together (an ensemble
        member's time is its share of the batched step, so the shares add up to the ensemble's time)."""
        per_step = 0.0
        for r in runs:
            t = r.solo
            per_step += t.seconds / t.step_count if t.step_count else 0.0
        if per_step <= 0:
            return 5
        return int(min(max(1, self._round_s / per_step), MAX_CHUNK))

    def _prepare(self, runs: list) -> None:
        """Before a run's first step: an AE-pretrained generator pretrains its autoencoder (said in the view).
        Such runs train solo (ensemble.unsupported), so their own Trainer is the one to prepare."""
        for r in runs:
            t = r.solo
            if r.error or t.prepared or r.ensemble is not None or t.cfg.model.gan_init != "ae":
                continue
            self._set_state(self._state, f"Pretraining the autoencoder of '{r.variant}' (seed {r.seed}) to start "
                                         f"its generator from the decoder…")
            self._publish(force=True, samples=False)
            try:
                t.prepare()
            except Exception as e:   # one broken variant must not stop the others
                log.warning("arena %s: run %s/%s failed: %s", self.arena_id, r.variant, r.seed, e)
                r.error = f"stopped by an error ({_sentence(e)})"
            self._set_state(self._state, "")

    def _advance(self, n: int, chunk: int) -> None:
        """Every healthy run n steps, through the Comparison (ensembles by structure, groups taking turns in
        chunks); a divergence or failure marks that run only (Comparison.step records it in Run.error)."""
        if n < 1:
            return
        self._prepare(self.cmp.runs)
        self.cmp.step(n, chunk=max(1, min(chunk, n)))

    def _diverged_note(self) -> str:
        bad = sorted({r.variant for r in self.cmp.runs if r.error})
        if not bad:
            return ""
        return f"Diverged (stopped advancing, the others go on): {', '.join(bad)}."

    def _round(self, publish_now: bool = False) -> None:
        """Every healthy run advances one chunk; the view is published (at once with `publish_now`: the first
        round after play, which the page that pressed it waits for)."""
        healthy = self._healthy()
        if not healthy:
            self._finish()
            return
        chunk = min(self._chunk_size(healthy), self.target - self._min_step())
        self._advance(chunk, chunk)
        now = time.perf_counter()
        if now - self._rate_t0 > 0.5:
            with self._lock:
                self._steps_per_s = (self._min_step() - self._rate_step0) / (now - self._rate_t0)
            if now - self._rate_t0 > 4.0:
                self._rate_t0, self._rate_step0 = now, self._min_step()
        if not self._healthy():
            self._finish()
            return
        note = self._diverged_note()
        if note and note != self._message:
            self._set_state("running", note)
        self._evaluate()
        self._publish(force=publish_now)

    def _finish(self) -> None:
        self._release()
        bad = [r for r in self.cmp.runs if r.error]
        msg = f"Finished: every run reached {self.target:,} steps. Press Resume to train on."
        if bad:
            msg = (f"Finished: the healthy runs reached {self.target:,} steps. "
                   + self._diverged_note() + " Press Resume to train on.")
        self._set_state("finished", msg)
        self._evaluate(force=True)
        self._publish(force=True)

    def _evaluate(self, force: bool = False) -> None:
        if not self._evals_ok:
            return
        step, now = self._min_step(), time.perf_counter()
        if not force:
            if step == self._last_eval_step:
                return
            if now - self._last_eval_t < max(self._eval_every, self._eval_cost / OVERHEAD_SHARE):
                return
        t0 = time.perf_counter()
        try:
            self.cmp.evaluate()
        except ImportError as e:
            self._evals_ok = False
            self._eval_note = f"Quality metrics are not available ({e})."
        except Exception as e:   # a metric failing must not stop training
            log.warning("arena %s: evaluation failed: %s", self.arena_id, e)
            self._evals_ok = False
            self._eval_note = f"Quality metrics stopped ({_sentence(e)})."
        if step > 0 or not force:
            self._eval_cost = time.perf_counter() - t0
        self._last_eval_step, self._last_eval_t = step, time.perf_counter()
        self._eval_step = step

    def _publish(self, force: bool = False, samples: bool = True) -> None:
        now = time.perf_counter()
        if not force and now - self._last_publish < max(self._publish_every, self._publish_cost / OVERHEAD_SHARE):
            return
        view = self._build_view(samples=samples)
        self._publish_cost = time.perf_counter() - now
        with self._published:
            self._view = view
            self._published.notify_all()
        self._last_publish = time.perf_counter()

    def _build_view(self, samples: bool = True) -> ArenaView:
        cmp = self.cmp
        runs = []
        for r in cmp.runs:
            runs.append(RunView(r.variant, r.seed, r.step, r.error, r.solo.history.arrays(),    # the records:
                                r.solo.evals.arrays(), cmp.run_metrics(r)))                    # no weights needed
        table = tuple(cmp.table())
        winners = cmp.winners()
        old = getattr(self, "_view", None)
        sample_map: dict[str, np.ndarray | None] = {}
        readings: dict[str, str] = {}
        for v in cmp.variants:
            first = next(r for r in cmp.runs if r.variant == v.name)
            if samples or old is None:
                try:
                    with torch.no_grad():
                        s = first.trainer.samples()
                        if s is None:
                            s = first.trainer.reconstructions()
                    arr = _ro(s)
                    if arr is not None and not np.all(np.isfinite(arr)):
                        arr = None
                    sample_map[v.name] = arr
                except Exception as e:   # a broken model draws nothing rather than stopping the arena
                    log.debug("arena %s: samples of %s failed: %s", self.arena_id, v.name, e)
                    sample_map[v.name] = None
            else:
                sample_map[v.name] = old.samples.get(v.name)
            readings[v.name] = self._reading(first)
        with self._lock:
            self._version += 1
            state, message, version, sps = self._state, self._message, self._version, self._steps_per_s
        return ArenaView(
            arena_id=self.arena_id, state=state, message=message, step=self._min_step(), target=self.target,
            version=version, steps_per_s=sps, dataset=self._dataset, family=self.base.model.family,
            kind=self._kind, variants=tuple(v.name for v in cmp.variants), changes=dict(self.changes),
            seeds=tuple(cmp.seeds), runs=tuple(runs), samples=sample_map, real=self._real, readings=readings,
            table=table, winners=winners, n_modes=N_MODES.get(self._dataset), eval_step=self._eval_step,
            eval_note=self._eval_note)

    @staticmethod
    def _reading(r) -> str:
        if r.error:
            return "Diverged: " + r.error.split(": ", 1)[-1].split(". ")[0] + "."
        h = r.solo.history.arrays()
        if "loss_d" not in h or "loss_g" not in h:
            return ""
        try:
            prob = r.solo.cfg.objective.loss in PROB_LOSSES
            return metrics.reading(h["loss_d"], h["loss_g"], h.get("d_real") if prob else None,
                                   h.get("d_fake") if prob else None, steps=h["step"], diverged=False)
        except Exception:   # a reading is a nicety
            return ""


# ---- a process-wide store -------------------------------------------------------------------------------
class ArenaStore:
    """arena id -> ArenaRunner for one server process; frees arenas whose thread ended long ago."""

    def __init__(self, max_arenas: int = 8, keep_dead_s: float = GRACE_S):
        self.max_arenas = int(max_arenas)
        self.keep_dead_s = float(keep_dead_s)
        self._lock = threading.RLock()
        self._arenas: dict[str, ArenaRunner] = {}

    def create(self, base: RunConfig, variants: Iterable[Variant] = (), seeds: Iterable[int] = (0,),
               steps: int | None = None, replaces: str | None = None, owner: str | None = None,
               **kwargs: Any) -> ArenaRunner:
        """A new arena owned by `owner` (ConfigError / DataError propagate); `replaces` names an arena to stop
        first, when `owner` owns it (someone else's arena is left alone: the new one just does not show it)."""
        old = self.get(replaces)
        if old is not None and old.owned_by(owner):
            self.remove(old.arena_id)
        self.prune()
        with self._lock:
            if len(self._arenas) >= self.max_arenas:
                idle = sorted((a for a in self._arenas.values() if not a.view().active),
                              key=lambda a: a.last_touched)
                for a in idle[: len(self._arenas) - self.max_arenas + 1]:
                    self.remove(a.arena_id)
            if len(self._arenas) >= self.max_arenas:
                raise RuntimeError(f"This server already trains {self.max_arenas} comparisons; pause one or "
                                   f"wait a few minutes for idle ones to be freed.")
        arena = ArenaRunner(base, variants, seeds, steps, owner=owner, **kwargs)
        with self._lock:
            self._arenas[arena.arena_id] = arena
        return arena

    def fork(self, arena_id: str, owner: str | None = None, **kwargs: Any) -> ArenaRunner:
        """A new arena, owned by `owner`, whose runs go on from those of `arena_id` as they are now (weights,
        optimisers, histories; the same setup and plan, paused). The source is left as it was."""
        src = self.get(arena_id)
        if src is None:
            raise RuntimeError(f"The comparison {arena_id} is no longer on this server; there is nothing to copy.")
        variants = [v for v in src.cmp.variants if v.name != "base"]
        return self.create(src.base, variants, src.cmp.seeds, src.target, owner=owner, runs=src.copy_runs(),
                           **kwargs)

    def get(self, arena_id: str | None) -> ArenaRunner | None:
        if not arena_id:
            return None
        with self._lock:
            return self._arenas.get(arena_id)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._arenas)

    def __len__(self) -> int:
        with self._lock:
            return len(self._arenas)

    def remove(self, arena_id: str) -> bool:
        with self._lock:
            a = self._arenas.pop(arena_id, None)
        return a.stop() if a is not None else False

    def prune(self) -> list[str]:
        """Forget arenas whose thread has ended and nobody touched for `keep_dead_s`."""
        now = time.monotonic()
        with self._lock:
            gone = [k for k, a in self._arenas.items() if not a.alive and now - a.last_touched > self.keep_dead_s]
            for k in gone:
                self._arenas.pop(k)
        return gone

    def shutdown(self) -> None:
        for k in self.ids():
            self.remove(k)


def stop_all(timeout: float = JOIN_TIMEOUT_S) -> None:
    """Stop every live arena of this process (tests, interpreter shutdown)."""
    for a in list(_LIVE):
        a.stop(timeout)


__all__ = ["ArenaRunner", "ArenaView", "RunView", "ArenaStore", "describe_updates", "stop_all", "MAX_RUNS",
           "STATES", "FIELD_LABELS"]
