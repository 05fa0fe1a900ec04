"""Where live runs train: threads in this process (the default, ganae/runner.py) or Ray actors on a cluster.

    reg = Registry(placement=RayPlacement("127.0.0.1:6379"))   # or placement.from_env(): GANAE_RAY_ADDRESS
    r = reg.create(cfg)            # a RemoteRunner: a Ray actor hosting a ganae Runner, on whichever node has room
    r.play(); r.status(); r.snapshot(); r.pause(); r.step(5, "d"); r.reset(); r.call(fn); r.stop()

A `RemoteRunner` offers what pages use from a `Runner` -- the same commands, the same `RunStatus` and immutable
`Snapshot` objects (numpy arrays: they pickle) -- and forwards every call to its actor, a `RunHost`, which holds an
ordinary Runner: its thread trains there, on the worker's CPU (or a share of a GPU where the cluster has GPUs), and
the web server only draws pages. A snapshot crosses the network only when the run published a new one (the proxy
keeps the latest and asks with the version it has).

Admission is cluster-wide: one named actor (`ganae-admission`, no CPU) holds the training slots of every run of
every web-server replica, limit = the cluster's CPUs (or GPUs) unless told otherwise; queued runs wait in it, first
come first served, as they do in one process. Grace and reaping stay in the registry: a freed run's actor is
killed. A run whose actor or node is lost turns into state "error" with a sentence; reset() starts it again on a
new actor (same run id: the page's URL still finds it).
"""
from __future__ import annotations

import os
import re
import threading
import time
import types
from typing import Any, Callable

from . import cluster
from .config import RunConfig
from .live import Owned
from .runner import Admission, Runner, RunStatus, copy_payload
from .trainer import Snapshot, Trainer

ENV = "GANAE_RAY_ADDRESS"
ADMISSION_NAME, NAMESPACE = "ganae-admission", "ganae"
POLL_TTL_S = 0.05            # status() / snapshot() within this long of the last answer reuse it (a page calls both)
CALL_TIMEOUT_S = 30.0
LOST = ("The machine training this run was lost (its Ray worker or node stopped), so the run stopped at step "
        "{step:,}. Press Reset to start it again on another machine.")
# Runner options that make sense in an actor (a page-drawing gate and thread niceness belong to the web server)
REMOTE_OPTIONS = ("speed", "threads", "publish_every_s", "eval_every_steps", "eval_every_s", "good_every_steps",
                  "n_real")


def from_env() -> "RayPlacement | None":
    """A RayPlacement for GANAE_RAY_ADDRESS, or None (runs are threads in this process) when it is not set."""
    address = os.environ.get(ENV, "").strip()
    return RayPlacement(address) if address else None


# ---- cluster-wide admission --------------------------------------------------------------------------------
class _Ticket:
    """A run inside the admission actor: Admission's waiting list holds these (the Runner itself lives elsewhere and
    polls `holds` while queued, every 0.5 s)."""
    __slots__ = ("run_id", "_wake")

    def __init__(self, run_id: str):
        self.run_id, self._wake = run_id, threading.Event()


class AdmissionHost:
    """The Ray actor behind RemoteAdmission: an ordinary Admission over tickets keyed by run id."""

    def __init__(self, limit: int | None):
        self.adm, self.tickets = Admission(limit), {}

    def _t(self, run_id: str) -> _Ticket:
        return self.tickets.setdefault(run_id, _Ticket(run_id))

    def request(self, run_id: str) -> bool:
        return self.adm.request(self._t(run_id))

    def release(self, run_id: str) -> None:
        self.adm.release(self._t(run_id))
        self.tickets.pop(run_id, None)

    def holds(self, run_id: str) -> bool:
        return run_id in self.tickets and self.adm.holds(self.tickets[run_id])

    def position(self, run_id: str) -> int:
        return self.adm.position(self.tickets[run_id]) if run_id in self.tickets else 0

    def counts(self) -> tuple[int, int]:
        return self.adm.counts()

    def limit(self) -> int | None:
        return self.adm.limit

    def set_limit(self, limit: int | None) -> None:
        self.adm.set_limit(limit)


