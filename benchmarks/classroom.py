"""A class on one server: N students train and watch the GAN Playground at the same time.

    .venv/bin/python benchmarks/classroom.py [--sessions 20] [--minutes 5 | --seconds 300] [--grace 20]
                                             [--clients browser|wire] [--browsers K]
                                             [--max-training 0] [--ramp 0.5] [--json out.json]
                                             [--cohorts] [--train-process] [--mixed] [--lecturer-first] [--replicas 2 [--ray-nodes 2] [--ray-cpus 1]]

It starts its own `streamlit run dashboard/server.py` (the Quickstart's server) on a free port (GANAE_GRACE_S =
--grace, GANAE_MAX_TRAINING = --max-training, GANAE_STATS_FILE = a temporary file the server rewrites every second
with its run counts), then the students, each its own Streamlit session, arriving `--ramp` seconds apart. Each one
opens the Playground, presses Train and, until its time is up, watches a few seconds, then Pause, Step D, Train
again. Then every student leaves
(tab closed / connection dropped), and the script waits for the grace period to pass.

With --replicas R it starts dashboard/serve.py's whole set instead (a local Ray cluster of --ray-nodes one-CPU
nodes, R replicas with GANAE_RAY_ADDRESS, HAProxy in front) and the students go through HAProxy; the "server" then is
the replicas (their RSS and CPU: pages only) and training is counted in the Ray hosts' processes. Ray must run in a
loopback-only network namespace (unshare -n), as in .ci/run.

Students come in two kinds:
- `--clients browser` (default): one headless Chromium (Debian's /usr/bin/chromium) with one browser context per
  student. An interaction is timed from the click to its effect on the screen (the state label says "paused" / the
  step counter is one higher / the label says "training" or "queued"), read in the browser every animation frame,
  on the page's own clock: from the click's pointerdown as the page received it (PAGE_CLOCK_JS says why not from
  the driver's click call; those figures are reported beside).
  The browsers run on this machine: on a small machine they take most of its CPU (~0.2-0.4 core each), so the
  numbers describe server + browsers together, a pessimistic bound for the server.
- `--clients wire`: a student speaks Streamlit's websocket protocol as its frontend does (WirePage) and draws
  nothing; an interaction counts when the server's answer arrives. ~1 % of a core per student: the class's load on
  the server without its laptops on this machine. `--browsers K` makes K of them Chromium students (spread over the
  arrivals): what a student sees on screen while the rest of the class loads the server.

Reported: errors (uncaught page errors, Streamlit exception or error boxes, interactions that never rendered or
were never answered), p50 / p95 of the interaction latency (per kind of student when mixed), p50 / p95 of the
server's part of it (click -> the websocket message that carries the new state line arrives, before it is drawn:
what a student whose browser runs on their own machine waits for the server), the server's RSS over time (from
/proc/<pid>/status), runs training vs queued over time (the stats file), the CPU of the server (training, event
loop, pages) and of the clients, and after the grace period the runs left on the server and the runner threads left
in it (counted in /proc/<pid>/task/*/comm: runner threads carry their name into the OS).

Targets: 0 errors, p95 interaction <= 1 s (judged on the Chromium students when there are any), RSS growth < 10 %
after warm-up (all students training), 0 runner threads left after the grace period.
Never run inside the unit tests; tests/e2e/test_classroom_e2e.py runs a 3-student browser class and a 4-student
wire class and checks the JSON.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import glob
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
THREAD_PREFIX = "ganae-run-"[:15]          # runner threads' OS names start so (ganae.runner.name_os_thread)
COHORT_PREFIX = "ganae-cohort-"[:15]       # a class cohort's training thread (ganae/cohort.py)
TARGETS = {"errors": 0, "p95_s": 1.0, "rss_growth": 0.10, "runner_threads_left": 0}
INTERACTION_TIMEOUT_S = 30.0
# Students open the Playground from the lecturer's link with a long planned run, so every run trains for the whole
# class (the Playground's default plan, 5,000 steps, ends after ~10 s here, and a finished run has no Pause)
PLANNED_STEPS = 1_000_000
# --mixed: every other student changes the shared link's loss or a trick (a structure of its own: several cohorts)
MIXES = ("objective.loss=ls", "objective.loss=hinge", "tricks.ema=0.999")

# The run's state line as the page shows it now: its step and its text (fresh elements only; a re-rendering
# element is marked stale while Streamlit redraws).
STATE_JS = """() => {
  for (const e of document.querySelectorAll('.ganae-step')) {
    if (e.closest('[data-stale="true"]')) continue;
    const box = e.closest('[data-testid="stMarkdownContainer"]') || e.parentElement;
    return {step: Number(e.dataset.step), text: box.innerText};
  }
  return null;
}"""
# true when the state line shows one of `words` (and, if given, exactly `step`)
SHOWS_JS = """([words, step]) => {
  for (const e of document.querySelectorAll('.ganae-step')) {
    if (e.closest('[data-stale="true"]')) continue;
    const box = e.closest('[data-testid="stMarkdownContainer"]') || e.parentElement;
    const t = box.innerText;
    if (words.some(w => t.includes(w)) && (step === null || Number(e.dataset.step) === step)) return true;
  }
  return false;
}"""
# The Chromium students' clock is the page's own (performance.timeOrigin + now, ms since the epoch), and the page
# notes the moments itself: an interaction runs from the click's pointerdown as the page received it to the
# animation frame that first shows its effect (a MutationObserver notices the state line, a requestAnimationFrame
# dates the frame that paints it); the server's answer is the first websocket message after the click that carries
# the expected state line; the first step is the first frame that shows a step above 0. Timed from the driver instead
# (Playwright's click call -> its wait resolving in Python), a Chromium student would also pay for the automation:
# the driver waits for stable animation frames before it clicks, and its commands queue behind every other page's
# events in the one Python process that also runs the wire students -- measured: a Train click reached an idle page
# 4.4 s after the call while a second Chromium student's page was opening, and a first step shown 1 s after the
# click was seen by the driver 7 s later. Both are reported; the driver's figures as "from the driver's click call".
PAGE_CLOCK_JS = """(() => {
  const g = window.__ganae = {click: null, shown: null, answer: null, trained: null, expect: null};
  const now = () => performance.timeOrigin + performance.now();
  const shows = """ + SHOWS_JS + """;
  addEventListener('pointerdown', e => { g.click = performance.timeOrigin + e.timeStamp; }, true);
  new MutationObserver(() => {
    const x = g.expect;
    if (x && g.shown === null && !x.painting && shows([x.words, x.step])) {
      x.painting = true;
      requestAnimationFrame(() => { if (g.expect === x) g.shown = now(); });
    }
    if (x && g.trained === null && !x.stepping) {
      const e = document.querySelector('.ganae-step');
      if (e && Number(e.dataset.step) > 0) {
        x.stepping = true;
        requestAnimationFrame(() => { if (g.expect === x) g.trained = now(); });
      }
    }
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  const latin1 = new TextDecoder('latin1');
  const WS = window.WebSocket;
  window.WebSocket = class extends WS {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', ev => {
        const x = g.expect;
        if (!x || g.answer !== null || !(ev.data instanceof ArrayBuffer)) return;
        const t = latin1.decode(ev.data);
        if (t.includes('ganae-step') && x.words.some(w => t.includes(w)) && x.marks.every(m => t.includes(m)))
          g.answer = now();
      });
    }
  };
})();"""
ARM_JS = """([words, marks, step]) => { const g = window.__ganae;
  g.click = g.shown = g.answer = g.trained = null; g.expect = {words, marks, step}; }"""
TRAINED_JS = """() => { const e = document.querySelector('.ganae-step'); return !!e && Number(e.dataset.step) > 0; }"""
ERRORS_SELECTOR = "[data-testid='stException'], [data-testid='stAlertContentError']"


# ---- the server ---------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], log_path: Path, cpus: set[int] | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run dashboard/server.py` (the Quickstart's server) on a free port (on `cpus` only, when given:
    every thread it starts inherits that CPU affinity)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "server.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                return proc, url
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            stop_server(proc)
            raise RuntimeError(f"streamlit did not start; see {log_path}")
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def thread_names(pid: int) -> list[str]:
    out = []
    for path in glob.glob(f"/proc/{pid}/task/*/comm"):
        try:
            with open(path) as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out


def read_stats(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runner_cpu_seconds(pid: int) -> float:
    """CPU seconds of the server's training threads alive now (runners ganae-run-*, cohorts ganae-cohort-*)."""
    total = 0.0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(task + "/comm") as f:
                if not f.read().startswith((THREAD_PREFIX, COHORT_PREFIX)):
                    continue
            with open(task + "/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def descendants(root: int) -> dict[int, str]:
    """pid -> command name of every process below `root`."""
    parent, comm = {}, {}
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as f:
                st = f.read()
            pid = int(path.split("/")[2])
            comm[pid] = st[st.index("(") + 1:st.rindex(")")]
            parent[pid] = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            pass
    out: dict[int, str] = {}
    frontier = [root]
    while frontier:
        p = frontier.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = comm.get(c, "")
                frontier.append(c)
    return out


def browser_pids(served: "Served", driver: bool = True) -> list[int]:
    """The Chromium (and Playwright driver: `node`) processes this script started: its descendants but the
    serving side (server or replicas, HAProxy, Ray)."""
    server_side = served.side()
    return [p for p, comm in descendants(os.getpid()).items()
            if p not in server_side and comm != "haproxy" and (driver or comm != "node")]


def client_cpu_seconds(served: "Served") -> float:
    """CPU seconds of the students' side: the browsers this script started and this script itself (the Playwright
    client, or the wire clients)."""
    own = os.times()
    return sum(cpu_seconds(p) for p in browser_pids(served)) + own.user + own.system


def renice(pids: list[int], nice: int) -> None:
    """Lower the priority of every thread of `pids` (Linux: niceness is per thread)."""
    for pid in pids:
        for task in glob.glob(f"/proc/{pid}/task/*"):
            try:
                tid = int(task.rsplit("/", 1)[1])
                if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)
            except (OSError, ValueError):
                pass


def cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


RAY_RUN = "ray::RunHost"           # a Ray actor process hosting live runs (its title: ganae/placement.py's RunHost)
TRAIN_PROCESS = "ganae-train"       # the training process beside a server (ganae/local_host.py names it so)


class Served:
    """What serves the class: one `streamlit run` process (its training threads inside), or with --replicas the
    replicas behind HAProxy (the web side: pages only) and the Ray cluster their runs train on (one actor process per
    run). `pids` are the web side's processes, `stats` their stats files, `ray_roots` the `ray start` processes."""

    def __init__(self, pids: list[int], stats: list[str], ray_roots: list[int] | None = None):
        self.pids, self.stats_paths, self.ray_roots = list(pids), list(stats), list(ray_roots or [])
        self._ray: tuple[float, dict[int, str]] = (-1.0, {})
        self._train: tuple[float, list[int]] = (-1.0, [])

    @property
    def pid(self) -> int:
        return self.pids[0]

    def ray_pids(self) -> dict[int, str]:
        """pid -> command line of every process of the Ray cluster (nodes, raylets, GCS, workers, actors); one
        look at /proc serves the calls of half a second (a sample asks several times)."""
        if time.monotonic() - self._ray[0] < 0.5:
            return self._ray[1]
        out: dict[int, str] = {}
        for root in self.ray_roots:
            for p in [root, *descendants(root)]:
                out[p] = cmdline(p)
        self._ray = (time.monotonic(), out)
        return out

    def run_hosts(self) -> list[int]:
        return [p for p, c in self.ray_pids().items() if c.startswith(RAY_RUN)]

    def train_processes(self) -> list[int]:
        """The training process of a server started with GANAE_TRAIN_PROCESS=1 (ganae/local_host.py): part of the
        server (its CPU, memory, training threads); one look at /proc serves the calls of half a second."""
        if time.monotonic() - self._train[0] >= 0.5:
            self._train = (time.monotonic(), [c for p in self.pids for c, comm in descendants(p).items()
                                              if comm == TRAIN_PROCESS])
        return self._train[1]

    def side(self) -> set[int]:
        """Every process on the serving side (to tell the students' own processes apart)."""
        out = set(self.pids) | set(self.ray_pids())
        for p in self.pids:
            out |= set(descendants(p))
        return out

    def rss_mb(self) -> float | None:
        """The web side's resident memory (the Ray cluster's: ray_rss_mb)."""
        xs = [rss_mb(p) for p in self.pids]
        return None if any(x is None for x in xs) else sum(xs) + sum(rss_mb(p) or 0.0 for p in self.train_processes())

    def ray_rss_mb(self) -> float | None:
        return sum(rss_mb(p) or 0.0 for p in self.ray_pids()) if self.ray_roots else None

    def cpu(self) -> float:
        """CPU seconds of the web side (with one server: its training threads too)."""
        return sum(cpu_seconds(p) for p in self.pids + self.train_processes())

    def train_cpu(self) -> float:
        """CPU seconds of the training alive now: runner / cohort threads, in the web side or in the Ray hosts."""
        return sum(runner_cpu_seconds(p) for p in self.pids + self.run_hosts() + self.train_processes())

    def ray_cpu(self) -> float:
        """CPU seconds of the Ray cluster's processes alive now, the run actors included."""
        return sum(cpu_seconds(p) for p in self.ray_pids())

    def thread_names(self) -> list[str]:
        return [n for p in self.pids for n in thread_names(p)]

    def runner_threads(self) -> int:
        """Training left alive: runner / cohort threads in the web side and in the Ray hosts."""
        return sum(n.startswith((THREAD_PREFIX, COHORT_PREFIX))
                   for p in self.pids + self.run_hosts() + self.train_processes() for n in thread_names(p))

    def stats(self) -> dict[str, Any]:
        """The replicas' stats files as one: runs and threads add up; the admission (slots busy, queued, limit) is
        cluster-wide, so every replica reports the same counts: the largest is taken; time is the oldest."""
        parts = [x for x in (read_stats(p) for p in self.stats_paths) if x]
        if len(parts) < len(self.stats_paths):
            return {}
        if len(parts) == 1:
            return parts[0]
        out: dict[str, Any] = {}
        for k in ("runs", "training", "runner_threads", "cohort_threads", "cohorts", "threads"):
            if any(x.get(k) is not None for x in parts):
                out[k] = sum(x.get(k) or 0 for x in parts)
        for k in ("running", "queued", "limit"):
            out[k] = max((x.get(k) for x in parts if x.get(k) is not None), default=None)
        out["time"] = min(x.get("time", 0) for x in parts)
        cpu: dict[str, float] = {}
        for x in parts:
            for name, v in (x.get("thread_cpu") or {}).items():
                cpu[name] = cpu.get(name, 0.0) + v
        out["thread_cpu"] = cpu
        return out


