"""Live runs in a training process of their own, beside the web server on the same machine (no Ray).

    place = ProcessPlacement(cohorts=True)     # the dashboard: GANAE_TRAIN_PROCESS=1 (placement.from_env)
    reg = Registry(placement=place)            # reg.create(cfg) -> a RemoteRunner; its Runner trains in the process
    place.close()                              # the process stops (it also stops when the server does)

Why: a web server is one Python process, and Python runs one thread of it at a time (the GIL). With a class on one
server, the training threads (or a cohort's) and 20-30 pages take turns on that one lock: each torch op lets it go
and must win it back, so on a busy core a cohort's member-step costs twice its CPU (README "Serving a class"), and
every click waits behind training's turns. In a process of its own, training shares the CPU through the OS
scheduler instead -- its threads `nice` (GANAE_TRAIN_NICE) below the pages, so a click comes first and training
takes the rest at full speed -- and a page's question to a run is a message.

It is RayPlacement's design on one machine (ganae/placement.py): the same RunHost (a Runner per run, class cohorts)
lives in the child process with a plain Admission; the same RemoteRunner stands for each run in the web server;
`call(host, method, ...)` is a message over a socket pair, cloudpickled to the child (a page's `runner.call(lambda
t: ...)` travels) and pickled back (`answer_bytes`), answered on a thread of the child so a long command does not
hold up status polls. The child is started with `python -c` (not multiprocessing: the server's __main__ is not
imported again), warms up before the first run, and exits when the server does: the server's end of the socket is
its alone (not inherited), so it closes when the server ends however it ends. (Not PR_SET_PDEATHSIG: it fires when
the *thread* that started the child ends, and the registry is made on a page's or the startup's thread.) A run whose
process died turns into state "error" with a sentence; Reset starts it again in a new process.
"""
from __future__ import annotations

import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import cloudpickle

from .config import RunConfig
from .placement import (CALL_TIMEOUT_S, HOST_ERRORS, REMOTE_OPTIONS, AdmissionHost, HostLost, HostRaised, RemoteRunner,
                        RunHost)
from .trainer import Trainer

log = logging.getLogger(__name__)

LOST = ("The training process stopped (it crashed or was killed), so this run stopped at step {step:,}. Press Reset "
        "to start it again in a new one.")
COUNTS_TTL_S = 0.5               # the admission's counts, as the web server reuses them
START_TIMEOUT_S = 120.0          # a new process imports torch and warms up: seconds, more on a busy core
ROOT = Path(__file__).resolve().parent.parent      # the folder holding ganae/ (the child imports it from there)


def answer_bytes(answer: Any) -> bytes:
    """An answer of the training process as bytes: plain pickle when it can (the answers are data -- statuses,
    snapshots, payloads -- and the C pickler is ~5x faster than cloudpickle's on a snapshot: 75 vs 350 us, for every
    redraw of every page), cloudpickle for what only it can carry (a function made at run time). Both are read by
    pickle.loads. (Requests stay cloudpickled: a page's function defined in its script lives in the server's
    __main__, which plain pickle would name but the child could not find.)"""
    try:
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return cloudpickle.dumps(answer)