class RemoteAdmission:
    """Admission's interface (request / release / holds / position / counts / limit) over the named actor, for
    Runners inside RunHosts and for the registries of every replica alike."""

    def __init__(self, limit: int | None = None):
        ray = cluster._ray()
        self._ray = ray
        # on the head node, with the GCS: losing a worker node must not lose every run's slot
        self._actor = ray.remote(AdmissionHost).options(
            name=ADMISSION_NAME, namespace=NAMESPACE, get_if_exists=True, lifetime="detached", num_cpus=0,
            resources={"node:__internal_head__": 0.001}, max_restarts=-1, max_concurrency=1).remote(limit)

    def __reduce__(self):                     # into a RunHost: the handle is found again by name
        return (_admission_by_name, ())

    def _get(self, method: str, *args: Any) -> Any:
        return self._ray.get(getattr(self._actor, method).remote(*args), timeout=CALL_TIMEOUT_S)

    def request(self, runner: Any) -> bool:
        return self._get("request", runner.run_id)

    def release(self, runner: Any) -> None:
        self._get("release", runner.run_id)

    def holds(self, runner: Any) -> bool:
        return self._get("holds", runner.run_id)

    def position(self, runner: Any) -> int:
        return self._get("position", runner.run_id)

    def counts(self) -> tuple[int, int]:
        return tuple(self._get("counts"))

    @property
    def limit(self) -> int | None:
        return self._get("limit")

    def set_limit(self, limit: int | None) -> None:
        self._get("set_limit", limit)


def _admission_by_name() -> RemoteAdmission:
    adm = RemoteAdmission.__new__(RemoteAdmission)
    adm._ray = cluster._ray()
    adm._actor = adm._ray.get_actor(ADMISSION_NAME, namespace=NAMESPACE)
    return adm


# ---- one run on an actor -----------------------------------------------------------------------------------
class RunHost:
    """The Ray actor of one live run: a ganae Runner (its own training thread) and the calls a RemoteRunner makes.
    Threaded (max_concurrency > 1): status polls are answered while a long command (step(5000)) is in flight."""

    def __init__(self, source: RunConfig | dict[str, Any], factory: Callable[..., Trainer], run_id: str,
                 options: dict[str, Any]):
        if isinstance(source, dict):       # a run going on from a payload (a fork, a checkpoint opened)
            build = getattr(factory, "from_payload", None) or Trainer.from_payload
            source = build(source)
        self.runner = Runner(source, factory, run_id=run_id, admission=_admission_by_name(), **options)

    def poll(self, version: int) -> tuple[RunStatus, Snapshot | None]:
        """The status published with the latest snapshot (one frame: status.step == snapshot.step), and the
        snapshot only when it is newer than the caller's `version`."""
        status, snap = self.runner.frame()
        return status, (snap if status.version != version else None)

    def facts(self) -> dict[str, Any]:
        """What a page reads once per trainer: the first snapshot, the sample of real data, class names."""
        r = self.runner
        return {"initial": r.initial, "real": r.real, "cfg": r.cfg,
                "class_names": getattr(r.trainer.data, "class_names", None), "node": _node_id()}

    def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.runner, name)(*args, **kwargs)


def _last_error(text: str) -> str:
    """'...Traceback...\nDataError: no such folder' -> 'DataError: no such folder' (the last 'XError: ...' line)."""
    lines = [ln.strip() for ln in str(text).splitlines() if re.match(r"^\s*[\w.]*(Error|Exception): ", ln)]
    return (lines[-1] if lines else str(text).strip().splitlines()[-1] if str(text).strip() else "unknown")[:300]


def _node_id() -> str:
    return cluster._ray().get_runtime_context().get_node_id()