# ---- one student --------------------------------------------------------------------------------------------
@dataclass
class Student:
    index: int
    client: str = "browser"                # "browser": a Chromium context; "wire": Streamlit's protocol, no drawing
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)   # interaction -> seconds
    # interaction -> seconds from the click to the server's answer reaching the browser (before it is drawn)
    replies: dict[str, list[float]] = field(default_factory=dict)
    open_s: float | None = None            # page opened -> the Playground's Train button on screen, its first run done
    first_step_s: float | None = None      # first Train click -> the step counter above 0 (queue wait included)
    # Chromium students: the same two timed from the driver's click call (see PAGE_CLOCK_JS)
    driver_latencies: dict[str, list[float]] = field(default_factory=dict)
    first_step_driver_s: float | None = None
    steps_seen: list[int] = field(default_factory=list)
    manual_steps: int = 0
    trained_steps: int = 0                 # growth of the counter seen while the label said "training"
    # steps trained between each Train click and the next Pause, from the counter before the click and the one
    # Pause shows (the counter above undercounts what trained after the last frame watched before a Pause)
    trained_exact: int = 0
    queued_seen: bool = False
    max_wait_s: float = 0.0                # longest time from a Train click to the counter growing
    waiting_since: float | None = None     # a Train click whose first step has not been seen yet
    started_at: float | None = None        # when its first Train had rendered (seconds since the class began)
    finished: bool = False

    def note(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    # ---- the server's part of an interaction: frames on the page's websocket ------------------------------
    def expect(self, kind: str, words: list[str], step: int | None) -> None:
        """An interaction is about to be clicked: look out for the server's message that answers it."""
        marks = [f'data-step="{step}"'.encode()] if step is not None else []
        self._pending = (kind, time.perf_counter(), [w.encode() for w in words], marks)

    def on_frame(self, payload: bytes | str) -> None:
        """A websocket frame from the server: the first one after a click carrying the state line with the
        expected state (Streamlit sends the markdown's text as it is inside its protobuf) answers the click."""
        pending = getattr(self, "_pending", None)
        if pending is None:
            return
        kind, t0, words, marks = pending
        data = payload.encode() if isinstance(payload, str) else payload
        if b"ganae-step" in data and any(w in data for w in words) and all(m in data for m in marks):
            self.replies.setdefault(kind, []).append(time.perf_counter() - t0)
            self._pending = None


class BrowserPage:
    """A student's Playground in a Chromium tab (one Playwright context: its own Streamlit session)."""

    def __init__(self, st: Student, browser):
        self.st, self.browser, self.ctx, self.page = st, browser, None, None
        self._seen: set[str] = set()
        self._clicked: float | None = None     # the last Train / Pause / ... click's pointerdown, page clock (ms)
        self._trained: float | None = None     # the first frame after it that showed a step above 0 (ms)

    async def open(self, url: str) -> None:
        self.ctx = await self.browser.new_context(viewport={"width": 1280, "height": 1000})
        await self.ctx.add_init_script(PAGE_CLOCK_JS)
        self.page = page = await self.ctx.new_page()
        st = self.st
        page.on("pageerror", lambda e: st.errors.append(f"page error: {str(e)[:200]}"))
        page.on("console", lambda m: st.console_errors.append(m.text[:200]) if m.type == "error" else None)
        await page.goto(url, timeout=120_000)
        await page.locator(".st-key-pg_play [data-testid^='stBaseButton']:visible").first.wait_for(timeout=120_000)
        # open = the page's first run has finished, as for a wire student: a click while it still runs waits for
        # it (Streamlit runs the click's fragment after the full run), and that wait belongs to the page's opening
        await page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(timeout=120_000)

    async def state(self) -> dict[str, Any] | None:
        try:
            return await self.page.evaluate(STATE_JS)
        except Exception:
            return None

    async def _button(self, key: str):
        """The visible, enabled button of widget `key` (waits until it is)."""
        loc = self.page.locator(f".st-key-{key} [data-testid^='stBaseButton']:visible").first
        await loc.wait_for(state="visible", timeout=INTERACTION_TIMEOUT_S * 1000)
        deadline = time.monotonic() + INTERACTION_TIMEOUT_S
        while await loc.is_disabled():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the button {key} stayed disabled")
            await asyncio.sleep(0.05)
        return loc

    async def interact(self, kind: str, key: str, words: list[str], step: int | None) -> bool:
        """Click `key`, wait until the state line shows one of `words` (and `step`); record the time."""
        st = self.st
        try:
            btn = await self._button(key)
        except Exception as e:
            st.errors.append(f"{kind}: no usable button ({type(e).__name__}: {str(e)[:120]})")
            return False
        marks = [f'data-step="{step}"'] if step is not None else []
        try:
            await self.page.evaluate(ARM_JS, [words, marks, step])
            t0 = time.perf_counter()
            await btn.click(timeout=INTERACTION_TIMEOUT_S * 1000)
            await self.page.wait_for_function(SHOWS_JS, arg=[words, step], polling="raf",
                                              timeout=INTERACTION_TIMEOUT_S * 1000)
            driver = time.perf_counter() - t0
            g = await self.page.evaluate("() => window.__ganae.shown === null ? new Promise(r => "
                                         "requestAnimationFrame(() => r(window.__ganae))) : window.__ganae")
        except Exception as e:
            st.errors.append(f"{kind}: did not render within {INTERACTION_TIMEOUT_S:g} s ({type(e).__name__})")
            return False
        st.driver_latencies.setdefault(kind, []).append(driver)
        self._clicked = g["click"]
        if g["click"] is None or g["shown"] is None:       # no pointerdown seen: the driver's time stands
            st.note(kind, driver)
            return True
        st.note(kind, max(0.0, g["shown"] - g["click"]) / 1000)
        if g["answer"] is not None:
            st.replies.setdefault(kind, []).append(max(0.0, g["answer"] - g["click"]) / 1000)
        return True

    async def wait_trained(self, timeout: float) -> bool:
        try:
            await self.page.wait_for_function(TRAINED_JS, polling="raf", timeout=timeout * 1000)
            self._trained = await self.page.evaluate("() => window.__ganae.trained === null ? new Promise(r => "
                                                     "requestAnimationFrame(() => r(window.__ganae.trained))) : "
                                                     "window.__ganae.trained")
            return True
        except Exception:
            return False

    def first_step_s(self) -> float | None:
        """Seconds from the last click's pointerdown to the frame that showed a step above 0 (page clock)."""
        t, c = self._trained, self._clicked
        return None if t is None or c is None else max(0.0, t - c) / 1000

    async def check(self) -> None:
        try:
            texts = await self.page.eval_on_selector_all(ERRORS_SELECTOR,
                                                         "els => els.map(e => e.innerText.slice(0, 200))")
        except Exception:
            return
        for t in texts:
            if t not in self._seen:
                self._seen.add(t)
                self.st.errors.append(f"error box: {t}")

    async def close(self) -> None:
        if self.ctx is not None:
            await self.ctx.close()


class WirePage:
    """A student without a browser: Streamlit's own websocket protocol, spoken the way its frontend speaks it.

    It connects to /_stcore/stream, asks for the Playground (with the link's query string) and then keeps what the
    frontend would keep: the buttons by key (their widget ids, fragment and disabled flag), the state line, the
    query string the page writes (the run id) and the live fragment's timer (AutoRerun: it asks for the fragment's
    rerun every `interval` seconds, as the frontend does; a full run clears the timers) and the page's script
    hash (sent with every rerun, as the frontend does: st.rerun() on the server reruns the page the request named,
    and one that names none gets the Home page). A click is a rerun request
    with the button's trigger. Nothing is drawn: an interaction counts as done when the server's answer arrives,
    so its time is the server's part alone, and a client costs ~1 % of a core instead of a browser's 0.2-0.4."""

    def __init__(self, st: Student):
        self.st = st
        self.page_name = self.query = ""
        self.page_hash = ""                                      # the page's script hash, once the server named it
        self.ws = None
        self.buttons: dict[str, tuple[str, str, bool]] = {}     # key -> (widget id, fragment id, disabled)
        self.line: dict[str, Any] | None = None                  # the latest state line: {"step", "text"}
        self.timers: dict[str, asyncio.Task] = {}                # fragment id -> its auto-rerun task
        self.finished = asyncio.Event()                          # the last script run has finished
        self.changed = asyncio.Event()                           # a new state line arrived
        self.reader: asyncio.Task | None = None
        self._seen: set[str] = set()
        # as the frontend does, when set: the hashes of the cacheable messages received, announced with every rerun
        # (the server may then answer with a reference instead of the message; tests/e2e check that it does not)
        self.cached: set[str] | None = None
        self.refs = 0                                            # reference messages received

    async def open(self, url: str) -> None:
        from websockets.asyncio.client import connect
        page, _, self.query = url.partition("?")
        base, _, self.page_name = page.rpartition("/")
        ws_url = base.replace("http://", "ws://", 1) + "/_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=120)
        self.reader = asyncio.create_task(self._read())
        await self._rerun()
        deadline = time.monotonic() + 120
        while "pg_play" not in self.buttons or not self.finished.is_set():
            if time.monotonic() > deadline or self.reader.done():
                raise TimeoutError("the Playground did not arrive")
            await asyncio.sleep(0.02)

    async def _rerun(self, trigger: str | None = None, fragment_id: str = "", auto: bool = False) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        if self.page_hash:          # (what the frontend sends: a rerun that names no page runs the default page)
            cs.page_script_hash = self.page_hash
        else:
            cs.page_name = self.page_name
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = auto
        if self.cached:
            cs.cached_message_hashes.extend(sorted(self.cached))
        if trigger is not None:
            w = cs.widget_states.widgets.add()
            w.id = trigger
            w.trigger_value = True
        if not fragment_id:
            self.finished.clear()
        await self.ws.send(msg.SerializeToString())

    async def _auto(self, fragment_id: str, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self._rerun(fragment_id=fragment_id, auto=True)
            except Exception:            # the connection closed: the reader notes it, the timer just ends
                return

    def _stop_timers(self, ids=None) -> None:
        for fid in list(self.timers) if ids is None else ids:
            task = self.timers.pop(fid, None)
            if task is not None:
                task.cancel()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        try:
            async for data in self.ws:
                self.st.on_frame(data)
                msg = ForwardMsg.FromString(data)
                kind = msg.WhichOneof("type")
                if kind == "ref_hash":
                    self.refs += 1
                elif self.cached is not None and msg.metadata.cacheable and msg.hash:
                    self.cached.add(msg.hash)
                if kind == "new_session" and not msg.metadata.run.fragment_ids:
                    self._stop_timers()                  # a full run: its fragments announce their timers anew
                elif kind == "navigation":               # (st.navigation names the page it runs)
                    self.page_hash = msg.navigation.page_script_hash
                elif kind == "auto_rerun":
                    self._stop_timers([msg.auto_rerun.fragment_id])
                    self.timers[msg.auto_rerun.fragment_id] = asyncio.create_task(
                        self._auto(msg.auto_rerun.fragment_id, msg.auto_rerun.interval))
                elif kind == "stop_auto_rerun":
                    self._stop_timers(list(msg.stop_auto_rerun.fragment_ids))
                elif kind == "page_info_changed":
                    self.query = msg.page_info_changed.query_string
                elif kind == "script_finished":
                    if not msg.metadata.run.fragment_ids:
                        self.finished.set()
                elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    self._element(msg.delta.new_element, msg.delta.fragment_id)
        except Exception as e:                           # a closed connection ends the reader
            if not getattr(self, "_closing", False):
                self.st.errors.append(f"connection: {type(e).__name__}: {str(e)[:160]}")
        finally:
            self._stop_timers()

    def _element(self, el, fragment_id: str) -> None:
        which = el.WhichOneof("type")
        if which == "button" and el.button.id:
            key = el.button.id.rsplit("-", 1)[-1]
            self.buttons[key] = (el.button.id, fragment_id, el.button.disabled)
        elif which == "markdown" and "ganae-step" in el.markdown.body:
            body = el.markdown.body
            i = body.index('data-step="') + len('data-step="')
            self.line = {"step": int(body[i:body.index('"', i)]), "text": body}
            self.changed.set()
        elif which == "exception" or (which == "alert" and el.alert.format == 1):     # Alert.ERROR
            text = (el.exception.message if which == "exception" else el.alert.body)[:200]
            if text not in self._seen:
                self._seen.add(text)
                self.st.errors.append(f"error box: {text}")

    async def state(self) -> dict[str, Any] | None:
        return self.line

    async def interact(self, kind: str, key: str, words: list[str], step: int | None) -> bool:
        st = self.st
        deadline = time.monotonic() + INTERACTION_TIMEOUT_S
        while key not in self.buttons or self.buttons[key][2]:          # not there yet, or disabled
            if time.monotonic() > deadline:
                st.errors.append(f"{kind}: no usable button {key}")
                return False
            await asyncio.sleep(0.05)
        wid, fragment_id, _ = self.buttons[key]
        st.expect(kind, words, step)
        t0 = time.perf_counter()
        await self._rerun(trigger=wid, fragment_id=fragment_id)
        while getattr(st, "_pending", None) is not None:
            if time.monotonic() > deadline:
                st._pending = None
                st.errors.append(f"{kind}: no answer within {INTERACTION_TIMEOUT_S:g} s")
                return False
            await asyncio.sleep(0.005)
        st.note(kind, time.perf_counter() - t0)
        return True

    def first_step_s(self) -> float | None:
        return None                           # the caller's clock is this client's clock

    async def wait_trained(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not (self.line and self.line["step"] > 0):
            if time.monotonic() > deadline:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                pass
        return True

    async def check(self) -> None:
        pass                                  # error boxes are noted as they arrive

    async def close(self) -> None:
        self._closing = True
        self._stop_timers()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


def _waited(st: Student, done: bool) -> None:
    """Account the wait since the last Train click (done: the counter grew, or the student paused)."""
    if st.waiting_since is not None:
        st.max_wait_s = max(st.max_wait_s, time.monotonic() - st.waiting_since)
        if done:
            st.waiting_since = None


async def _watch(st: Student, page, seconds: float, last: int | None = None) -> None:
    """Look at the page for `seconds`, noting the step counter and error boxes about once a second."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = await page.state()
        if s is not None:
            step = int(s["step"])
            st.steps_seen.append(step)
            if "queued" in s["text"]:
                st.queued_seen = True
            if last is not None and step > last and "training" in s["text"]:
                st.trained_steps += step - last
                _waited(st, done=True)
            last = step
        await page.check()
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
    _waited(st, done=False)


async def student(st: Student, page, page_url: str, start_delay: float, seconds: float, rng: random.Random,
                  watch: tuple[float, float], t_class: float) -> None:
    """One student on `page` (a BrowserPage or a WirePage): open the Playground, Train, then watch / Pause /
    Step D / Train until `seconds` are up."""
    await asyncio.sleep(start_delay)
    try:
        t0 = time.perf_counter()
        await page.open(page_url)
        st.open_s = time.perf_counter() - t0
        end = time.monotonic() + seconds
        # the first Train builds the run (model, data, a first evaluation): the label says training or queued ...
        st.waiting_since = clicked = time.monotonic()
        before = 0                             # the counter when Train was pressed (a new run: 0)
        if await page.interact("start", "pg_play", ["training", "queued", "finished"], None):
            st.started_at = time.monotonic() - t_class
            # ... and the counter grows once a slot is free
            if await page.wait_trained(max(5.0, end - time.monotonic())):
                driver = time.monotonic() - clicked
                own = page.first_step_s()
                st.first_step_s = driver if own is None else own
                if own is not None:
                    st.first_step_driver_s = driver
                _waited(st, done=True)
            else:                              # still queued when its time was up
                _waited(st, done=False)
        while time.monotonic() < end:
            s = await page.state()
            await _watch(st, page, min(rng.uniform(*watch), max(0.0, end - time.monotonic())),
                         int(s["step"]) if s else None)
            if time.monotonic() >= end:
                break
            if not await page.interact("pause", "pg_pause", ["paused", "finished"], None):
                continue
            _waited(st, done=True)             # a student who pauses is not waiting any more
            s = await page.state()
            if s is not None and before is not None:
                st.trained_exact += max(0, int(s["step"]) - before)
            before = None
            if s is not None and "paused" in s["text"]:
                if await page.interact("step D", "pg_step_d", ["paused"], int(s["step"]) + 1):
                    st.manual_steps += 1
            await asyncio.sleep(rng.uniform(0.5, 1.5))
            st.waiting_since = time.monotonic()
            s = await page.state()
            before = int(s["step"]) if s is not None and "paused" in s["text"] else None
            await page.interact("train", "pg_play", ["training", "queued", "finished"], None)
        s = await page.state()                 # time is up while it trains: what it trained since the last Train
        if s is not None and before is not None:
            st.trained_exact += max(0, int(s["step"]) - before)
        await page.check()
        st.finished = True
    except Exception as e:
        st.errors.append(f"session failed: {type(e).__name__}: {str(e)[:200]}")
    finally:
        try:
            await page.close()
        except Exception:
            pass


# ---- the class ----------------------------------------------------------------------------------------------
async def _lecturer(page_url: str, timeout: float = 120.0) -> float:
    """Before the class: the lecturer opens the lesson's link, presses Train, sees it train, and closes the tab
    (the run is freed after the grace period, during the class) -- the server has drawn the Playground and started
    its training engine once, as it has when students follow a link the lecturer shared. Seconds it took."""
    t0 = time.perf_counter()
    page = WirePage(Student(-1, client="wire"))
    try:
        await page.open(page_url)
        if not await page.interact("start", "pg_play", ["training", "queued", "finished"], None) or \
                not await page.wait_trained(timeout):
            raise RuntimeError(f"the lecturer's run did not train: {page.st.errors[:3]}")
    finally:
        await page.close()
    return time.perf_counter() - t0


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def _sample(served: Served, series: list[dict[str, Any]], stop: asyncio.Event, t0: float,
                  browser_nice: int = 0) -> None:
    cpu0, bcpu0, w0 = served.cpu(), client_cpu_seconds(served), time.monotonic()
    tcpu0, rcpu0 = served.train_cpu(), served.ray_cpu()
    lcpu0 = None
    while not stop.is_set():
        s = served.stats()
        lcpu = (s.get("thread_cpu") or {}).get("MainThread")     # the server's event loop (websockets)
        cpu, bcpu, w = served.cpu(), client_cpu_seconds(served), time.monotonic()
        # (a runner or actor that ended meanwhile takes its CPU time along: clamp at 0)
        tcpu, rcpu = served.train_cpu(), served.ray_cpu()
        if browser_nice:                   # new renderers appear with every student
            renice(browser_pids(served, driver=False), browser_nice)     # (the driver measures: full speed)
        names = served.thread_names()
        dt = max(1e-6, w - w0)
        series.append({"t": round(w - t0, 2), "rss_mb": served.rss_mb(), "ray_rss_mb": served.ray_rss_mb(),
                       "running": s.get("running"), "queued": s.get("queued"), "runs": s.get("runs"),
                       "training": s.get("training"), "cohorts": s.get("cohorts"),
                       "runner_threads": served.runner_threads(),
                       "threads": len(names),
                       "server_cpu": round((cpu - cpu0) / dt, 2),
                       "train_cpu": round(max(0.0, tcpu - tcpu0) / dt, 2),
                       "ray_cpu": round(max(0.0, rcpu - rcpu0) / dt, 2) if served.ray_roots else None,
                       "loop_cpu": round(max(0.0, lcpu - lcpu0) / dt, 2)
                       if lcpu is not None and lcpu0 is not None else None,
                       "client_cpu": round(max(0.0, bcpu - bcpu0) / dt, 2),
                       "load": os.getloadavg()[0]})
        cpu0, bcpu0, tcpu0, rcpu0, w0 = cpu, bcpu, tcpu, rcpu, w
        lcpu0 = lcpu
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def run_class(url: str, served: Served, sessions: int, seconds: float, ramp: float,
                    grace: float, seed: int = 0, watch: tuple[float, float] = (3.0, 7.0),
                    browser_nice: int = 0, planned_steps: int = PLANNED_STEPS, clients: str = "browser",
                    browsers: int = 0, mixed: bool = False, lecturer: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    series: list[dict[str, Any]] = []
    stop = asyncio.Event()
    students = [Student(i) for i in range(sessions)]
    before = {"rss_mb": served.rss_mb(), "threads": len(served.thread_names()), "ray_rss_mb": served.ray_rss_mb()}
    page_url = f"{url}/playground?train.steps={int(planned_steps)}"
    lecturer_s = await _lecturer(page_url) if lecturer else None
    t0 = time.monotonic()
    sampler = asyncio.create_task(_sample(served, series, stop, t0, browser_nice))
    urls = [page_url + (f"&{MIXES[(i // 2) % len(MIXES)]}" if mixed and i % 2 else "") for i in range(sessions)]
    rngs = [random.Random(rng.random()) for _ in students]
    # which students use Chromium: all of a browser class; `browsers` of a wire class, spread over its arrivals
    n_browsers = sessions if clients == "browser" else min(max(0, browsers), sessions)
    in_browser = {round(k * sessions / n_browsers) for k in range(n_browsers)} if n_browsers else set()
    for s in students:
        s.client = "browser" if s.index in in_browser else "wire"

    async def go(browser) -> None:
        await asyncio.gather(*(student(s, BrowserPage(s, browser) if s.client == "browser" else WirePage(s),
                                       urls[i], i * ramp, seconds, rngs[i], watch, t0)
                               for i, s in enumerate(students)))

    if not in_browser:
        await go(None)
    else:
        from playwright.async_api import async_playwright
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                await go(browser)
            finally:
                await browser.close()
    closed_at = time.monotonic() - t0
    # every tab is closed: the runs' grace period runs; wait until they are gone (or twice the grace and then some)
    deadline = time.monotonic() + grace * 2 + 30
    reaped_at = None
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        s = served.stats()
        threads = served.runner_threads()
        if s.get("runs") == 0 and threads == 0 and (s.get("time", 0) > time.time() - 5):
            reaped_at = time.monotonic() - t0
            break
    await asyncio.sleep(1.5)       # one more sample after the reaping
    stop.set()
    await sampler
    names = served.thread_names()
    after = {"rss_mb": served.rss_mb(), "threads": len(names), "thread_names": dict(collections.Counter(names)),
             "runner_threads": served.runner_threads(), "ray_hosts": len(served.run_hosts()),
             "ray_rss_mb": served.ray_rss_mb(), "stats": served.stats()}
    out = summarise(students, series, before, after, closed_at, reaped_at, sessions, seconds, ramp, grace)
    out["summary"]["lecturer_s"] = lecturer_s
    return out


def summarise(students: list[Student], series: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any],
              closed_at: float, reaped_at: float | None, sessions: int, seconds: float, ramp: float,
              grace: float) -> dict[str, Any]:
    lat: dict[str, list[float]] = {}
    for s in students:
        for k, v in s.latencies.items():
            lat.setdefault(k, []).extend(v)
    every = [x for v in lat.values() for x in v]
    by_client = {}
    for c in sorted({s.client for s in students}):
        xs = [x for s in students if s.client == c for v in s.latencies.values() for x in v]
        by_client[c] = {"students": sum(s.client == c for s in students), "n": len(xs), "p50_s": _pct(xs, 0.5),
                        "p95_s": _pct(xs, 0.95)}
        ds = [x for s in students if s.client == c for v in s.driver_latencies.values() for x in v]
        if ds:                             # Chromium: the same interactions timed from the driver's click call
            by_client[c] |= {"driver_p50_s": _pct(ds, 0.5), "driver_p95_s": _pct(ds, 0.95)}
    # the target is on the time to render: the browsers' when the class has any, else the wire clients' answers
    judged = by_client.get("browser") or by_client.get("wire") or {"p95_s": None}
    replies = [x for s in students for v in s.replies.values() for x in v]
    errors = [f"session {s.index}: {e}" for s in students for e in s.errors]
    # warm-up: every student has arrived and started a run, plus 5 s
    starts = [s.started_at for s in students if s.started_at is not None]
    warm_t = (max(starts) if starts else (sessions - 1) * ramp) + 5.0
    steady = [x for x in series if warm_t <= x["t"] <= closed_at and x["rss_mb"]]
    rss_warm = steady[0]["rss_mb"] if steady else None
    tail = steady[-max(1, len(steady) // 10):] if steady else []
    rss_end = max(x["rss_mb"] for x in tail) if tail else None
    growth = (rss_end - rss_warm) / rss_warm if rss_warm and rss_end else None
    active = [x for x in series if x["t"] <= closed_at and x["running"] is not None]
    stats_after = after.get("stats") or {}
    summary = {
        "sessions": sessions, "seconds": seconds, "ramp_s": ramp, "grace_s": grace,
        "errors": len(errors), "error_samples": errors[:20],
        "console_errors": sum(len(s.console_errors) for s in students),
        "interactions": len(every),
        "p50_s": _pct(every, 0.5), "p95_s": _pct(every, 0.95), "max_s": max(every) if every else None,
        "reply_n": len(replies), "reply_p50_s": _pct(replies, 0.5), "reply_p95_s": _pct(replies, 0.95),
        "by_client": by_client, "judged_p95_s": judged["p95_s"],
        "by_kind": {k: {"n": len(v), "p50_s": _pct(v, 0.5), "p95_s": _pct(v, 0.95)} for k, v in lat.items()},
        "open_p50_s": _pct([s.open_s for s in students if s.open_s is not None], 0.5),
        "open_p95_s": _pct([s.open_s for s in students if s.open_s is not None], 0.95),
        "first_step_p50_s": _pct([s.first_step_s for s in students if s.first_step_s is not None], 0.5),
        "first_step_max_s": max((s.first_step_s for s in students if s.first_step_s is not None), default=None),
        # per kind of student: over the wire it is the server's part; in Chromium it runs to the first frame the page
        # paints with a step above 0, in a browser that shares its core with the simulated rest of the class
        "first_step_by_client": {
            c: {"p50_s": _pct(v, 0.5), "max_s": max(v), "n": len(v)} | (
                {"driver_p50_s": _pct(d, 0.5), "driver_max_s": max(d)} if d else {})
            for c in sorted({s.client for s in students})
            for v in [[s.first_step_s for s in students if s.client == c and s.first_step_s is not None]] if v
            for d in [[s.first_step_driver_s for s in students if s.client == c
                       and s.first_step_driver_s is not None]]},
        "max_wait_s": max((s.max_wait_s for s in students), default=0.0),
        "sessions_finished": sum(s.finished for s in students),
        "sessions_trained": sum(s.trained_steps > 0 for s in students),
        "sessions_step_grew": sum(s.first_step_s is not None or (bool(s.steps_seen) and max(s.steps_seen) >
                                                                  s.manual_steps) for s in students),
        "sessions_queued": sum(s.queued_seen for s in students),
        "steps_trained_per_session_median": statistics.median([s.trained_steps for s in students]) if students
        else None,
        "steps_trained_exact_median": statistics.median([s.trained_exact for s in students]) if students else None,
        "rss_mb_before": before["rss_mb"], "rss_mb_warm": rss_warm, "rss_mb_end": rss_end,
        "rss_mb_peak": max((x["rss_mb"] for x in series if x["rss_mb"]), default=None),
        "rss_mb_after_reap": after["rss_mb"], "rss_growth_after_warmup": growth,
        "warmup_end_s": warm_t, "closed_at_s": closed_at,
        "running_max": max((x["running"] for x in active), default=None),
        "running_mean": statistics.fmean(x["running"] for x in active) if active else None,
        "training_max": max((x["training"] for x in active if x.get("training") is not None), default=None),
        "training_mean": statistics.fmean(x["training"] for x in active if x.get("training") is not None)
        if any(x.get("training") is not None for x in active) else None,
        "cohorts_max": max((x["cohorts"] for x in active if x.get("cohorts") is not None), default=None),
        "queued_max": max((x["queued"] for x in active), default=None),
        "queued_mean": statistics.fmean(x["queued"] for x in active) if active else None,
        "runs_max": max((x["runs"] for x in active if x["runs"] is not None), default=None),
        "server_cpu_mean": statistics.fmean(x["server_cpu"] for x in active) if active else None,
        "client_cpu_mean": statistics.fmean(x["client_cpu"] for x in active) if active else None,
        "train_cpu_mean": statistics.fmean(x["train_cpu"] for x in active) if active else None,
        "ray_cpu_mean": statistics.fmean(x["ray_cpu"] for x in active if x.get("ray_cpu") is not None)
        if any(x.get("ray_cpu") is not None for x in active) else None,
        "ray_rss_mb_peak": max((x["ray_rss_mb"] for x in series if x.get("ray_rss_mb")), default=None),
        "ray_rss_mb_after_reap": after.get("ray_rss_mb"), "ray_hosts_after": after.get("ray_hosts"),
        "loop_cpu_mean": statistics.fmean(x["loop_cpu"] for x in active if x["loop_cpu"] is not None)
        if any(x["loop_cpu"] is not None for x in active) else None,
        "load_mean": statistics.fmean(x["load"] for x in series) if series else None,
        "reaped_after_close_s": (reaped_at - closed_at) if reaped_at is not None else None,
        "runs_left": stats_after.get("runs"), "runner_threads_left": after["runner_threads"],
        "runner_threads_left_stats": None if stats_after.get("runner_threads") is None else
        stats_after.get("runner_threads") + (stats_after.get("cohort_threads") or 0),
        "threads_before": before["threads"], "threads_after": after["threads"],
        "thread_names_after": after["thread_names"],
        "python_threads_after": sorted((stats_after.get("thread_cpu") or {})),
    }
    summary["targets_met"] = {
        "errors": summary["errors"] == TARGETS["errors"],
        "p95_interaction": judged["p95_s"] is not None and judged["p95_s"] <= TARGETS["p95_s"],
        "rss_growth": growth is not None and growth < TARGETS["rss_growth"],
        "runner_threads_left": summary["runner_threads_left"] == TARGETS["runner_threads_left"]
        and summary["runs_left"] == 0,
    }
    return {"summary": summary, "series": series, "students": [asdict(s) for s in students]}


def classroom(sessions: int = 20, seconds: float = 300.0, grace: float = 20.0, max_training: int = 0,
              ramp: float = 0.5, seed: int = 0, log_path: Path | None = None, browser_nice: int = 0,
              extra_env: dict[str, str] | None = None, planned_steps: int = PLANNED_STEPS,
              clients: str = "browser", browsers: int = 0, server_cpus: set[int] | None = None,
              client_cpus: set[int] | None = None, mixed: bool = False, replicas: int = 0, ray_nodes: int = 2,
              ray_cpus: set[int] | None = None, lecturer: bool = False) -> dict[str, Any]:
    """Start a server (or, with `replicas`, the whole set of dashboard/serve.py: a local Ray cluster of `ray_nodes`
    one-CPU nodes on `ray_cpus`, the replicas and HAProxy on `server_cpus`), run the class, stop what was started;
    returns {"summary", "series", "students"}."""
    if (clients == "browser" or browsers) and not Path(CHROMIUM).exists():
        raise RuntimeError(f"Debian's chromium is not installed at {CHROMIUM}")
    with tempfile.TemporaryDirectory(prefix="ganae-classroom-") as tmp:
        n = max(1, replicas)
        stats = [str(Path(tmp) / f"stats-{i}.json") for i in range(n)]
        env = {"GANAE_GRACE_S": str(grace)}
        if max_training:
            env["GANAE_MAX_TRAINING"] = str(max_training)
        env.update(extra_env or {})
        if replicas:
            out = _class_on_replicas(env, stats, replicas, ray_nodes, server_cpus, client_cpus, ray_cpus,
                                     sessions, seconds, ramp, grace, seed, browser_nice, planned_steps, clients,
                                     browsers, mixed, lecturer)
        else:
            proc, url = start_server({**env, "GANAE_STATS_FILE": stats[0]},
                                     log_path or ARTIFACTS / "classroom-server.log", server_cpus)
            if client_cpus:        # this script, its wire clients and the browsers it starts
                os.sched_setaffinity(0, client_cpus)
            try:       # (the stats file appears with the registry, i.e. once the first student's page has run)
                out = asyncio.run(run_class(url, Served([proc.pid], stats), sessions, seconds, ramp, grace, seed,
                                            browser_nice=browser_nice, planned_steps=planned_steps,
                                            clients=clients, browsers=browsers, mixed=mixed,
                                            lecturer=lecturer))
            finally:
                stop_server(proc)
    # (the server's default: a slot per core, two per core with cohorts -- dashboard.runtime.training_slots)
    per_core = 2 if {**os.environ, **(extra_env or {})}.get("GANAE_COHORTS") == "1" else 1
    out["summary"]["max_training"] = max_training or (ray_nodes if replicas else (os.cpu_count() or 1) * per_core)
    out["summary"]["browser_nice"] = browser_nice
    out["summary"]["server_cpus"] = sorted(server_cpus) if server_cpus else None
    out["summary"]["client_cpus"] = sorted(client_cpus) if client_cpus else None
    out["summary"]["replicas"] = replicas
    out["summary"]["ray_nodes"] = ray_nodes if replicas else 0
    out["summary"]["ray_cpus"] = sorted(ray_cpus) if replicas and ray_cpus else None
    out["summary"]["clients"] = clients
    out["summary"]["browsers"] = sessions if clients == "browser" else min(browsers, sessions)
    out["summary"]["planned_steps"] = planned_steps
    out["summary"]["mixed"] = list(MIXES) if mixed else []
    out["summary"]["lecturer_first"] = lecturer
    out["summary"]["server_env"] = {k: v for k, v in os.environ.items() if k.startswith("GANAE_")} | (extra_env or {})
    out["summary"]["cpus"] = os.cpu_count()
    return out


def _class_on_replicas(env: dict[str, str], stats: list[str], replicas: int, ray_nodes: int,
                       server_cpus: set[int] | None, client_cpus: set[int] | None, ray_cpus: set[int] | None,
                       sessions: int, seconds: float, ramp: float, grace: float, seed: int, browser_nice: int,
                       planned_steps: int, clients: str, browsers: int, mixed: bool,
                       lecturer: bool = False) -> dict[str, Any]:
    """The class through HAProxy: dashboard/serve.py's ReplicaSet on this machine (Ray nodes inherit this
    process's CPUs when they start: `ray_cpus` first, then the students' `client_cpus`)."""
    sys.path.insert(0, str(ROOT / "dashboard"))
    from serve import ReplicaSet
    own = os.sched_getaffinity(0)
    if ray_cpus:
        os.sched_setaffinity(0, ray_cpus)
    try:
        rs = ReplicaSet(port=free_port(), replicas=replicas, ray_nodes=ray_nodes, cpus_per_node=1, env=env,
                        replica_env=[{"GANAE_STATS_FILE": p} for p in stats], web_cpus=server_cpus)
        rs.__enter__()
    finally:
        os.sched_setaffinity(0, client_cpus or own)
    try:
        served = Served([p.pid for p in rs.procs[:replicas]], stats, [p.pid for p in rs.cluster.procs])
        out = asyncio.run(run_class(rs.url, served, sessions, seconds, ramp, grace, seed,
                                    browser_nice=browser_nice, planned_steps=planned_steps,
                                    clients=clients, browsers=browsers, mixed=mixed, lecturer=lecturer))
        out["summary"]["ray_address"] = rs.ray
        out["summary"]["logs"] = str(rs.folder)
    finally:
        rs.close()
    return out


def clients_text(s: dict[str, Any]) -> str:
    n, b = s["sessions"], s.get("browsers", s["sessions"])
    if b == n:
        return (f"{n} in Chromium on this machine (an interaction counts when the page shows its effect; the "
                f"browsers share the CPU with the server)")
    wire = (f"over Streamlit's websocket protocol, drawing nothing (an interaction counts when the server's answer "
            f"arrives)")
    if b == 0:
        return f"{n} {wire}"
    return (f"{b} in Chromium (counted when drawn; the p95 target is judged on them), {n - b} {wire}")


def report(s: dict[str, Any]) -> str:
    def f(x, fmt="{:.2f}"):
        return "—" if x is None else fmt.format(x)

    met = s["targets_met"]
    ray = bool(s.get("replicas"))
    # one server: its CPU is training + event loop + pages; replicas: pages + loops alone (training is on Ray)
    pages = None if s["server_cpu_mean"] is None else \
        s["server_cpu_mean"] - (0 if ray else (s["train_cpu_mean"] or 0)) - (s["loop_cpu_mean"] or 0)
    split = f"{f(s['train_cpu_mean'])} / {f(s['loop_cpu_mean'])} / {f(pages)}"
    yes = {True: "yes", False: "NO"}
    lines = [f"classroom: {s['sessions']} sessions × {s['seconds']:g} s, students {s['ramp_s']:g} s apart, "
             f"admission {s['max_training']} training at once, grace {s['grace_s']:g} s, {s['cpus']} CPU cores, "
             f"mean load {f(s['load_mean'], '{:.1f}')}"
             + (f", browsers at nice {s['browser_nice']}" if s.get("browser_nice") else "")
             + (f", server on CPU {s['server_cpus']}" if s.get("server_cpus") else "")
             + (f", students on CPU {s['client_cpus']}" if s.get("client_cpus") else ""),
             *([f"served by {s['replicas']} replicas behind HAProxy (the 'server' rows: all replicas), training on "
                f"a local Ray cluster of {s['ray_nodes']} one-CPU nodes"
                + (f" on CPU {s['ray_cpus']}" if s.get("ray_cpus") else "")] if ray else []),
             f"students: {clients_text(s)}"
             + (f"; every other student changes the link: {', '.join(s['mixed'])} in turn" if s.get("mixed") else "")
             + (f"; the lecturer opened the link and trained first ({f(s.get('lecturer_s'))} s)"
                if s.get("lecturer_first") else ""),
             f"{'':38}{'value':>12}{'target':>10}{'met':>6}",
             f"{'errors':38}{s['errors']:>12}{'0':>10}{yes[met['errors']]:>6}",
             f"{'interaction p50 (s)':38}{f(s['p50_s']):>12}",
             f"{'interaction p95 (s)':38}{f(s['judged_p95_s']):>12}{'≤ 1.00':>10}{yes[met['p95_interaction']]:>6}"]
    by_client = s.get("by_client") or {}
    if len(by_client) > 1:
        for c, label in (("browser", "  in Chromium (drawn)"), ("wire", "  over the wire (answer)")):
            v = by_client[c]
            lines.append(f"{label + ' p50 / p95 (n)':38}{f(v['p50_s']) + ' / ' + f(v['p95_s']):>18} ({v['n']})")
            if v.get("driver_p95_s") is not None:
                lines.append(f"{'    from the driver’s click call':38}"
                             f"{f(v['driver_p50_s']) + ' / ' + f(v['driver_p95_s']):>18}")
    for k, v in s["by_kind"].items():
        lines.append(f"{'  ' + k + ' p50 / p95 (n)':38}{f(v['p50_s']) + ' / ' + f(v['p95_s']):>18} ({v['n']})")
    if s.get("reply_n"):
        lines.append(f"{'server answer p50 / p95 (n)':38}{f(s['reply_p50_s']) + ' / ' + f(s['reply_p95_s']):>18}"
                     f" ({s['reply_n']})")
    lines += [
        f"{'page open p50 / p95 (s)':38}{f(s['open_p50_s']) + ' / ' + f(s['open_p95_s']):>18}",
        f"{'Train → first step p50 / max (s)':38}{f(s['first_step_p50_s']) + ' / ' + f(s['first_step_max_s']):>18}",
        *[line for c, label in (("browser", "in Chromium (drawn)"), ("wire", "over the wire (answer)"))
          for v in [(s.get("first_step_by_client") or {}).get(c)] if v and len(s.get("first_step_by_client")) > 1
          for line in [f"{'  ' + label + ' p50 / max (n)':38}{f(v['p50_s']) + ' / ' + f(v['max_s']):>18} ({v['n']})",
                       *([f"{'    from the driver’s click call':38}"
                          f"{f(v['driver_p50_s']) + ' / ' + f(v['driver_max_s']):>18}"]
                         if v.get("driver_max_s") is not None else [])]],
        f"{'longest wait for a slot (s)':38}{f(s['max_wait_s']):>12}",
        f"{'sessions: finished / trained / queued':38}"
        f"{str(s['sessions_finished']) + ' / ' + str(s['sessions_trained']) + ' / ' + str(s['sessions_queued']):>12}",
        f"{'steps trained per session (median)':38}{f(s['steps_trained_per_session_median'], '{:.0f}'):>12}",
        f"{'  from the counter at Train and Pause':38}{f(s.get('steps_trained_exact_median'), '{:.0f}'):>12}",
        f"{'slots busy max / mean':38}{f(s['running_max'], '{:.0f}') + ' / ' + f(s['running_mean'], '{:.1f}'):>12}",
        f"{'runs training or queued max / mean':38}"
        f"{f(s.get('training_max'), '{:.0f}') + ' / ' + f(s.get('training_mean'), '{:.1f}'):>12}",
        f"{'class cohorts at once (max)':38}{f(s.get('cohorts_max'), '{:.0f}'):>12}",
        f"{'runs queued max / mean':38}{f(s['queued_max'], '{:.0f}') + ' / ' + f(s['queued_mean'], '{:.1f}'):>12}",
        f"{'CPU cores: server / clients':38}{f(s['server_cpu_mean']) + ' / ' + f(s['client_cpu_mean']):>12}",
        *([f"{'  server: training / loop / pages':38}{split:>18}"] if not ray else [
            f"{'  replicas: loops / pages':38}{f(s['loop_cpu_mean']) + ' / ' + f(pages):>12}",
            f"{'CPU cores: Ray all / of it run actors':38}{f(s['ray_cpu_mean']) + ' / ' + f(s['train_cpu_mean']):>12}",
            f"{'Ray RSS MB peak / after the reaping':38}{f(s['ray_rss_mb_peak'], '{:.0f}')} / "
            f"{f(s['ray_rss_mb_after_reap'], '{:.0f}')}"]),
        f"{'RSS MB before / warm / end / peak':38}{f(s['rss_mb_before'], '{:.0f}')} / {f(s['rss_mb_warm'], '{:.0f}')}"
        f" / {f(s['rss_mb_end'], '{:.0f}')} / {f(s['rss_mb_peak'], '{:.0f}')}",
        f"{'RSS growth after warm-up':38}{f(s['rss_growth_after_warmup'], '{:+.1%}'):>12}{'< 10%':>10}"
        f"{yes[met['rss_growth']]:>6}",
        f"{'RSS MB after the runs were reaped':38}{f(s['rss_mb_after_reap'], '{:.0f}'):>12}",
        f"{'runs freed after the last tab closed (s)':38}{f(s['reaped_after_close_s'], '{:.1f}'):>12}",
        f"{'runs / runner threads left':38}{str(s['runs_left']) + ' / ' + str(s['runner_threads_left']):>12}"
        f"{'0 / 0':>10}{yes[met['runner_threads_left']]:>6}",
        f"{'server threads before / after':38}{str(s['threads_before']) + ' / ' + str(s['threads_after']):>12}",
    ]
    if s["error_samples"]:
        lines.append("first errors:")
        lines += [f"  {e}" for e in s["error_samples"][:10]]
    return "\n".join(lines)


def timeline(series: list[dict[str, Any]], rows: int = 12) -> str:
    if not series:
        return ""
    step = max(1, len(series) // rows)
    out = [f"{'t (s)':>7}{'RSS MB':>9}{'training':>10}{'queued':>8}{'runs':>6}{'runner thr':>12}{'server CPU':>12}"
           f"{'clients':>10}"]
    for x in series[::step] + ([series[-1]] if (len(series) - 1) % step else []):
        out.append(f"{x['t']:>7.0f}{(x['rss_mb'] or 0):>9.0f}{str(x['running']):>10}{str(x['queued']):>8}"
                   f"{str(x['runs']):>6}{x['runner_threads']:>12}{x['server_cpu']:>12.2f}{x['client_cpu']:>10.2f}")
    return "\n".join(out)


def _cpus(text: str) -> set[int]:
    """'0' / '0,1' / '0-3' -> a set of CPU numbers."""
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20, help="browser sessions (students)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--minutes", type=float, help="how long each student trains and watches (default 5)")
    g.add_argument("--seconds", type=float, help="the same in seconds")
    ap.add_argument("--grace", type=float, default=20.0, help="GANAE_GRACE_S of the server (s)")
    ap.add_argument("--max-training", type=int, default=0,
                    help="GANAE_MAX_TRAINING (0: the server's default, a slot per core, two per core with --cohorts)")
    ap.add_argument("--ramp", type=float, default=0.5, help="seconds between two students' arrivals")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--browser-nice", type=int, default=0,
                    help="run the browsers at this niceness (e.g. 10): on a small machine that hosts both, the server "
                         "then gets the CPU first, as it would with the students' browsers on their own machines")
    ap.add_argument("--planned-steps", type=int, default=PLANNED_STEPS,
                    help="train.steps in the link the students open (a run that reaches it stops)")
    ap.add_argument("--clients", choices=("browser", "wire"), default="browser",
                    help="browser: one Chromium context per student (the page drawn, as a student sees it); wire: "
                         "students speak Streamlit's websocket protocol without drawing (the server's part alone, "
                         "at ~1 %% of a core per student: a class's load without its laptops on this machine)")
    ap.add_argument("--browsers", type=int, default=0,
                    help="with --clients wire: this many of the students use Chromium (spread over the arrivals): "
                         "what a student sees on their screen while the rest of the class loads the server")
    ap.add_argument("--server-cpus", type=_cpus, help="run the server on these CPUs only (e.g. 0): how many "
                    "students one core serves")
    ap.add_argument("--client-cpus", type=_cpus, help="run the students (this script, its browsers) on these "
                    "CPUs only (e.g. 1): their laptops, kept off the server's cores")
    ap.add_argument("--cohorts", action="store_true",
                    help="serve with class cohorts on (GANAE_COHORTS=1): runs of one structure train together")
    ap.add_argument("--train-process", action="store_true",
                    help="serve with GANAE_TRAIN_PROCESS=1: runs (and cohorts) train in one process beside the "
                         "server, off its GIL (ganae/local_host.py); counted as part of the server")
    ap.add_argument("--mixed", action="store_true",
                    help=f"every other student changes the link's loss or a trick ({', '.join(MIXES)} in turn): "
                         f"a mixed class, several cohorts")
    ap.add_argument("--replicas", type=int, default=0,
                    help="serve through HAProxy with this many replicas and training on a local Ray cluster "
                         "(dashboard/serve.py's set; needs haproxy, and a loopback-only network namespace for Ray: "
                         "unshare -n); the server CPUs then hold the replicas and HAProxy")
    ap.add_argument("--ray-nodes", type=int, default=2, help="with --replicas: one-CPU Ray nodes (default 2)")
    ap.add_argument("--ray-cpus", type=_cpus, help="with --replicas: run the Ray nodes on these CPUs only")
    ap.add_argument("--lecturer-first", action="store_true",
                    help="before the students, the lecturer opens the link, trains a moment and closes the tab (the "
                         "server has drawn the Playground and started its engine once, as when a class follows a "
                         "link its lecturer shared); default: students arrive as soon as the server answers")
    ap.add_argument("--json", type=Path, help="write summary, time series and per-student records here")
    a = ap.parse_args()
    seconds = a.seconds if a.seconds is not None else 60.0 * (a.minutes if a.minutes is not None else 5.0)
    out = classroom(a.sessions, seconds, a.grace, a.max_training, a.ramp, a.seed, browser_nice=a.browser_nice,
                    extra_env={**({"GANAE_COHORTS": "1"} if a.cohorts else {}),
                               **({"GANAE_TRAIN_PROCESS": "1"} if a.train_process else {})} or None,
                    planned_steps=a.planned_steps, clients=a.clients,
                    browsers=a.browsers, server_cpus=a.server_cpus, client_cpus=a.client_cpus, mixed=a.mixed,
                    replicas=a.replicas, ray_nodes=a.ray_nodes, ray_cpus=a.ray_cpus, lecturer=a.lecturer_first)
    print(report(out["summary"]))
    print()
    print(timeline(out["series"]))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
