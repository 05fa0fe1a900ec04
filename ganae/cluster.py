"""Past one machine: sweeps as Ray tasks, and a Ray cluster on this machine for tests and measurements.

    cmp = cluster.sweep(base, variants, seeds=range(4), steps=3000, address="127.0.0.1:6379")
    cmp.table()                  # the same rows as Comparison(base, variants, seeds).step(3000) on one machine
    cmp.write("out/")            # the same table.csv, histories.csv, losses.png, samples.png

Each (variant, seed group) is one Ray task that runs `train_part`: a `Comparison(..., only=variant)` of those seeds,
stepped and evaluated by exactly the code a local comparison uses (it becomes an ensemble wherever compare.py makes
one). It returns each run as a checkpoint payload (tensors on the CPU); the driver rebuilds the trainers and gathers
them into one Comparison, so the table, CSVs and PNGs are those of a local run with the same seeds -- only the
timing column (ms_per_step) differs. A task whose worker or node is lost is retried once by Ray (max_retries=1);
one lost twice is named in the table (columns `failed`, `note`) and the other variants still report.

    with LocalCluster(nodes=2, cpus_per_node=1) as c:     # `ray start --head` + `ray start --address` on 127.0.0.1
        cluster.sweep(..., address=c.address)

Ray is imported only here and in placement.py, and only when asked for: one machine without Ray stays the default.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from . import device as device_mod
from .compare import Comparison, Run, Variant
from .config import RunConfig
from .trainer import Trainer

CRASH_ENV = "GANAE_RAY_CRASH"     # tests: a folder of crash counts (see _maybe_crash)
CONNECT_TIMEOUT_S = 3.0
OBJECT_STORE_BYTES = 200_000_000    # per node of a LocalCluster (snapshots and payloads are small)


class ClusterError(Exception):
    """No usable Ray cluster: a sentence for the user (the CLI prints it, exit code 2)."""


def _ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed here; install it with `.venv/bin/python -m pip install "
                           "ray==2.60.0` (pinned in requirements.txt) or run without --ray") from None
    return ray


def connect(address: str = "auto") -> Any:
    """ray.init(address) once per process; returns the ray module. An address nobody answers at, or `auto` with no
    cluster on this machine, raises ClusterError with a sentence instead of a long hang or a traceback."""
    ray = _ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address != "auto":
        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise ClusterError(f"'{address}' is not a Ray address; give HOST:PORT (e.g. 127.0.0.1:6379) or auto")
        try:
            socket.create_connection((host, int(port)), CONNECT_TIMEOUT_S).close()
        except OSError as e:
            raise ClusterError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
                               f"`ray start --head --port {port}` or check the address") from None
    if ray.is_initialized():
        if address == "auto" or _same_node(ray.get_runtime_context().gcs_address, address):
            return ray
        ray.shutdown()                     # one cluster per process: leave the other one
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"could not join the Ray cluster at {address} "
                           f"({str(e).strip().splitlines()[0][:200]})") from None
    return ray


def _same_node(a: str, b: str) -> bool:
    """'192.0.2.2:6379' and '127.0.0.1:6379' name the same GCS when both hosts are addresses of this machine."""
    (ha, _, pa), (hb, _, pb) = a.rpartition(":"), b.rpartition(":")
    return pa == pb and (ha == hb or (_is_here(ha) and _is_here(hb)))


def _is_here(host: str) -> bool:
    try:
        with socket.socket() as s:
            s.bind((host, 0))        # only an address of this machine can be bound
        return True
    except OSError:
        return False


def cluster_cpus() -> int:
    return int(_ray().cluster_resources().get("CPU", 1))


# ---- sweeps: one task per (variant, seed group) -----------------------------------------------------------
def train_part(base: RunConfig, variants: list[Variant], name: str, seeds: list[int], steps: int, chunk: int,
               device: str | None = None, crash_dir: str | None = None) -> list[dict[str, Any]]:
    """The work of one task (also callable without Ray): the runs of variant `name` with `seeds`, trained `steps`
    and evaluated as a local Comparison does; each returned as {variant, seed, payload, seconds, error, evals}."""
    _maybe_crash(crash_dir, name, seeds)
    device_mod.set_threads(1)
    part = Comparison(base, variants, seeds, chunk, device, only=name)
    part.step(steps)
    part.evaluate()
    return [{"variant": r.variant, "seed": r.seed, "payload": _to_cpu(r.trainer.payload()),
             "seconds": r.trainer.seconds, "error": r.error, "evals": part.evals.get((r.variant, r.seed))}
            for r in part.runs]


def _maybe_crash(crash_dir: str | None, name: str, seeds: list[int]) -> None:
    """Fault injection for tests: a file `<crash_dir>/<variant>@<seed,seed>` holding N > 0 makes the next N attempts
    of that task kill their worker process (as a lost node would), counting down."""
    if not crash_dir:
        return
    f = Path(crash_dir) / f"{name}@{','.join(map(str, seeds))}"
    if f.is_file() and int(f.read_text() or 0) > 0:
        f.write_text(str(int(f.read_text()) - 1))
        os._exit(1)


def _to_cpu(obj: Any) -> Any:
    """Tensors anywhere in a payload moved to the CPU: the driver may have no GPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _rebuild(row: dict[str, Any]) -> Run:
    t = Trainer.from_payload(row["payload"], device="cpu")
    t.seconds = float(row["seconds"])
    return Run(row["variant"], row["seed"], t, row["error"])


