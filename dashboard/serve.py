"""Serve ganae past one process: a Ray cluster, several Streamlit replicas, HAProxy with sticky sessions in front.

    .venv/bin/python dashboard/serve.py                         # Ray head + 1 more node, 2 replicas, HAProxy :8500
    .venv/bin/python dashboard/serve.py --replicas 3 --port 8600 --ray-nodes 3 --cpus-per-node 2
    .venv/bin/python dashboard/serve.py --ray 10.0.0.5:6379      # an existing cluster: only replicas + HAProxy here

Everything listens on 127.0.0.1. The pieces:
- a Ray cluster (ganae.cluster.LocalCluster: `ray start --head` + `ray start --address`), unless --ray names one;
- `--replicas` × `streamlit run dashboard/server.py` on the ports after --port, each with GANAE_RAY_ADDRESS set: their
  runs train on Ray actors (ganae/placement.py), admitted by one cluster-wide admission, and the replicas only draw;
- HAProxy (Debian's `haproxy`) on --port: round robin for new visitors, then a cookie (GANAE_REPLICA) keeps a
  browser on its replica, so a refresh or a reconnect finds the same run (its id is in the URL; the run lives in
  that replica's registry). WebSockets pass through (`timeout tunnel`); every answer says which replica gave it
  (header X-Ganae-Replica). A replica that stops is taken out (health check /_stcore/health) and its visitors are
  sent to another one (`option redispatch`) -- where their old run id is not known: they start a new run.
The set counts as started once every replica has drawn a first page (warm(): its imports, registry, Ray connection
and Ray hosts are ready), so the first visitors do not wait for them.
Ctrl-C stops all of it, exactly the processes started here.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganae import cluster  # noqa: E402

COOKIE = "GANAE_REPLICA"


def haproxy_config(port: int, replicas: list[int]) -> str:
    """HAProxy's configuration: `port` in front of the replicas' ports, sticky by cookie."""
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} cookie r{i} check inter 2s" for i, p in enumerate(replicas, 1))
    return f"""global
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h                       # Streamlit's WebSocket (/_stcore/stream) stays open
    option redispatch                       # a dead replica's visitors go to another one

frontend ganae
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    cookie {COOKIE} insert indirect nocache httponly
    option httpchk GET /_stcore/health
    http-response set-header X-Ganae-Replica %s
{servers}
"""


def start_replica(port: int, env: dict[str, str], log: Path, cpus: set[int] | None = None) -> subprocess.Popen:
    """`streamlit run dashboard/server.py` on 127.0.0.1:port (on `cpus` only, when given)."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **env},
        start_new_session=True, preexec_fn=_affinity(cpus))


def _affinity(cpus: set[int] | None):
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def wait_http(url: str, procs: list[subprocess.Popen], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")
        time.sleep(0.3)


def warm(port: int, timeout_s: float = 180.0) -> None:
    """Visit replica `port` as a browser would (Streamlit's websocket: the Home page, whose sidebar loads torch, the
    registry and its Ray connection and starts the Ray hosts, in the background on a fresh server, then shows the
    device) and wait until that page has been drawn with its sidebar filled in: the first student then gets a warm
    replica instead of waiting for its imports (seconds per replica on a busy core)."""
    import asyncio

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.asyncio.client import connect

    async def visit() -> None:
        async with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
                           open_timeout=timeout_s) as ws:
            msg = BackMsg()
            msg.rerun_script.query_string = ""
            msg.rerun_script.page_name = ""
            await ws.send(msg.SerializeToString())
            warm = False                 # Home is drawn before the engine: its sidebar's "Device: ..." says it is in
            async for data in ws:
                warm = warm or b"Device:" in data
                if ForwardMsg.FromString(data).WhichOneof("type") == "script_finished":
                    if warm:
                        return
                    await asyncio.sleep(0.5)         # as Home's "starting" fragment asks a browser to: run it again
                    await ws.send(msg.SerializeToString())

    asyncio.run(asyncio.wait_for(visit(), timeout_s))


class ReplicaSet:
    """The whole set on this machine (see the module docstring); a context manager that stops what it started."""

    def __init__(self, port: int = 8500, replicas: int = 2, ray: str | None = None, ray_nodes: int = 2,
                 cpus_per_node: int = 1, env: dict[str, str] | None = None,
                 replica_env: list[dict[str, str]] | None = None, web_cpus: set[int] | None = None,
                 warm: bool = True):
        """env: for every replica; replica_env[i]: for replica i alone (e.g. its own stats file); web_cpus: the
        replicas and HAProxy run on these CPUs only (the Ray nodes started here keep this process's CPUs); warm:
        every replica has drawn a first page before the set counts as started (see warm())."""
        if shutil.which("haproxy") is None:
            raise RuntimeError("HAProxy is not installed; `sudo apt-get install haproxy` (Debian) or run "
                               "`bash .ci/setup --browser`")
        self.port, self.n, self.ray, self.env = port, replicas, ray, dict(env or {})
        self.ray_nodes, self.cpus = ray_nodes, cpus_per_node
        self.replica_env, self.web_cpus, self.warm = list(replica_env or []), web_cpus, warm
        self.folder = Path(tempfile.mkdtemp(prefix="ganae-serve-"))
        self.cluster: cluster.LocalCluster | None = None
        self.procs: list[subprocess.Popen] = []
        self.ports = [port + 1 + i for i in range(replicas)]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> "ReplicaSet":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        if self.ray is None:
            self.cluster = cluster.LocalCluster(nodes=self.ray_nodes, cpus_per_node=self.cpus).start()
            self.ray = self.cluster.address
            cluster.connect(self.ray).shutdown()        # this process is no driver: the replicas are
        env = {**self.env, "GANAE_RAY_ADDRESS": self.ray}
        for i, p in enumerate(self.ports, 1):
            own = self.replica_env[i - 1] if i <= len(self.replica_env) else {}
            self.procs.append(start_replica(p, {**env, **own}, self.folder / f"replica-{i}.log", self.web_cpus))
        for p in self.ports:
            wait_http(f"http://127.0.0.1:{p}/_stcore/health", self.procs)
        if self.warm:
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(len(self.ports)) as ex:
                list(ex.map(warm, self.ports))
        cfg = self.folder / "haproxy.cfg"
        cfg.write_text(haproxy_config(self.port, self.ports))
        self.procs.append(subprocess.Popen(["haproxy", "-W", "-db", "-f", str(cfg)], stdout=open(
            self.folder / "haproxy.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_affinity(self.web_cpus)))
        wait_http(f"{self.url}/_stcore/health", self.procs)

    def close(self) -> None:
        for p in reversed(self.procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in reversed(self.procs):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        self.procs.clear()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8500, help="HAProxy's port; the replicas use the next ones")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--ray", help="an existing Ray cluster (HOST:PORT); default: start one here")
    ap.add_argument("--ray-nodes", type=int, default=2, help="nodes of the cluster started here (default 2)")
    ap.add_argument("--cpus-per-node", type=int, default=1)
    args = ap.parse_args()
    with ReplicaSet(args.port, args.replicas, args.ray, args.ray_nodes, args.cpus_per_node) as s:
        print(f"ganae: {s.url}  ({args.replicas} replicas on {', '.join(map(str, s.ports))}, Ray at {s.ray}; "
              f"logs in {s.folder}). Ctrl-C stops everything.", flush=True)
        try:
            while all(p.poll() is None for p in s.procs):
                time.sleep(1.0)
            print("a process of the set stopped; stopping the rest", file=sys.stderr)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
