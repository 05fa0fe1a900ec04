"""What does watching cost? Training speed with the Playground open in Chromium vs a headless runner.

    .venv/bin/python benchmarks/live_overhead.py [--seconds 10] [--repeats 3] [--height 1000]

Each repeat measures, one after the other on the Playground's default config (ring of 8, torch: 1 thread):
1. headless: a Runner in this process; steps/s over a window after a warm-up;
2. live: `streamlit run dashboard/app.py` + headless system Chromium on the Playground (a 1440 x `--height`
   window; 1000 shows the controls and the plane, the charts below wait until scrolled to); press Train; steps/s
   from the page's step counter over the same window, and the time from the click on Train to the first point of
   the run plotted (generated points on the plane or loss points; read from the plotly divs' data, polled every
   10 ms).
Both also record CPU time from /proc: the training thread's CPU seconds per step, the server's other threads,
and all Chromium processes. On a shared, busy machine the wall-clock ratio mostly measures the neighbours;
the CPU columns say what watching itself costs: a browser and a server using less than the one core that
training leaves free, and an unchanged CPU time per step, mean a ratio near 1 on an otherwise idle 2-core box.

Targets: live / headless >= 0.9, Train -> first point <= 1.5 s. Never run inside the tests.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HZ = os.sysconf("SC_CLK_TCK")
# both sides train the Playground's default config planned this long: a run that reaches its planned steps
# (the Playground's default is 5,000: about ten seconds here) stops, and would read as a slow one
LONG_RUN = 10_000_000

# plotly keeps numpy data as {dtype, bdata} (base64) in the div's `data`: decode to count points. The run's points
# on the page: the generated points on the plane and the points of the loss curves (-1 before the page has drawn).
RUN_POINTS_JS = """() => {
  const n = (x) => !x ? 0 : (x.length !== undefined ? x.length
      : x.bdata ? atob(x.bdata).length / ({f8: 8, f4: 4, i8: 8, i4: 4, u4: 4, i2: 2, u2: 2}[x.dtype] || 1) : 0);
  const plots = document.querySelectorAll('.js-plotly-plot');
  if (!plots.length) return -1;
  let most = 0;
  for (const d of plots) {
    const t = (d.layout && d.layout.title && d.layout.title.text) || '';
    for (const tr of (d.data || [])) {
      if (tr.name === 'generated' || t.includes('Losses')) most = Math.max(most, n(tr.x));
    }
  }
  return most;
}"""
STEP_JS = "() => { const e = document.querySelector('.ganae-step'); return e ? Number(e.dataset.step) : null; }"


# ---- CPU accounting from /proc ----------------------------------------------------------------------------
def _ticks(stat_path: str) -> float:
    with open(stat_path) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def thread_cpu(pid: int) -> dict[int, float]:
    out = {}
    for t in glob.glob(f"/proc/{pid}/task/*"):
        try:
            out[int(t.rsplit("/", 1)[1])] = _ticks(t + "/stat")
        except OSError:
            pass
    return out


def chromium_cpu() -> float:
    """CPU seconds of the Chromium processes this script started (descendants of this process only: the
    machine may run other browsers)."""
    parent: dict[int, int] = {}
    comm: dict[int, str] = {}
    for p in glob.glob("/proc/[0-9]*"):
        try:
            with open(p + "/stat") as f:
                st = f.read()
            pid = int(p.rsplit("/", 1)[1])
            comm[pid] = st[st.index("(") + 1:st.rindex(")")]
            parent[pid] = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            pass
    me, total = os.getpid(), 0.0
    for pid, name in comm.items():
        if "chrom" not in name:
            continue
        q = pid
        while q > 1 and q != me:
            q = parent.get(q, 1)
        if q == me:
            try:
                total += _ticks(f"/proc/{pid}/stat")
            except OSError:
                pass
    return total


def loadavg() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---- 1. headless ------------------------------------------------------------------------------------------
def headless(seconds: float, warm: float = 2.0) -> dict[str, float]:
    import torch
    torch.set_num_threads(1)
    from dashboard.settings import default_config
    from ganae.runner import Runner

    r = Runner(default_config().with_updates(**{"train.steps": LONG_RUN}))
    try:
        r.play()
        time.sleep(warm)
        tid = r.thread.native_id
        c0, s0, t0 = thread_cpu(os.getpid()).get(tid, 0.0), r.status().step, time.perf_counter()
        time.sleep(seconds)
        c1, s1, t1 = thread_cpu(os.getpid()).get(tid, 0.0), r.status().step, time.perf_counter()
    finally:
        r.stop()
    steps = max(1, s1 - s0)
    return {"it_s": steps / (t1 - t0), "cpu_ms_step": 1000 * (c1 - c0) / steps}


# ---- 2. live ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open("/tmp/ganae-bench-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT, env={**os.environ, **(env or {})})
    url = f"http://localhost:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, 15)
    raise SystemExit("the dashboard did not start; see /tmp/ganae-bench-server.log")


def page_step(page, timeout: float = 3.0) -> int | None:
    deadline = time.perf_counter() + timeout
    while True:
        v = page.evaluate(STEP_JS)
        if v is not None or time.perf_counter() > deadline:
            return int(v) if v is not None else None
        time.sleep(0.02)


def live(seconds: float, warm: float = 2.0, refresh: float | None = None, settle: float = 8.0,
         height: int = 1000) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    proc, url = start_server({"GANAE_REFRESH_S": str(refresh)} if refresh else None)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": height})
            # the headless runner's config: the Playground's default, planned long enough not to finish in the window
            page.goto(url + f"/playground?train.steps={LONG_RUN}")
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
            deadline = time.time() + 60
            while page.evaluate(RUN_POINTS_JS) < 0 and time.time() < deadline:   # the page has drawn
                time.sleep(0.1)
            # the server warms up in the background at its first page load: the first optimiser in a process
            # imports torch._dynamo (seconds on 2 cores); measure a server that is past that
            time.sleep(settle)
            button = page.get_by_role("button", name=re.compile(r"^\W*Train"))
            t_click = time.perf_counter()
            button.first.click()
            first = float("nan")
            while time.perf_counter() - t_click < 60:
                if page.evaluate(RUN_POINTS_JS) > 0:
                    first = time.perf_counter() - t_click
                    break
                time.sleep(0.01)
            time.sleep(warm)
            th0, ch0, pr0 = thread_cpu(proc.pid), chromium_cpu(), _ticks(f"/proc/{proc.pid}/stat")
            s0, t0 = page_step(page), time.perf_counter()
            time.sleep(seconds)
            s1, t1 = page_step(page), time.perf_counter()
            th1, ch1, pr1 = thread_cpu(proc.pid), chromium_cpu(), _ticks(f"/proc/{proc.pid}/stat")
            browser.close()
        if s0 is None or s1 is None:
            raise SystemExit("could not read the step counter from the page")
        dt = t1 - t0
        used = {tid: th1[tid] - th0.get(tid, 0.0) for tid in th1}
        # the runner is the busiest thread alive over the whole window (script runs get short-lived threads)
        train_tid = max((tid for tid in used if tid in th0), key=used.get)
        steps = max(1, s1 - s0)
        return {"it_s": steps / dt, "first_s": first, "cpu_ms_step": 1000 * used[train_tid] / steps,
                # the process total also counts script-run threads that ended within the window
                "server_cores": (pr1 - pr0 - used[train_tid]) / dt, "browser_cores": (ch1 - ch0) / dt}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measuring window per run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--height", type=int, default=1000,
                    help="browser window height: 1000 shows the plane (charts below it wait until scrolled to, as "
                         "on a laptop); 2000 shows the whole Playground, every chart redrawn every frame")
    ap.add_argument("--refresh", type=float, default=None,
                    help="seconds between live redraws (GANAE_REFRESH_S; default: the dashboard's 0.5)")
    args = ap.parse_args()
    rows = []
    for i in range(args.repeats):
        load = loadavg()
        h = headless(args.seconds)
        lv = live(args.seconds, refresh=args.refresh, height=args.height)
        rows.append((h, lv, load))
        print(f"run {i + 1}: load {load:4.1f} | headless {h['it_s']:6.1f} it/s {h['cpu_ms_step']:5.2f} ms CPU/step | "
              f"live {lv['it_s']:6.1f} it/s {lv['cpu_ms_step']:5.2f} ms CPU/step | browser {lv['browser_cores']:.2f} "
              f"cores, server {lv['server_cores']:.2f} cores | Train -> first point {lv['first_s']:.2f} s", flush=True)

    def med(f) -> float:
        return statistics.median(f(r) for r in rows)

    h_it, l_it = med(lambda r: r[0]["it_s"]), med(lambda r: r[1]["it_s"])
    h_cpu, l_cpu = med(lambda r: r[0]["cpu_ms_step"]), med(lambda r: r[1]["cpu_ms_step"])
    browser, server = med(lambda r: r[1]["browser_cores"]), med(lambda r: r[1]["server_cores"])
    first = med(lambda r: r[1]["first_s"])
    print()
    print(f"median of {len(rows)} (machine load average {med(lambda r: r[2]):.1f} on {os.cpu_count()} cores)")
    print("| measure                                       | value         | target   |")
    print("|-----------------------------------------------|---------------|----------|")
    print(f"| headless runner                               | {h_it:8.1f} it/s |          |")
    print(f"| runner with the Playground open in Chromium   | {l_it:8.1f} it/s |          |")
    print(f"| ratio live / headless (wall clock)            | {l_it / h_it:13.2f} | >= 0.90  |")
    print(f"| training CPU per step, headless / live        | {h_cpu / l_cpu:13.2f} | ~1       |")
    print(f"| CPU used by Chromium (cores)                  | {browser:13.2f} | < 1 - server |")
    print(f"| CPU used by the server besides training       | {server:13.2f} |          |")
    print(f"| Train -> first plotted point                  | {first:11.2f} s | <= 1.5 s |")


if __name__ == "__main__":
    main()