def seed_groups(seeds: list[int], n_variants: int, cpus: int, group: int | None = None) -> list[list[int]]:
    """Seeds split into groups of `group` (default: as few groups as keep every CPU of the cluster busy)."""
    if not group:
        group = math.ceil(len(seeds) / max(1, math.ceil(cpus / max(1, n_variants))))
    return [seeds[i:i + group] for i in range(0, len(seeds), max(1, group))]


def _why(e: BaseException) -> str:
    ray = _ray()
    if isinstance(e, ray.exceptions.RayTaskError):          # our code raised: its own sentence
        cause = e.cause if getattr(e, "cause", None) is not None else e
        return f"it raised {type(cause).__name__}: {str(cause).strip().splitlines()[0][:200]}"
    if isinstance(e, getattr(ray.exceptions, "NodeDiedError", ())):
        return "its node was lost, twice"
    if isinstance(e, ray.exceptions.WorkerCrashedError):
        return "its worker process died (or its node was lost), twice"
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}"


class TaskLost:
    """In run_tasks' results, in place of a task that failed twice: `why` is a clause for a sentence."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self) -> str:
        return f"TaskLost({self.why!r})"


def run_tasks(fn: Callable[..., Any], calls: list[tuple], *, address: str = "auto", num_gpus: float = 0.0,
              progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """fn(*args) for every args in `calls`, each a Ray task of one CPU, retried once when its worker or node is lost
    (Ray's max_retries=1; an exception of fn itself is not retried: it would raise again). Results in the order of
    `calls`, a TaskLost in place of a task that failed; `progress(done, total)` as tasks finish."""
    ray = connect(address)
    remote = ray.remote(fn).options(num_cpus=1, num_gpus=num_gpus, max_retries=1, retry_exceptions=False)
    refs = [remote.remote(*args) for args in calls]
    index = {ref: i for i, ref in enumerate(refs)}
    out: list[Any] = [None] * len(refs)
    pending = list(refs)
    if progress:
        progress(0, len(refs))
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            out[index[ready[0]]] = ray.get(ready[0])
        except ray.exceptions.RayError as e:
            out[index[ready[0]]] = TaskLost(_why(e))
        if progress:
            progress(len(refs) - len(pending), len(refs))
    return out


def sweep(base: RunConfig, variants: Iterable[Variant], seeds: Iterable[int], steps: int, *,
          address: str = "auto", chunk: int = 25, device: str | None = None, group: int | None = None,
          progress: Callable[[int, int], None] | None = None) -> Comparison:
    """A Comparison trained as Ray tasks, gathered into one (see the module docstring). `progress(done, total)` is
    called as tasks finish."""
    connect(address)
    plan = Comparison(base, variants, seeds, chunk, runs=[])      # validates every variant; builds nothing
    crash_dir = os.environ.get(CRASH_ENV) or None
    parts = [(v.name, g) for v in plan.variants for g in seed_groups(plan.seeds, len(plan.variants),
                                                                     cluster_cpus(), group)]
    out = run_tasks(train_part, [(plan.base, plan.variants, name, g, int(steps), plan.chunk, device, crash_dir)
                                 for name, g in parts], address=address, progress=progress,
                    num_gpus=0.25 if str(device or "").startswith("cuda") else 0.0)
    rows: list[dict[str, Any]] = []
    failed: dict[tuple[str, int], str] = {}
    for (name, g), res in zip(parts, out):
        if isinstance(res, TaskLost):
            why = (f"The Ray task for seeds {', '.join(map(str, g))} failed ({res.why}); "
                   f"run the comparison again or check the cluster's nodes.")
            failed.update({(name, s): why for s in g})
        else:
            rows += res                    # in the order of a local comparison: variants, then seeds
    cmp = Comparison(plan.base, plan.variants, plan.seeds, plan.chunk, runs=[_rebuild(r) for r in rows])
    cmp.evals = {(r["variant"], r["seed"]): r["evals"] for r in rows if r["evals"] is not None}
    cmp.failed = failed
    return cmp


def text_progress(label: str = "tasks", out=None) -> Callable[[int, int], None]:
    """A one-line progress bar of finished tasks, redrawn in place (on `out`, default: sys.stderr at the time)."""
    t0 = time.perf_counter()

    def show(done: int, total: int) -> None:
        out_ = out or sys.stderr
        bar = "#" * int(30 * done / max(1, total))
        print(f"\r[{bar:<30}] {done}/{total} {label}  {time.perf_counter() - t0:.0f} s", end="", file=out_,
              flush=True)
        if done == total:
            print(file=out_)
    return show


# ---- a Ray cluster on this machine ------------------------------------------------------------------------
def loopback_only() -> bool:
    """True when this process's network namespace has no interface but loopback (e.g. under `unshare -n` with `lo`
    up, as .ci/run runs the tests). Ray 2.60 replaces 127.0.0.1 by the machine's own network address wherever it
    can find one (services.resolve_ip_for_localhost), so only in such a namespace do its nodes really talk over
    127.0.0.1 alone."""
    try:
        return all(name == "lo" for _, name in socket.if_nameindex())
    except OSError:
        return False


class LocalCluster:
    """`ray start --head` and `nodes - 1` more `ray start --address` nodes on this machine (started together),
    `cpus_per_node` CPUs each, no dashboard, no usage stats; every node is a `ray start --block` child of this
    process in its own process group, so close() (or the end of a with block) stops exactly these processes and
    nothing else. Node k > 0 also offers the custom resource `node<k>` = 1: a test can place an actor there and then
    lose that node (kill_node)."""

    def __init__(self, nodes: int = 2, cpus_per_node: int = 1, port: int | None = None, timeout_s: float = 90.0):
        self.port = port or _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="ganae-ray-")
        self._nodes = int(nodes)
        self._cpus = int(cpus_per_node)
        self._timeout = float(timeout_s)
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _ray_start(self, *args: str) -> subprocess.Popen:
        exe = Path(sys.executable).with_name("ray")
        # loopback-only test clusters: no usage stats, and no token auth even where ~/.ray/auth_token exists (the
        # nodes would demand it from drivers that were not told about it)
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
               # a lost node is declared dead after ~5 missed 1 s health checks (Ray's default waits longer)
               "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}
        p = subprocess.Popen([str(exe), "start", "--block", "--disable-usage-stats", f"--num-cpus={self._cpus}",
                              f"--object-store-memory={OBJECT_STORE_BYTES}", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def start(self) -> "LocalCluster":
        try:
            self._start()
        except BaseException:
            self.close()                       # no node outlives a failed start
            raise
        return self

    def _start(self) -> None:
        deadline = time.monotonic() + self._timeout
        self._ray_start("--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                        "--include-dashboard=false", f"--temp-dir={self.temp}")
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                self._check(deadline, "the Ray head did not start")
                time.sleep(0.2)
        for k in range(1, self._nodes):
            self.add_node(k)
        self.wait_cpus(self._nodes * self._cpus, deadline)

    def add_node(self, k: int) -> subprocess.Popen:
        """Start node k (custom resource node<k>); it joins in the background (wait_cpus to wait for it). A new
        node k replaces a lost one in `procs`."""
        p = self._ray_start(f"--address={self.address}", f"--resources={json.dumps({f'node{k}': 1})}")
        if k < len(self.procs) - 1:
            self.procs[k] = self.procs.pop()
        return p

    def wait_cpus(self, n: int, deadline: float) -> None:
        """Connect this process (connect()) and wait until the cluster offers n CPUs."""
        ray = connect(self.address)
        while ray.cluster_resources().get("CPU", 0) < n:
            self._check(deadline, f"the local Ray cluster did not reach {n} CPUs")
            time.sleep(0.2)

    def kill_node(self, k: int) -> None:
        """Lose node k (1-based among the added nodes) at once: SIGKILL to its whole process group."""
        _signal_group(self.procs[k], signal.SIGKILL)
        self.procs[k].wait(10)

    def _check(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs[:1]):
            raise ClusterError(f"{what} (within {self._timeout:.0f} s)")

    def close(self) -> None:
        """ray.shutdown() in this process, then SIGTERM to every node's process group (SIGKILL after 10 s)."""
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()
        for p in reversed(self.procs):     # each node is its own process group: ray start, raylet, workers
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + 3.0
        for p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(p, signal.SIGKILL)       # whatever did not stop in 3 s (a throwaway cluster)
            p.wait(10)
        self.procs.clear()
        shutil.rmtree(self.temp, ignore_errors=True)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)          # start_new_session=True: the group is this node's processes only
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