# ---- one socket, many callers --------------------------------------------------------------------------------
class Channel:
    """Calls over one connection: any thread may call and wait for its answer; a reader thread hands every answer
    to its caller. A message is pickle((id, cloudpickle(payload))), so a payload that cannot be read is still
    answered (with an error) instead of leaving its caller waiting."""

    def __init__(self, conn: Connection, name: str = "ganae-host-channel"):
        self.conn = conn
        self.closed = False
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, list] = {}           # id -> [Event, (kind, value)]
        # message 0 is the other side's hello (the child: started and warm), before any call is answered
        self.hello: list = [threading.Event(), None]
        self._waiting[0] = self.hello
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def call(self, target: str, method: str, args: tuple, kwargs: dict, timeout: float) -> Any:
        if self.closed:
            raise HostLost("the training process has stopped")
        i = next(self._ids)
        slot: list = [threading.Event(), None]
        try:
            data = pickle.dumps((i, cloudpickle.dumps((target, method, args, kwargs))))
        except Exception as e:
            raise TypeError(f"'{method}' cannot be sent to the training process ({type(e).__name__}: {e})") from None
        with self._lock:
            self._waiting[i] = slot
        try:
            with self._send_lock:
                self.conn.send_bytes(data)
        except (OSError, ValueError):
            self.close()
        if not slot[0].wait(timeout):
            with self._lock:
                self._waiting.pop(i, None)
            raise TimeoutError(f"the training process did not answer '{method}' within {timeout:g} s")
        kind, value = slot[1]
        if kind == "ok":
            return value
        if kind == "lost":
            raise HostLost(value)
        raise HostRaised(f"{type(value).__name__}: {value}", value if isinstance(value, BaseException) else None)

    def _read(self) -> None:
        while True:
            try:
                i, blob = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
                break
            try:
                answer = cloudpickle.loads(blob)
            except Exception as e:
                answer = ("err", RuntimeError(f"the training process's answer could not be read ({e})"))
            with self._lock:
                slot = self._waiting.pop(i, None)
            if slot is not None:
                slot[1] = answer
                slot[0].set()
        self.close()

    def close(self) -> None:
        with self._lock:
            self.closed = True
            waiting, self._waiting = list(self._waiting.values()), {}
        for slot in waiting:
            slot[1] = ("lost", "the training process has stopped")
            slot[0].set()
        try:
            self.conn.close()
        except OSError:
            pass


# ---- the child process -----------------------------------------------------------------------------------------
class _AdmissionById(AdmissionHost):
    """What the web server asks the child's Admission, by run id (its runs are objects in the child; counts, limit
    and set_limit as AdmissionHost answers them). A holder that lives in the web server itself -- an Arena's
    comparison, which trains there (ArenaRunner.run_id) -- takes its slot as a ticket, as on Ray."""

    def __init__(self, adm: Any, host: RunHost):
        self.adm, self.host, self.tickets = adm, host, {}

    def _holder(self, run_id: str) -> Any:
        r = self.host.runners.get(run_id)
        return r if r is not None else self.tickets.get(run_id)

    def request(self, run_id: str) -> bool:
        r = self.host.runners.get(run_id)
        return self.adm.request(r if r is not None else self._t(run_id))

    def release(self, run_id: str) -> None:
        r = self._holder(run_id)
        if r is not None:
            self.adm.release(r)
        self.tickets.pop(run_id, None)

    def holds(self, run_id: str) -> bool:
        r = self._holder(run_id)
        return r is not None and self.adm.holds(r)

    def position(self, run_id: str) -> int:
        r = self._holder(run_id)
        return self.adm.position(r) if r is not None else 0


