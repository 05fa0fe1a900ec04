"""Is a sweep on Ray faster, and the same? `python -m ganae compare` locally vs on a 2-node Ray cluster on this machine.

    .venv/bin/python benchmarks/ray_sweep.py                      # 4 variants × 4 seeds × 3000 steps on ring-8
    .venv/bin/python benchmarks/ray_sweep.py --steps 300 --seeds 2 # a smoke run

Both runs are the command a user types, as a subprocess: `compare --preset ring8-vanilla --variant ... --seeds 4
--steps 3000 --out DIR`, once as is (one process, one torch thread: one core) and once with `--ray ADDRESS` on a
cluster of `--nodes` Ray nodes with one CPU each, started here (cluster.LocalCluster: `ray start --head` and
`ray start --address` on 127.0.0.1; its start-up is reported apart, it is paid once per cluster, not per sweep).
It prints the wall time of each, the CPU time (/proc: the driver and every Ray worker together) and whether the two
tables are identical apart from the timing columns (ms_per_step) and the histories byte for byte.

On a shared machine the wall times mostly measure the neighbours: the ideal ratio is the number of CPUs the
cluster has (2), less Ray's start-up of its workers (a fresh Python + torch import each). Never run in the tests.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganae import cluster  # noqa: E402

VARIANTS = ["NS:objective.loss=ns", "R1:objective.r1=0.1", "EMA:tricks.ema=0.99"]   # + the base: 4 variants
TIMING = ("ms_per_step", "ms_per_step_sd")


def children_cpu() -> float:
    """CPU seconds of this process's finished children (the compare subprocess)."""
    t = os.times()
    return t.children_user + t.children_system


class ClusterCpu:
    """CPU seconds of every process under the cluster's nodes (raylets, GCS, Ray workers), sampled from /proc every
    0.25 s while a sweep runs (workers exit with their job: the last sample of each counts)."""

    def __init__(self, roots: list[int]):
        self.roots, self.seen, self._stop = set(roots), {}, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "ClusterCpu":
        self._sample(), self._thread.start()
        self.base = dict(self.seen)
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def _sample(self) -> None:
        tick, stats = os.sysconf("SC_CLK_TCK"), {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                stats[int(pid)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)     # ppid, utime + stime
            except (OSError, IndexError, ValueError):
                continue
        inside = set(self.roots)
        grew = True
        while grew:
            new = {pid for pid, (ppid, _) in stats.items() if ppid in inside and pid not in inside}
            inside |= new
            grew = bool(new)
        for pid in inside & set(stats):
            self.seen[pid] = stats[pid][1]


def compare(out: Path, seeds: int, steps: int, extra: list[str]) -> tuple[float, float]:
    argv = [sys.executable, "-m", "ganae", "compare", "--preset", "ring8-vanilla", "--seeds", str(seeds),
            "--steps", str(steps), "--out", str(out)]
    for v in VARIANTS:
        argv += ["--variant", v]
    c0, t0 = children_cpu(), time.perf_counter()
    p = subprocess.run(argv + extra, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"compare failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return wall, children_cpu() - c0


def table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "table.csv") as f:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--nodes", type=int, default=2, help="Ray nodes, one CPU each (default 2)")
    ap.add_argument("--group", type=int, default=0, help="seeds per Ray task (default: compare's own choice)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ganae-ray-sweep-"))
    print(f"# compare: ring8-vanilla + {len(VARIANTS)} variants × {args.seeds} seeds × {args.steps} steps; "
          f"local (1 process, 1 thread) vs Ray ({args.nodes} nodes × 1 CPU on this machine, "
          f"{os.cpu_count()} cores, shared)", flush=True)
    wall_l, cpu_l = compare(tmp / "local", args.seeds, args.steps, [])
    print(f"local: {wall_l:.1f} s wall, {cpu_l:.1f} s CPU", flush=True)
    t0 = time.perf_counter()
    with cluster.LocalCluster(nodes=args.nodes, cpus_per_node=1, timeout_s=180) as c:
        up = time.perf_counter() - t0
        cluster.connect(c.address).shutdown()        # this process stays out of the way (no driver here)
        extra = ["--ray", c.address] + (["--ray-group", str(args.group)] if args.group else [])
        with ClusterCpu([p.pid for p in c.procs]) as workers:
            wall_r, cpu_r = compare(tmp / "ray", args.seeds, args.steps, extra)
        cpu_w = workers.seconds
    print(f"ray cluster start-up: {up:.1f} s (once)")
    print(f"ray:   {wall_r:.1f} s wall, {cpu_r:.1f} s CPU in the driver + {cpu_w:.1f} s in the cluster's processes")
    same_table = table(tmp / "local") == table(tmp / "ray")
    same_hist = (tmp / "local" / "histories.csv").read_bytes() == (tmp / "ray" / "histories.csv").read_bytes()
    print(f"wall local / ray: {wall_l / wall_r:.2f}x   identical table (all but {', '.join(TIMING)}): {same_table}   "
          f"identical histories.csv: {same_hist}")
    print()
    cols = ["variant", "n", "modes", "modes_sd", "hq", "hq_sd", "kl", "js"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in table(tmp / "ray"):
        print("| " + " | ".join(r.get(k, "") if k in ("variant", "n") else f"{float(r[k]):.4g}" for k in cols) + " |")


if __name__ == "__main__":
    main()
