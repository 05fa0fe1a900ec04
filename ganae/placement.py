"""Where live runs train: threads in this process (the default, ganae/runner.py) or Ray actors on a cluster.

    reg = Registry(placement=RayPlacement("127.0.0.1:6379"))   # or placement.from_env(): GANAE_RAY_ADDRESS
    r = reg.create(cfg)            # a RemoteRunner: a ganae Runner inside a RunHost actor of the cluster
    r.play(); r.status(); r.snapshot(); r.pause(); r.step(5, "d"); r.reset(); r.call(fn); r.stop()

A `RemoteRunner` offers what pages use from a `Runner` -- the same commands, the same `RunStatus` and immutable
`Snapshot` objects (numpy arrays: they pickle) -- and forwards every call to its host, a `RunHost` actor holding
ordinary Runners by run id: their threads train there, on the node's CPU (or a share of a GPU where the cluster
has GPUs), and the web server only draws pages. A placement starts one host per CPU (GPU) of the cluster when it
is made, so a new run is a Trainer built in a warm process, not a new process importing torch. A snapshot crosses
the network only when the run published a new one (the proxy keeps the latest and asks with the version it has).

Admission is cluster-wide: one named actor (`ganae-admission`, no CPU) holds the training slots of every run of
every web-server replica, limit = the cluster's CPUs (or GPUs) unless told otherwise; queued runs wait in it, first
come first served, as they do in one process. Grace and reaping stay in the registry: a freed run is stopped and
dropped by its host. A run whose host or node is lost turns into state "error" with a sentence; reset() starts it
again on another host (same run id: the page's URL still finds it).
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
PROCESS_ENV = "GANAE_TRAIN_PROCESS"
ADMISSION_NAME, NAMESPACE = "ganae-admission", "ganae"
POLL_TTL_S = 0.05            # status() / snapshot() within this long of the last answer reuse it (a page calls both)
STATE_TTL_S = 1.0            # .state (the registry's counts of every run) within this long reuses the last answer
CALL_TIMEOUT_S = 30.0
LOST = ("The machine training this run was lost (its Ray worker or node stopped), so the run stopped at step "
        "{step:,}. Press Reset to start it again on another machine.")
# Runner options that make sense in an actor (a page-drawing gate and thread niceness belong to the web server)
REMOTE_OPTIONS = ("speed", "threads", "publish_every_s", "eval_every_steps", "eval_every_s", "good_every_steps",
                  "n_real")


class HostLost(RuntimeError):
    """The process hosting a run is gone: its Ray actor or node, or the training process beside the server."""


class HostRaised(RuntimeError):
    """A call raised inside the host; `cause` is the exception it raised there (None when it could not travel)."""

    def __init__(self, text: str, cause: BaseException | None = None):
        super().__init__(text)
        self.cause = cause


HOST_ERRORS = (HostLost, HostRaised, TimeoutError)


def _ray_get(ref: Any, timeout: float) -> Any:
    """ray.get, with Ray's errors as the three a placement's `call` raises (HostRaised, TimeoutError, HostLost)."""
    ray = cluster._ray()
    try:
        return ray.get(ref, timeout=timeout)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        raise HostRaised(_last_error(str(e)), cause if isinstance(cause, BaseException) else None) from None
    except ray.exceptions.GetTimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} s") from None
    except ray.exceptions.RayError as e:            # the actor died, its node was lost
        raise HostLost(_last_error(str(e))) from None


def from_env(cohorts: bool = False, nice: int = 0) -> "RayPlacement | Any | None":
    """A RayPlacement for GANAE_RAY_ADDRESS; else, with GANAE_TRAIN_PROCESS=1, a ProcessPlacement (runs train in
    a process of their own beside the server, ganae/local_host.py); else None (runs are threads in this process)."""
    address = os.environ.get(ENV, "").strip()
    if address:
        return RayPlacement(address, cohorts=cohorts)
    if os.environ.get(PROCESS_ENV, "0") == "1":
        from .local_host import ProcessPlacement
        return ProcessPlacement(cohorts=cohorts, nice=nice)
    return None


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
        return _ray_get(getattr(self._actor, method).remote(*args), CALL_TIMEOUT_S)

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


# ---- the runs of a host actor ---------------------------------------------------------------------------
class RunHost:
    """A Ray actor hosting live runs: a ganae Runner per run (each its own training thread, as in one web server),
    and the calls RemoteRunners make, by run id. A placement keeps one host per CPU (or GPU) of the cluster and
    starts them with itself, so a new run costs a Trainer built in a warm process (a fraction of a second), not a
    new Python importing torch (3-20 s on a busy core). Threaded (max_concurrency > 1): status polls are answered
    while a long command (step(5000)) is in flight."""

    def __init__(self, cohorts: bool = False, cohort_size: int | None = None, cohort_slice_s: float | None = None,
                 admission: Any = None, node: str | None = None, nice: int = 0):
        # admission: the cluster-wide one (a Ray actor, by name) unless given (ganae/local_host.py: a plain Admission
        # in its process); node: what facts() say the run trains on (default: the Ray node's id)
        self.runners: dict[str, Runner] = {}
        self._lock = threading.Lock()
        self._admission, self.node = admission, node
        # class cohorts (ganae/cohort.py) inside this host: its runs of one structure train as one Ensemble, a
        # cohort holding one slot of the cluster-wide admission
        self.pool = None
        if cohorts:
            from . import cohort
            if cohort_slice_s is not None:         # (this process hosts this placement's runs alone)
                cohort.SLICE_S = float(cohort_slice_s)
            self.pool = cohort.Cohorts(self.admission, cohort_size or cohort.MAX_MEMBERS, nice=nice)
        self._warm_up()

    @property
    def admission(self) -> Any:
        if self._admission is None:        # found by name when first needed (the placement makes it after its hosts)
            self._admission = _admission_by_name()
        return self._admission

    @staticmethod
    def _warm_up() -> None:
        """Build a small run and step it once, so the modules, data makers and kernels a first run needs are loaded
        before it comes (on a busy core that first build would take seconds)."""
        try:
            t = Trainer(RunConfig().with_updates(**{"train.steps": 2, "train.device": "cpu"}))
            t.step(2)
        except Exception:        # an optimisation, never a reason for the host not to start
            pass

    def ready(self) -> str:
        """The node this host is on (the placement waits for this once: the host has started)."""
        return self.node or _node_id()

    def start(self, run_id: str, source: RunConfig | dict[str, Any], factory: Callable[..., Trainer],
              options: dict[str, Any]) -> dict[str, Any]:
        """A new run (replacing one of that id: Reset of a lost run) from a config or a payload (a fork, a
        checkpoint opened); its facts."""
        if isinstance(source, dict):
            build = getattr(factory, "from_payload", None) or Trainer.from_payload
            source = build(source)
        runner = Runner(source, factory, run_id=run_id, admission=self.admission, pool=self.pool, **options)
        with self._lock:
            old = self.runners.pop(run_id, None)
            self.runners[run_id] = runner
        if old is not None:
            old.stop()
        return self.facts(run_id)

    def _runner(self, run_id: str) -> Runner:
        try:
            return self.runners[run_id]
        except KeyError:
            raise RuntimeError(f"run {run_id} is not on this machine any more") from None

    def poll(self, run_id: str, version: int) -> tuple[RunStatus, Snapshot | None]:
        """The status published with the latest snapshot (one frame: status.step == snapshot.step), and the
        snapshot only when it is newer than the caller's `version`."""
        status, snap = self._runner(run_id).frame()
        return status, (snap if status.version != version else None)

    def facts(self, run_id: str) -> dict[str, Any]:
        """What a page reads once per trainer: the first snapshot, the sample of real data, class names."""
        r = self._runner(run_id)
        return {"initial": r.initial, "real": r.real, "cfg": r.cfg,
                "class_names": getattr(r.trainer.data, "class_names", None), "node": self.node or _node_id()}

    def command(self, run_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._runner(run_id), name)(*args, **kwargs)

    def stop(self, run_id: str) -> bool:
        """Free a run: its training thread stops and joins, its memory goes with it."""
        with self._lock:
            runner = self.runners.pop(run_id, None)
        return True if runner is None else runner.stop()

    def runs(self) -> list[str]:
        return sorted(self.runners)

    def threads(self) -> list[str]:
        """The names of the runner and cohort threads alive in this host's process (monitoring, tests)."""
        from .cohort import cohort_threads
        from .runner import runner_threads
        return runner_threads() + cohort_threads()

    def cohorts(self) -> dict[str, Any]:
        """The cohorts training in this host now (Cohorts.stats), or {} without cohorts."""
        return self.pool.stats() if self.pool is not None else {}