def serve(fd: int, options_hex: str) -> None:
    """The child: a RunHost and its Admission behind the socket `fd`, until the server closes it."""
    opts = pickle.loads(bytes.fromhex(options_hex))
    import torch
    torch.set_num_threads(max(1, int(opts.get("threads", 1))))
    from .live import name_os_thread
    from .runner import Admission
    name_os_thread("ganae-train")
    conn = Connection(fd)
    adm = Admission(opts.get("limit"))
    host = RunHost(opts.get("cohorts", False), opts.get("cohort_size"), opts.get("cohort_slice_s"), admission=adm,
                   node=f"training process {os.getpid()}", nice=int(opts.get("nice", 0)))
    targets = {"host": host, "admission": _AdmissionById(adm, host)}
    lock = threading.Lock()

    def send(i: int, answer: tuple) -> None:
        try:
            blob = answer_bytes(answer)
        except Exception as e:                     # an answer that cannot travel: say what it was
            blob = cloudpickle.dumps(("err", RuntimeError(f"the answer could not be sent ({type(e).__name__}: "
                                                          f"{e})")))
        with lock:
            conn.send_bytes(pickle.dumps((i, blob)))

    def answer(i: int, blob: bytes) -> None:
        try:
            target, method, args, kwargs = cloudpickle.loads(blob)
            out = ("ok", getattr(targets[target], method)(*args, **kwargs))
        except BaseException as e:                 # the caller gets it (HostRaised with this cause)
            out = ("err", e)
        try:
            send(i, out)
        except (OSError, ValueError):              # the server is gone
            pass

    send(0, ("ok", host.ready()))                  # started and warm: the placement waits for this
    calls = ThreadPoolExecutor(max_workers=64, thread_name_prefix="ganae-host-call")
    while True:
        try:
            i, blob = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            break
        calls.submit(answer, i, blob)
    for run_id in host.runs():                     # the server closed the socket (it ended): stop every run
        try:
            host.stop(run_id)
        except Exception:
            pass
    os._exit(0)


# ---- the placement the registry uses ---------------------------------------------------------------------------
class TrainingProcess:
    """One child process and its channel (a "host" to RemoteRunner)."""

    def __init__(self, options: dict[str, Any], start_timeout_s: float):
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)}
        code = f"from ganae.local_host import serve; serve({theirs.fileno()}, {pickle.dumps(options).hex()!r})"
        self.proc = subprocess.Popen([sys.executable, "-c", code], pass_fds=(theirs.fileno(),), env=env,
                                     cwd=str(ROOT), stdin=subprocess.DEVNULL)
        theirs.close()
        self.channel = Channel(Connection(ours.detach()), name=f"ganae-host-channel-{self.proc.pid}")
        hello = self.channel.hello                 # the child's first message: up and warm
        if not hello[0].wait(start_timeout_s) or hello[1] is None or hello[1][0] != "ok":
            self.close(timeout=1.0)
            why = f"did not start within {start_timeout_s:g} s" if hello[1] is None else f"stopped ({hello[1][1]})"
            raise HostLost(f"the training process {why}")
        self.node = hello[1][1]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return not self.channel.closed and self.proc.poll() is None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the process: its socket closes, it stops its runs and exits; killed if it does not within `timeout`."""
        self.channel.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


class ProcessPlacement:
    """Registry(placement=...): runs train in one process beside this one, on this machine (see the module
    docstring). `cohorts`: its runs of one structure train as class cohorts (ganae/cohort.py); `nice`: its training
    threads run this much nicer than everything else (pages first); `limit` of the admission: as the registry
    asks (-1: the number of cores)."""

    where = "the training process"
    lost_text = LOST

    def __init__(self, cohorts: bool = False, nice: int = 0, threads: int = 1, cohort_size: int | None = None,
                 cohort_slice_s: float | None = None, start_timeout_s: float = START_TIMEOUT_S):
        self.cohorts = bool(cohorts)
        self.start_timeout_s = float(start_timeout_s)
        self._options = {"cohorts": self.cohorts, "cohort_size": cohort_size, "cohort_slice_s": cohort_slice_s,
                         "nice": int(nice), "threads": int(threads), "limit": os.cpu_count() or 1}
        self._lock = threading.Lock()
        self._proc: TrainingProcess | None = None
        self._admission: _AdmissionProxy | None = None
        self.started = 0                          # processes started (a lost one is replaced when a run needs it)
        self.host()

    # ---- the process -------------------------------------------------------------------------------------------
    def host(self, kind: tuple | None = None) -> TrainingProcess:
        """The training process, started (again) when there is none alive."""
        with self._lock:
            if self._proc is None or not self._proc.alive:
                if self._proc is not None:
                    self._proc.close(timeout=1.0)
                self._proc = TrainingProcess(self._options, self.start_timeout_s)
                self.started += 1
            return self._proc

    @property
    def pid(self) -> int | None:
        p = self._proc
        return p.pid if p is not None and p.alive else None

    def call(self, host: TrainingProcess, method: str, *args: Any, timeout: float = CALL_TIMEOUT_S,
             **kwargs: Any) -> Any:
        """`RunHost.method(*args, **kwargs)` in that process; HostRaised / TimeoutError / HostLost as it ends."""
        return host.channel.call("host", method, args, kwargs, timeout)

    def placed(self, host: Any, n: int, kind: tuple | None = None) -> None:
        pass                                      # one process: nothing to balance

    def lost(self, host: TrainingProcess) -> None:
        """`host` stopped answering: make sure it is gone; the next run starts a new one."""
        host.close(timeout=1.0)

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.close()

    # ---- what the registry asks --------------------------------------------------------------------------------
    def admission(self, limit: int | None = None) -> "_AdmissionProxy":
        """The training process's Admission (limit -1: the number of cores; None: as it is)."""
        if self._admission is None:
            self._admission = _AdmissionProxy(self)
        if limit is not None:
            n = (os.cpu_count() or 1) if limit == -1 else int(limit)
            self._options["limit"] = n            # (a new process after a lost one starts with it too)
            self._admission.set_limit(n)
        return self._admission

    def runner(self, source: RunConfig | Trainer, factory: Callable[..., Trainer] = Trainer, *, run_id: str,
               admission: Any = None, owner: str | None = None, **options: Any) -> RemoteRunner:
        kept = {k: v for k, v in options.items() if k in (*REMOTE_OPTIONS, "nice")}
        return RemoteRunner(self, source, factory, run_id, kept, owner=owner)

    def cohort_stats(self) -> dict[str, Any]:
        """The cohorts training in the process now (Cohorts.stats); {} when it does not answer within a second."""
        try:
            return self.call(self.host(), "cohorts", timeout=1.0)
        except HOST_ERRORS:
            return {}

    def threads(self) -> list[str]:
        """The runner and cohort threads alive in the training process (monitoring, tests)."""
        return self.call(self.host(), "threads", timeout=5.0)