class RemoteRunner(Owned):
    """A Runner's interface over a RunHost actor (see the module docstring)."""

    def __init__(self, placement: "RayPlacement", source: RunConfig | Trainer, factory: Callable[..., Trainer],
                 run_id: str, options: dict[str, Any], owner: str | None = None):
        self.run_id, self._placement, self._factory, self._options = run_id, placement, factory, options
        self._owner = owner                 # checked here, in the web server, before any command leaves for Ray
        self._ray = cluster._ray()
        self._lock = threading.Lock()
        self._stopped = False
        self.created = time.time()
        if isinstance(source, Trainer):     # a built trainer travels as its payload (weights, optimiser, history)
            source = copy_payload(source.payload(note=f"run {run_id}"))
        self._start(source)                 # ConfigError / DataError from building the trainer reach the caller

    # ---- the actor ------------------------------------------------------------------------------------
    def _start(self, cfg: RunConfig | dict[str, Any]) -> None:
        """A new actor for this run (from a config, or a payload); one more try when the first one's node is lost
        while it starts."""
        if isinstance(cfg, RunConfig):
            cfg = cfg.validate()             # a ConfigError reaches the caller as it does with a local Runner
        for attempt in (1, 2):
            actor = self._placement.actor_class().remote(cfg, self._factory, self.run_id, self._options)
            try:
                facts = self._ray.get(actor.facts.remote(), timeout=self._placement.start_timeout_s)
                break
            except self._ray.exceptions.RayActorError as e:
                self._ray.kill(actor)
                if getattr(e, "_actor_init_failed", False):         # building the Runner raised (DataError, ...)
                    raise RuntimeError(f"The run could not start on the Ray cluster "
                                       f"({_last_error(getattr(e, 'error_msg', str(e)))}).") from None
                if attempt == 2:
                    raise RuntimeError("The run could not start: the Ray cluster lost the machine it was starting "
                                       "on, twice. Try again in a moment.") from None
            except self._ray.exceptions.GetTimeoutError:
                self._ray.kill(actor)
                raise RuntimeError(f"No machine of the Ray cluster had room for this run within "
                                   f"{self._placement.start_timeout_s:g} s; try again when other runs end.") from None
        self._actor, self._lost = actor, ""
        self._facts(facts)
        self._status, self._snap, self._t = None, facts["initial"], 0.0
        self._poll(force=True)

    def _facts(self, f: dict[str, Any]) -> None:
        self._cfg, self._initial, self._real, self.node = f["cfg"], f["initial"], f["real"], f["node"]
        self.trainer = types.SimpleNamespace(                 # what pages read off runner.trainer directly
            data=types.SimpleNamespace(class_names=f["class_names"]), step_count=f["initial"].step)

    def _poll(self, force: bool = False) -> None:
        with self._lock:
            if self._lost or (not force and time.monotonic() - self._t < POLL_TTL_S):
                return
            version = self._status.version if self._status is not None else -1
            try:
                status, snap = self._ray.get(self._actor.poll.remote(version), timeout=CALL_TIMEOUT_S)
            except self._ray.exceptions.GetTimeoutError:
                return                                         # keep the last answer; ask again next time
            except self._ray.exceptions.RayError:
                self._mark_lost()
                return
            self._status, self._t = status, time.monotonic()
            if snap is not None:
                self._snap = snap
                self.trainer.step_count = snap.step

    def _mark_lost(self) -> None:
        step = self._snap.step if self._snap is not None else 0
        self._lost = LOST.format(step=step)
        s = self._status
        self._status = RunStatus(self.run_id, "error", self._lost, step, s.target_steps if s else None, 0,
                                 s.speed if s else 0, 0.0, (s.version + 1) if s else 1, None, "")
        try:                                                   # its slot must not stay taken by a dead run
            self._placement.admission().release(self)
        except self._ray.exceptions.RayError:
            pass

    def _send(self, name: str, *args: Any, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> Any:
        if self._stopped:
            raise RuntimeError(f"run {self.run_id} has been stopped; start a new one")
        if self._lost:
            raise RuntimeError(self._lost)
        try:
            out = self._ray.get(self._actor.command.remote(name, *args, **kwargs), timeout=timeout + 5.0)
        except self._ray.exceptions.RayTaskError as e:       # the Runner raised: the caller gets that exception
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, BaseException) else e) from None
        except self._ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"run {self.run_id} did not answer '{name}' within {timeout:g} s") from None
        except self._ray.exceptions.RayError:
            with self._lock:
                self._mark_lost()
            raise RuntimeError(self._lost) from None
        self._poll(force=True)
        return out

    # ---- a Runner's interface ------------------------------------------------------------------------
    @property
    def cfg(self) -> RunConfig:
        return self._cfg

    @property
    def real(self):
        return self._real

    @property
    def initial(self) -> Snapshot:
        return self._initial

    @property
    def alive(self) -> bool:
        """Not stopped (a lost run stays in the registry, in state error, until its page resets it or leaves)."""
        return not self._stopped

    @property
    def state(self) -> str:
        return self.status().state

    def status(self) -> RunStatus:
        self._poll()
        return self._status

    def frame(self) -> tuple[RunStatus, Snapshot]:
        """The latest snapshot and the status published with it (as Runner.frame)."""
        self._poll()
        with self._lock:
            return self._status, self._snap


    def snapshot(self) -> Snapshot:
        self._poll()
        return self._snap

    def play(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "train")
        self._send("play")

    def pause(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "pause")
        self._send("pause")

    def step(self, n: int = 1, part: str = "both", wait: bool = True, timeout: float = 30.0,
             owner: str | None = None) -> None:
        self._check(owner, "step")
        self._send("step", n, part, timeout=timeout)

    def restore_last_good(self, wait: bool = True, owner: str | None = None) -> None:
        self._check(owner, "restore")
        self._send("restore_last_good")

    def set_speed(self, steps_per_redraw: int, frame_s: float | None = None, owner: str | None = None) -> None:
        self._check(owner, "change the speed of")
        self._send("set_speed", steps_per_redraw, frame_s)

    def call(self, fn: Callable[[Trainer], Any], timeout: float = 30.0) -> Any:
        return self._send("call", fn, timeout=timeout)

    def state_dict(self):
        return self._send("state_dict")

    def copy_trainer(self, timeout: float = 120.0) -> Trainer:
        """A local Trainer equal to this run's now (what Registry.fork starts a copy from)."""
        note = f"copy of run {self.run_id}"       # the function travels to the actor: it must not hold `self`
        payload = self.call(lambda t: copy_payload(t.payload(note=note)), timeout=timeout)
        build = getattr(self._factory, "from_payload", None) or Trainer.from_payload
        return build(payload)

    def reset(self, cfg: RunConfig | None = None, wait: bool = True, owner: str | None = None) -> None:
        """A new trainer from `cfg` (default: the same config). A lost run gets a new actor: it starts again."""
        self._check(owner, "reset")
        cfg = cfg if cfg is not None else self._cfg
        if self._lost:
            self._start(cfg)
            return
        self._send("reset", cfg)
        self._facts(self._ray.get(self._actor.facts.remote(), timeout=CALL_TIMEOUT_S))

    def wait_for(self, predicate: Callable[[RunStatus], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self.status()):
            if time.monotonic() > deadline:
                return False
            time.sleep(POLL_TTL_S)
        return True

    def wait_for_snapshot(self, past_step: int, timeout: float = 0.5) -> bool:
        self.wait_for(lambda s: self.snapshot().step > past_step or s.state != "running", timeout)
        return self.snapshot().step > past_step

    def stop(self, timeout: float = 5.0) -> bool:
        """Free the run: its training slot is given back and its actor killed, thread and all (the registry's
        reaper and remove() call this)."""
        if self._stopped:
            return True
        self._stopped = True
        try:
            self._placement.admission().release(self)
        except self._ray.exceptions.RayError:
            pass
        self._ray.kill(self._actor, no_restart=True)
        return True


# ---- the placement the registry uses ------------------------------------------------------------------------
class RayPlacement:
    """Registry(placement=...) makes its runs with `runner(...)` and counts with `admission(limit)`."""

    def __init__(self, address: str = "auto", actor_options: dict[str, Any] | None = None,
                 start_timeout_s: float = 120.0):
        self.address = address
        ray = cluster.connect(address)
        res = ray.cluster_resources()
        self.gpus = float(res.get("GPU", 0))
        self.cpus = int(res.get("CPU", 1))
        # a GPU cluster: runs share GPUs 8 to one (small models); otherwise each actor needs a CPU to be placed
        # (Ray's default: 1 CPU for scheduling, none held while running) and the admission limits training
        opts = {"num_gpus": 0.125} if self.gpus else {}
        self._actor_options = {"scheduling_strategy": "SPREAD", "max_concurrency": 4, **opts,
                               **(actor_options or {})}
        self.start_timeout_s = float(start_timeout_s)
        self.admission_ = None

    def actor_class(self):
        return cluster._ray().remote(RunHost).options(**self._actor_options)

    def admission(self, limit: int | None = None) -> RemoteAdmission:
        """The cluster-wide admission (limit -1: the cluster's GPUs × 8, else its CPUs; None: as it is)."""
        if self.admission_ is None:
            self.admission_ = RemoteAdmission(self._limit(limit))
            if limit is not None:                 # it may exist already (another replica): the same limit for all
                self.admission_.set_limit(self._limit(limit))
        return self.admission_

    def _limit(self, limit: int | None) -> int:
        return int(self.gpus * 8) or self.cpus if limit in (None, -1) else int(limit)

    def runner(self, source: RunConfig | Trainer, factory: Callable[..., Trainer] = Trainer, *, run_id: str,
               admission: Any = None, owner: str | None = None, **options: Any) -> RemoteRunner:
        kept = {k: v for k, v in options.items() if k in REMOTE_OPTIONS}
        return RemoteRunner(self, source, factory, run_id, kept, owner=owner)