def _last_error(text: str) -> str:
    """'...Traceback...\nDataError: no such folder' -> 'DataError: no such folder' (the last 'XError: ...' line)."""
    lines = [ln.strip() for ln in str(text).splitlines() if re.match(r"^\s*[\w.]*(Error|Exception): ", ln)]
    return (lines[-1] if lines else str(text).strip().splitlines()[-1] if str(text).strip() else "unknown")[:300]


def _kind(source: RunConfig | dict[str, Any]) -> tuple | None:
    """The structure of a run (ensemble.structure: what a cohort batches), from its config or its payload's; None
    when it cannot be told."""
    from .ensemble import structure
    try:
        cfg = source if isinstance(source, RunConfig) else RunConfig.from_dict(source["config"])
        return structure(cfg)
    except Exception:
        return None


def _node_id() -> str:
    return cluster._ray().get_runtime_context().get_node_id()


class RemoteRunner(Owned):
    """A Runner's interface over a RunHost (see the module docstring): a Ray actor, or the training process of a
    ProcessPlacement (ganae/local_host.py). It speaks to its host only through `placement.call(host, method, ...)`,
    which raises HostRaised, TimeoutError or HostLost."""

    def __init__(self, placement: Any, source: RunConfig | Trainer, factory: Callable[..., Trainer],
                 run_id: str, options: dict[str, Any], owner: str | None = None):
        self.run_id, self._placement, self._factory, self._options = run_id, placement, factory, options
        self._owner = owner                 # checked here, in the web server, before any command leaves it
        self._lock = threading.Lock()
        self._stopped = False
        self.created = time.time()
        if isinstance(source, Trainer):     # a built trainer travels as its payload (weights, optimiser, history)
            source = copy_payload(source.payload(note=f"run {run_id}"))
        self._start(source)                 # ConfigError / DataError from building the trainer reach the caller

    # ---- the actor ------------------------------------------------------------------------------------
    def _start(self, cfg: RunConfig | dict[str, Any]) -> None:
        """This run on a host of the placement (the least busy one), from a config or a payload; one more try on
        another host when the first one turns out lost."""
        if isinstance(cfg, RunConfig):
            cfg = cfg.validate()             # a ConfigError reaches the caller as it does with a local Runner
        self._kind = _kind(cfg)
        for attempt in (1, 2):
            host = self._placement.host(self._kind)
            try:
                facts = self._placement.call(host, "start", self.run_id, cfg, self._factory, self._options,
                                             timeout=self._placement.start_timeout_s)
                break
            except HostRaised as e:                               # building the Runner raised (DataError, ...)
                if isinstance(e.cause, Exception):
                    raise e.cause from None
                raise RuntimeError(f"The run could not start on {self._placement.where} ({e}).") from None
            except HostLost:
                self._placement.lost(host)
                if attempt == 2:
                    raise RuntimeError(f"The run could not start: {self._placement.where} lost the machine it was "
                                       f"starting on, twice. Try again in a moment.") from None
            except TimeoutError:
                raise RuntimeError(f"No machine of {self._placement.where} had room for this run within "
                                   f"{self._placement.start_timeout_s:g} s; try again when other runs end.") from None
        self._actor, self._lost = host, ""
        self._placement.placed(host, +1, self._kind)
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
                status, snap = self._placement.call(self._actor, "poll", self.run_id, version, timeout=CALL_TIMEOUT_S)
            except TimeoutError:
                return                                         # keep the last answer; ask again next time
            except HostRaised:                                 # its host answers but no longer has it
                self._mark_lost(host_gone=False)
                return
            except HostLost:
                self._mark_lost()
                return
            self._status, self._t = status, time.monotonic()
            if snap is not None:
                self._snap = snap
                self.trainer.step_count = snap.step

    def _mark_lost(self, host_gone: bool = True) -> None:
        if host_gone:
            self._placement.lost(self._actor)
        step = self._snap.step if self._snap is not None else 0
        self._lost = self._placement.lost_text.format(step=step)
        s = self._status
        self._status = RunStatus(self.run_id, "error", self._lost, step, s.target_steps if s else None, 0,
                                 s.speed if s else 0, 0.0, (s.version + 1) if s else 1, None, "")
        try:                                                   # its slot must not stay taken by a dead run
            self._placement.admission().release(self)
        except HOST_ERRORS:
            pass

    def _send(self, name: str, *args: Any, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> Any:
        if self._stopped:
            raise RuntimeError(f"run {self.run_id} has been stopped; start a new one")
        if self._lost:
            raise RuntimeError(self._lost)
        try:
            out = self._placement.call(self._actor, "command", self.run_id, name, *args, timeout=timeout + 5.0,
                                       **kwargs)
        except HostRaised as e:                              # the Runner raised: the caller gets that exception
            raise (e.cause if e.cause is not None else RuntimeError(str(e))) from None
        except TimeoutError:
            raise TimeoutError(f"run {self.run_id} did not answer '{name}' within {timeout:g} s") from None
        except HostLost:
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
        """The state last heard, asked again when older than STATE_TTL_S: the registry counts every run's state for
        every page's sidebar, which must not cost a call per run per redraw (pages call status() for their own run)."""
        if self._status is None or time.monotonic() - self._t >= STATE_TTL_S:
            self._poll()
        return self._status.state

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
            self._placement.placed(self._actor, -1, self._kind)
            self._start(cfg)
            return
        self._send("reset", cfg)
        kind = _kind(cfg)
        self._placement.placed(self._actor, -1, self._kind)
        self._placement.placed(self._actor, +1, kind)
        self._kind = kind
        self._facts(self._placement.call(self._actor, "facts", self.run_id, timeout=CALL_TIMEOUT_S))

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
        """Free the run: its training slot is given back and its Runner stopped and dropped by its host, thread
        and all (the registry's reaper and remove() call this). True when the host confirmed it in `timeout`."""
        if self._stopped:
            return True
        self._stopped = True
        self._placement.placed(self._actor, -1, self._kind)
        try:
            self._placement.admission().release(self)
        except HOST_ERRORS:
            pass
        if self._lost:
            return True
        try:
            return bool(self._placement.call(self._actor, "stop", self.run_id, timeout=timeout))
        except HOST_ERRORS:                              # its host is gone: so is the run
            return True


# ---- the placement the registry uses ------------------------------------------------------------------------
class RayPlacement:
    """Registry(placement=...) makes its runs with `runner(...)` and counts with `admission(limit)`.

    It starts `hosts` RunHost actors (default: one per CPU of the cluster, or per GPU where it has GPUs), spread
    over the nodes, and waits until they are up; a new run goes to the host with the fewest runs of this placement.
    With `cohorts`, every host trains its runs of one structure as class cohorts (ganae/cohort.py), and a new run
    goes to a host that has runs of its structure already (up to a cohort's size), so a class's runs batch. A host
    found lost (its node stopped) is replaced by a new one when the next run needs it. Hosts belong to the process
    that made the placement (a web-server replica): when it ends, Ray ends its hosts and their runs."""

    def __init__(self, address: str = "auto", actor_options: dict[str, Any] | None = None,
                 start_timeout_s: float = 120.0, hosts: int | None = None, cohorts: bool = False,
                 cohort_size: int | None = None, cohort_slice_s: float | None = None):
        self.address = address
        ray = cluster.connect(address)
        res = ray.cluster_resources()
        self.gpus = float(res.get("GPU", 0))
        self.cpus = int(res.get("CPU", 1))
        # a GPU cluster: hosts share GPUs 8 to one (small models); otherwise each host needs a CPU to be placed
        # (Ray's default: 1 CPU for scheduling, none held while running) and the admission limits training
        opts = {"num_gpus": 0.125} if self.gpus else {}
        self._actor_options = {"scheduling_strategy": "SPREAD", "max_concurrency": 64, **opts,
                               **(actor_options or {})}
        self.start_timeout_s = float(start_timeout_s)
        self.admission_ = None
        self.n_hosts = int(hosts) if hosts else max(1, int(self.gpus) or self.cpus)
        self._hosts: list[Any] = []                      # actor handles
        self._load: dict[Any, int] = {}                  # host -> runs of this placement on it
        self._kinds: dict[Any, dict[tuple, int]] = {}    # host -> structure -> runs of it there
        self.cohorts, self.cohort_size, self.cohort_slice_s = bool(cohorts), cohort_size, cohort_slice_s
        self._hosts_lock = threading.Lock()
        with self._hosts_lock:
            while len(self._hosts) < self.n_hosts:
                self._new_host()
        try:                  # ready before the first run: a host's start (a Python importing torch) is seconds
            ray.get([h.ready.remote() for h in self._hosts], timeout=self.start_timeout_s)
        except ray.exceptions.RayError:
            pass              # a host that did not start is found lost by the first run sent to it, and replaced

    where = "the Ray cluster"
    lost_text = LOST

    def call(self, host: Any, method: str, *args: Any, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> Any:
        """`host.method(*args, **kwargs)` in its actor; HostRaised / TimeoutError / HostLost as it ends."""
        return _ray_get(getattr(host, method).remote(*args, **kwargs), timeout)

    def actor_class(self):
        return cluster._ray().remote(RunHost).options(**self._actor_options)

    def _new_host(self) -> Any:
        host = self.actor_class().remote(self.cohorts, self.cohort_size, self.cohort_slice_s)
        self._hosts.append(host)
        self._load[host] = 0
        self._kinds[host] = {}
        return host

    def host(self, kind: tuple | None = None) -> Any:
        """The host for a new run of structure `kind`: with cohorts, one whose runs of that structure do not fill a
        cohort yet (the one with most of them: one cohort, not several half-full); else the least busy one. A lost
        host is replaced first."""
        from .cohort import MAX_MEMBERS
        with self._hosts_lock:
            while len(self._hosts) < self.n_hosts:
                self._new_host()
            if self.cohorts and kind is not None:
                size = self.cohort_size or MAX_MEMBERS
                same = [h for h in self._hosts if 0 < self._kinds[h].get(kind, 0) < size]
                if same:
                    return max(same, key=lambda h: self._kinds[h][kind])
            return min(self._hosts, key=lambda h: self._load[h])

    def placed(self, host: Any, n: int, kind: tuple | None = None) -> None:
        with self._hosts_lock:
            if host in self._load:
                self._load[host] = max(0, self._load[host] + n)
                if kind is not None:
                    k = self._kinds[host]
                    k[kind] = max(0, k.get(kind, 0) + n)

    def lost(self, host: Any) -> None:
        """`host` stopped answering (its node or process is gone): new runs go elsewhere, a new host takes its
        place when a run needs it."""
        with self._hosts_lock:
            if host in self._load:
                self._hosts.remove(host)
                del self._load[host]
                self._kinds.pop(host, None)
        try:
            cluster._ray().kill(host, no_restart=True)
        except Exception:
            pass

    def hosts(self) -> list[Any]:
        with self._hosts_lock:
            return list(self._hosts)

    def cohort_stats(self) -> dict[str, Any]:
        """The cohorts training in this placement's hosts now, as Cohorts.stats (monitoring); a host that does
        not answer within a second is left out."""
        ray = cluster._ray()
        out: dict[str, Any] = {"cohorts": 0, "members": [], "admitted": []}
        for ref in [h.cohorts.remote() for h in self.hosts()]:
            try:
                c = ray.get(ref, timeout=1.0)
            except ray.exceptions.RayError:
                continue
            out["cohorts"] += c.get("cohorts", 0)
            out["members"] += c.get("members", [])
            out["admitted"] += c.get("admitted", [])
        return out

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