class _AdmissionProxy:
    """Admission's interface in the web server (the registry's counts, a run's slot given back) over the process's
    Admission, by run id. A process that does not answer counts as holding nothing."""

    def __init__(self, placement: ProcessPlacement):
        self._placement = placement
        self._counts: tuple[float, tuple[int, int]] = (-1e9, (0, 0))     # (when, answer) of the last counts()

    def _ask(self, method: str, *args: Any, default: Any = None) -> Any:
        p = self._placement._proc
        if p is None or not p.alive:
            return default
        try:
            return p.channel.call("admission", method, args, {}, CALL_TIMEOUT_S)
        except HOST_ERRORS:
            return default

    def request(self, runner: Any) -> bool:
        return bool(self._ask("request", runner.run_id, default=False))

    def release(self, runner: Any) -> None:
        self._ask("release", runner.run_id)

    def holds(self, runner: Any) -> bool:
        return bool(self._ask("holds", runner.run_id, default=False))

    def position(self, runner: Any) -> int:
        return int(self._ask("position", runner.run_id, default=0))

    def counts(self) -> tuple[int, int]:
        """(training, queued); an answer younger than COUNTS_TTL_S is reused (every page's sidebar shows it)."""
        t, out = self._counts
        if time.monotonic() - t >= COUNTS_TTL_S:
            out = tuple(self._ask("counts", default=(0, 0)))
            self._counts = (time.monotonic(), out)
        return out

    @property
    def limit(self) -> int | None:
        """As set through this proxy (ProcessPlacement.admission): the registry's counts read it on every sidebar."""
        return self._placement._options["limit"]

    def set_limit(self, limit: int | None) -> None:
        self._ask("set_limit", limit)


__all__ = ["ProcessPlacement", "TrainingProcess", "Channel", "LOST"]
