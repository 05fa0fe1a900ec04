"""The dashboard's side of live training: one registry of runs per server process, one marker per browser
session, the run id in the URL. No training logic lives here: pages call `Runner` methods only.

- `registry()`: the process-wide `ganae.runner.Registry` (a global `st.cache_resource`) with its reaper.
- `session_token()`: a session-scoped resource; when Streamlit releases it (the tab closed or lost its
  connection for good), the session's runs start their grace period and are reaped if nobody comes back.
- `current_run(key)` / `remember_run(key, runner)`: the run id lives in `st.query_params["run"]`, so a
  refresh or a reconnect finds the same run and its history.
- `owner_token()`: this browser's secret, kept in a cookie (never in a URL). Runs and arenas started here are
  made with it, and only commands that bring it change them: someone who opens a copied address **watches**
  (`watching(run)`, `watch_banner(...)`: the live view, controls off, and "Make my own copy").
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import re
import secrets
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import streamlit as st
import torch

from dashboard import quote
from ganae import device as device_mod
from ganae.config import ConfigError, RunConfig
from ganae.runner import Gate, Registry, Runner, RunStatus
from ganae.trainer import Trainer

GRACE_S = float(os.environ.get("GANAE_GRACE_S", "300"))          # unviewed runs live this long
REAP_EVERY_S = min(10.0, max(0.5, GRACE_S / 4))                  # ... and are freed at most this much later
# Monitoring (benchmarks/classroom.py, an operator): when set, the registry's counts -- runs, training, queued,
# runs per state, runner threads alive, CPU seconds per kind of thread -- are written to this file as JSON once a
# second. Nothing is served over the network.
STATS_FILE = os.environ.get("GANAE_STATS_FILE", "")
STATS_EVERY_S = 1.0
# Training slots: how many runs train at once (GANAE_MAX_TRAINING). With class cohorts (GANAE_COHORTS=1; off by
# default) the runs of one setup -- a class on the teacher's link -- are members of one batched ensemble
# (ganae/cohort.py) that takes one slot for up to GANAE_COHORT_SIZE (32) runs: nobody queues, but on one core the
# class's 20 live pages then take the CPU from training (benchmarks/results/classroom-2026-12-03-cohorts.txt:
# 506 steps per student in 5 min against 1,054 with the queue). With the training process (GANAE_TRAIN_PROCESS=1)
# as well -- class mode, README "Serving a class" -- a class of 30 on one core meets every target (4,484-5,883 steps
# each, 2,060-2,736 on a slower core). It stays opt-in: one user gains nothing from a cohort of one.
COHORTS = os.environ.get("GANAE_COHORTS", "0") == "1"
# With cohorts a slot holds a whole setup's runs, and the cohorts training at once share the cores: a class whose
# students chose 4 setups (a mixed class) trained each student 1.8x the steps with 4 slots on one core as with 2
# slots taken in turns of 20 s, and nobody waited for a turn (README "Serving a class"). So the default is
# COHORT_SLOTS_PER_CORE per core with cohorts, one per core without (solo runs: more threads only fight).
COHORT_SLOTS_PER_CORE = 2


def training_slots(env: str | None, cores: int, cohorts: bool) -> int:
    """GANAE_MAX_TRAINING (`env`), else the default: a slot per core, COHORT_SLOTS_PER_CORE per core with cohorts."""
    n = int(env or 0)
    if n > 0:
        return n
    return max(1, cores) * (COHORT_SLOTS_PER_CORE if cohorts else 1)


MAX_TRAINING = training_slots(os.environ.get("GANAE_MAX_TRAINING"), os.cpu_count() or 1, COHORTS)
MAX_TRAINING_SET = int(os.environ.get("GANAE_MAX_TRAINING") or 0) > 0     # (else the default above)
# Training threads run this much nicer than the server's other threads (Linux): when the CPU is short -- a class on
# a small server, or the browser on the same laptop -- clicks and redraws get it first and training takes the rest
# (benchmarks/classroom.py, README "Serving a class").
TRAIN_NICE = int(os.environ.get("GANAE_TRAIN_NICE", "10"))
# A page's full run (after a click, a page switch, a form change) holds this gate: training threads in the process
# hold back between chunks until it is drawn (at most GATE_MAX_WAIT_S), so the click does not share Python's one
# GIL with every training run. Live redraws (fragment reruns) do not hold it. GANAE_GATE_MAX_WAIT_S=0 turns it off.
GATE_MAX_WAIT_S = float(os.environ.get("GANAE_GATE_MAX_WAIT_S", "0.5"))
GATE = Gate(GATE_MAX_WAIT_S) if GATE_MAX_WAIT_S > 0 else None

# Live redraw interval while a run trains. Each Playground redraw costs the server ~30 ms of Python (which holds
# the GIL the runner thread needs) and the browser ~0.2-0.4 s of CPU: on a 2-core machine that trains and runs the
# browser too, one redraw a second keeps training at ~0.9 of its headless speed (benchmarks/live_overhead.py);
# with more cores, two a second.
REFRESH_S = float(os.environ.get("GANAE_REFRESH_S", "0") or 0) or (1.0 if (os.cpu_count() or 1) <= 2 else 0.5)
# With a class on one server, every training (or queued) page redraws, and every redraw is Python holding the
# one GIL of the server process for about FRAME_COST_S (the Playground's live part on a 2-core machine, ~0.03 s,
# with headroom; see README "Serving a class"): N pages at REFRESH_S would need N x FRAME_COST_S / REFRESH_S of a
# GIL that can give at most one core's worth -- past that, redraws queue up behind each other, clicks wait behind them, and the
# runner threads starve. So redraws are spaced out to use at most REDRAW_SHARE of it; the rest trains and
# answers clicks. Queued pages redraw every QUEUED_EVERY_S at most (nothing moves there).
# GANAE_FRAME_COST_S=0 turns this off (fixed intervals: REFRESH_S while training, 1 s while queued).
# GANAE_REDRAW_SHARE sets that share: a policy, how one core is split between showing and training. With a class
# on one core the training process gets what the pages leave. It was 0.5; at 0.35 a class of 30 on one core redraws
# every 4.3 s instead of 3 s and, in four runs each back to back, trained 2,135-2,736 steps per student instead of
# 1,346-1,980 with clicks answered sooner (drawn p95 0.77-1.13 s vs 0.89-1.49 s); up to 7 live pages are not
# affected (README "Serving a class").
FRAME_COST_S = float(os.environ.get("GANAE_FRAME_COST_S", "0.05"))


def redraw_share(raw: str | None) -> float:
    """GANAE_REDRAW_SHARE's value as a share of the core: 0.35 when unset or empty, kept within 0.05-1."""
    return min(1.0, max(0.05, float(raw or 0.35)))


REDRAW_SHARE = redraw_share(os.environ.get("GANAE_REDRAW_SHARE"))
QUEUED_EVERY_S = 2.0
WATCH_EVERY_S = 2.0         # a watcher's page of a paused / finished run checks this often whether its owner went on
QUERY_KEY = "run"

STATE_LABELS = {   # state: (icon, label) in Streamlit markdown
    "idle": (":gray[:material/radio_button_unchecked:]", "ready"),
    "queued": (":orange[:material/hourglass_top:]", "queued"),
    "running": (":green[:material/play_circle:]", "training"),
    "paused": (":blue[:material/pause_circle:]", "paused"),
    "diverged": (":red[:material/warning:]", "diverged"),
    "finished": (":green[:material/flag:]", "finished"),
    "error": (":red[:material/error:]", "error"),
}


def interactive():
    """Context manager around a page's full run: see GATE."""
    return GATE.hold() if GATE is not None else contextlib.nullcontext()


def _warm_up() -> None:
    """Import and build once, so the first Train press costs milliseconds, not seconds."""
    from ganae.trainer import Trainer
    try:
        t = Trainer(RunConfig().with_updates(**{"data.n": 200, "train.steps": 2, "train.batch_size": 8,
                                                "train.device": "cpu"}))
        t.step(1)
        t.snapshot()
        try:
            t.evaluate()
        except Exception:
            pass
    except Exception:   # warming up is an optimisation only
        pass


SWITCH_INTERVAL_S = float(os.environ.get("GANAE_SWITCH_INTERVAL_S", "0.0005"))
# Packages the pages and the runner threads would otherwise import on first use, from whichever thread gets there
# first. They are imported on the script thread when the registry is made, before any run or second page exists:
# - importing while another thread reads the half-made module: Streamlit's component serialisation imports pandas
#   on the first live chart, and plotly checks `sys.modules` for pandas without importing it -- two students
#   arriving together on a fresh server gave one of them "partially initialized module 'pandas' has no attribute
#   'Series'" (benchmarks/classroom.py --clients wire, 2 students);
# - Python 3.11's ast keeps its recursion counter per interpreter, not per thread (CPython gh-106905): a parse on
#   another thread at the same moment -- Streamlit parses every page script once for its "magic" -- can fail with
#   "SystemError: AST constructor recursion depth mismatch" (torch._dynamo, imported by the first optimiser, and
#   numpy.ma call ast.parse many times; seen on 3.11.7 as an exception on a page).
# tests/test_faults.py checks that serving the training pages imports no third-party package after this.
# (scikit-learn is not among them: ganae.data reads its digits file and writes its moons / circles out, so serving
# never imports it -- 1.2-1.7 s less before a fresh server's first training page.)
PRELOAD = ("torch._dynamo", "numpy.ma", "pandas", "pyarrow", "PIL.Image", "torchvision")
# On a fresh server the engine's thread (dashboard/startup.py) loads the ones a page may import first, then lets the
# pages be drawn, then loads the ones only training imports (torch._dynamo: ~2 s here).
PRELOAD_LATE = ("torch._dynamo", "torchvision")
PRELOAD_EARLY = tuple(n for n in PRELOAD if n not in PRELOAD_LATE)


def preload(names: tuple[str, ...] = PRELOAD) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:     # an optimisation against a race, never a reason not to serve
            pass


@st.cache_resource(show_spinner=False, on_release=lambda reg: reg.shutdown())
def registry() -> Registry:
    torch.set_num_threads(1)     # process-wide; with 2 cores more threads only fight each other
    # A runner thread gives up the GIL around every (tiny) torch op; while a page is being drawn, the drawing
    # thread would then keep it for Python's default 5 ms switch interval each time, and training crawls.
    # A short interval hands the GIL back to the runner ten times sooner.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    from dashboard import startup
    # (the engine's thread may still be loading PRELOAD_LATE on a fresh server: it is left to that thread)
    preload(PRELOAD_EARLY if startup.loading_late() else PRELOAD)
    # The modules loaded by now (torch, numpy, streamlit, plotly: a few hundred thousand objects) live as long as
    # the server; moved out of the collector's reach, Python's full collections stop walking them all
    # (.streamlit/config.toml also turns off Streamlit's gc.collect after every script run, for the same reason).
    # No run exists yet, so nothing that should be freed later is frozen.
    gc.freeze()
    # GANAE_RAY_ADDRESS set: runs train on Ray actors (ganae/placement.py), admitted cluster-wide; this process
    # only draws pages. GANAE_TRAIN_PROCESS=1: they train in one process beside this one (ganae/local_host.py), off
    # this process's GIL. An address or process that cannot be used is said in the sidebar (device_text) and runs
    # stay here.
    place = _placement()
    # (on Ray the cluster's admission counts the cluster's cores: -1 leaves it to it; a training process beside
    # this server has this machine's cores)
    from ganae.placement import RayPlacement
    limit = -1 if isinstance(place, RayPlacement) and not MAX_TRAINING_SET else MAX_TRAINING
    reg = Registry(limit=limit, grace_s=GRACE_S, reap_every_s=REAP_EVERY_S, placement=place,
                   runner_kwargs={"nice": TRAIN_NICE, "gate": GATE}, cohorts=COHORTS)
    reg.start_reaper()
    _MADE[:] = [weakref.ref(reg)]
    threading.Thread(target=_warm_up, name="ganae-warmup", daemon=True).start()
    if STATS_FILE:
        threading.Thread(target=_write_stats, args=(reg, STATS_FILE), name="ganae-stats", daemon=True).start()
    return reg


_MADE: list[weakref.ref] = []         # the registry registry() made last (not kept alive once Streamlit lets go of it)


def runs_exist() -> bool:
    """Whether the registry has been made and holds a run (without making it)."""
    reg = _MADE[0]() if _MADE else None
    return reg is not None and reg.counts()["runs"] > 0


PLACEMENT: list = []                 # the RayPlacement (GANAE_RAY_ADDRESS) or ProcessPlacement in use, if any
PLACEMENT_ERROR: list[str] = []       # why GANAE_RAY_ADDRESS could not be used (one sentence), if it could not


def _placement():
    from ganae import placement
    from ganae.cluster import ClusterError
    try:
        PLACEMENT[:] = [p for p in [placement.from_env(cohorts=COHORTS, nice=TRAIN_NICE)] if p is not None]
        return PLACEMENT[0] if PLACEMENT else None
    except ClusterError as e:
        PLACEMENT_ERROR[:] = [f"GANAE_RAY_ADDRESS is set but {e}; runs train in this server instead."]
        return None
    except placement.HostLost as e:
        PLACEMENT_ERROR[:] = [f"GANAE_TRAIN_PROCESS is set but {e}; runs train in this server instead."]
        return None


def _thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by this process's live threads, summed per kind of thread (the name without its
    numbers and ids: "ganae-run", "ScriptRunner.scriptThread", "MainThread", ...). Linux only; {} elsewhere."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for t in threading.enumerate():
        try:
            with open(f"/proc/self/task/{t.native_id}/stat") as f:
                st = f.read()
            fields = st[st.rindex(")") + 2:].split()
            kind = "ganae-run" if t.name.startswith("ganae-run-") else t.name.split(" ")[0].rstrip("0123456789-_")
            out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError, TypeError):
            pass
    return out


def _write_stats(reg: Registry, path: str) -> None:
    """Rewrite `path` (atomically) with the registry's stats every STATS_EVERY_S until the registry shuts down."""
    tmp = f"{path}.{os.getpid()}.tmp"
    while not reg.closed:
        try:
            stats = {**reg.stats(), "pid": os.getpid(), "threads": threading.active_count(),
                     "thread_cpu": _thread_cpu()}
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, path)
        except Exception:     # monitoring must never disturb serving
            pass
        time.sleep(STATS_EVERY_S)


@dataclass
class SessionMarker:
    token: str
    registry: Registry


def _session_released(marker: SessionMarker) -> None:
    marker.registry.session_gone(marker.token)


@st.cache_resource(scope="session", show_spinner=False, on_release=_session_released)
def _session_marker() -> SessionMarker:
    return SessionMarker(secrets.token_hex(8), registry())


def session_token() -> str:
    return _session_marker().token


# ---- ownership: the browser that starts a run commands it ----------------------------------------------------
OWNER_COOKIE = "ganae_owner"
OWNER_KEY = "_ganae_owner"
_OWNER_RE = re.compile(r"^[0-9a-f]{32}$")
COOKIE_MAX_AGE_S = 30 * 24 * 3600


def owner_token() -> str:
    """This browser's secret (32 hex digits): the cookie it sent when this session connected, else a new one that
    `keep_owner_cookie` stores in the browser, so that a refresh (a new session) brings it back. A client without
    cookies (benchmarks/classroom.py's wire students) keeps one for its session: the runs it starts are its own."""
    ss = st.session_state
    token = ss.get(OWNER_KEY)
    if token is None:
        sent = _sent_cookie()
        token = ss[OWNER_KEY] = sent if sent is not None else secrets.token_hex(16)
    return token


def _sent_cookie() -> str | None:
    try:
        value = st.context.cookies.get(OWNER_COOKIE)
    except Exception:           # no browser session (bare mode)
        return None
    return value if isinstance(value, str) and _OWNER_RE.match(value) else None


def keep_owner_cookie() -> None:
    """Store `owner_token()` in the browser's cookie when it did not send it (its first visit). A tiny same-origin
    script: Streamlit reads cookies, it cannot set them. Drawn on every run of such a session (an element that
    stays), never again once the browser brings the cookie."""
    token = owner_token()
    if _sent_cookie() == token:
        return
    st.html(f"<script>document.cookie = '{OWNER_COOKIE}={token}; path=/; max-age={COOKIE_MAX_AGE_S}; "
            f"samesite=strict';</script>", unsafe_allow_javascript=True, width=1)


def settings_notes(runner, pending, error, notes: list[str], watching: bool) -> None:
    """Under a training page's controls: what is wrong with the form or worth knowing about it, and a nudge to
    Reset when its settings differ from the run's."""
    if error is not None:
        show_error(error)
    for n in notes:
        st.warning(n)
    if runner is not None and not watching and pending is not None and pending != runner.cfg:
        st.info("You changed the settings: press **Reset** to restart the run with them.")


def watching(obj) -> bool:
    """True when `obj` (a Runner or an ArenaRunner) was started by another browser: this page only watches it."""
    return obj is not None and not obj.owned_by(owner_token())


WATCH_NOTE = ("You are watching {what} started in another browser: its controls are off here, because only that "
              "browser can train, pause, step or reset it. **Make my own copy** to go on from this point yourself.")


def watch_banner(obj, make_copy, key: str, what: str = "a run") -> bool:
    """For a watched `obj`: one sentence why its controls are off, and a "Make my own copy" button that calls
    `make_copy()` (a fork into a run of this browser). Returns whether the page is watching (controls off)."""
    if not watching(obj):
        return False
    c1, c2 = st.columns([3, 1.3], vertical_alignment="center")
    c1.info(WATCH_NOTE.format(what=what), icon=":material/visibility:")
    c2.button("Make my own copy", key=key, icon=":material/fork_right:", type="primary", width="stretch",
              on_click=_make_copy, args=(make_copy, key),
              help="A new run of yours that goes on from this one's weights, optimiser, history and settings")
    problem = st.session_state.pop(f"{key}:problem", None)
    if problem:
        st.error(problem)
    return True


def _make_copy(make_copy, key: str) -> None:
    try:
        make_copy()
        st.toast("This is your own copy now: the controls are yours.", icon=":material/fork_right:")
    except (RuntimeError, TimeoutError, ValueError, OSError) as e:
        st.session_state[f"{key}:problem"] = str(e)


@st.cache_resource(show_spinner=False)
def device_text() -> str:
    registry()
    if PLACEMENT and hasattr(PLACEMENT[0], "address"):
        p = PLACEMENT[0]
        gpus = f", {p.gpus:g} GPUs" if p.gpus else ""
        return f"Ray cluster at {p.address} ({p.cpus} CPUs{gpus})"
    if PLACEMENT:                     # GANAE_TRAIN_PROCESS=1: a training process beside this one
        return f"{device_mod.describe(device_mod.pick('auto'))} · training in its own process"
    text = device_mod.describe(device_mod.pick("auto"))
    return f"{text} · {PLACEMENT_ERROR[0]}" if PLACEMENT_ERROR else text


# ---- the run of this page ---------------------------------------------------------------------------------
def current_run(key: str) -> tuple[Runner | None, str | None]:
    """The runner named in the URL (or the one this session used last on page `key`).

    Returns (runner, lost_id): lost_id names a run the URL asked for that is no longer on the server."""
    reg = registry()
    run_id = st.query_params.get(QUERY_KEY) or st.session_state.get(f"_run:{key}")
    if not run_id:
        return None, None
    runner = reg.get(run_id)
    if runner is None:
        forget_run(key)
        return None, run_id
    reg.touch(run_id, session_token())
    if st.query_params.get(QUERY_KEY) != run_id:
        st.query_params[QUERY_KEY] = run_id
    st.session_state[f"_run:{key}"] = run_id
    return runner, None


def remember_run(key: str, runner: Runner) -> None:
    st.session_state[f"_run:{key}"] = runner.run_id
    st.query_params[QUERY_KEY] = runner.run_id


def forget_run(key: str) -> None:
    st.session_state.pop(f"_run:{key}", None)
    if QUERY_KEY in st.query_params:
        del st.query_params[QUERY_KEY]


def create_run(key: str, source: RunConfig | Trainer, in_url: bool = True) -> Runner:
    """A new run of this browser on page `key`, of a config or of a Trainer already built (ConfigError /
    DataError propagate with their sentence).

    in_url=False leaves the URL alone (for a caller that switches to the page with the run in its query)."""
    return _adopt_run(key, registry().create(source, session=session_token(), owner=owner_token()), in_url)


def fork_run(key: str, run_id: str) -> Runner:
    """A copy of run `run_id` as it is now (weights, optimiser, history, config), owned by this browser and shown
    on page `key` from now on."""
    return _adopt_run(key, registry().fork(run_id, owner=owner_token(), session=session_token()))


def _adopt_run(key: str, runner: Runner, in_url: bool = True) -> Runner:
    reg = registry()
    old = st.session_state.get(f"_run:{key}")
    if old and old != runner.run_id:
        reg.detach(old, session_token())
    st.session_state[f"_run:{key}"] = runner.run_id
    if in_url:
        st.query_params[QUERY_KEY] = runner.run_id
    return runner


def run_every(status: RunStatus | None, watching: bool = False) -> float | None:
    """How often the live fragment redraws: only while something is happening, and less often when many pages
    do (see FRAME_COST_S). A page `watching` someone else's run keeps looking (every WATCH_EVERY_S) while it is
    paused: only its owner can make it go on, and the watcher's page must notice."""
    if status is None:
        return None
    if status.state not in ("running", "queued"):
        return WATCH_EVERY_S if watching else None
    if FRAME_COST_S <= 0:                       # adaptation off: the fixed intervals
        return REFRESH_S if status.state == "running" else 1.0
    counts = registry().counts()
    live = counts.get("training")                # pages redrawing now: one per run training or queued
    if live is None:                             # (a slot may hold a whole class cohort)
        live = (counts["running"] or 0) + (counts["queued"] or 0)
    every = max(REFRESH_S, live * FRAME_COST_S / REDRAW_SHARE)
    if status.state == "queued":                # nothing moves while queued: just notice the free slot
        every = max(every, QUEUED_EVERY_S)
    return round(every, 1)


def state_line(status: RunStatus) -> str:
    icon, label = STATE_LABELS.get(status.state, ("", status.state))
    # the step also sits in a data attribute, for browser tests and benchmarks
    parts = [f"{icon} **{label}**",
             f'step <b class="ganae-step" data-step="{status.step}">{status.step:,}</b>']
    if status.target_steps:
        parts[-1] += f" of {status.target_steps:,}"
    if status.state == "running" and status.it_per_s:
        parts.append(f"{status.it_per_s:,.0f} steps/s")
    if status.state == "running" and status.cohort > 1:
        parts.append(f"training with {status.cohort - 1} other run{'s' if status.cohort > 2 else ''} "
                     f"of this setup")
    if status.state == "queued":
        parts.append(f"position {status.queue_position} in the queue")
    return " · ".join(parts)


def state_box():
    """The container a live frame puts its state line and message in (`with runtime.state_box(): ...`).

    A live frame's parts are addressed by position, and the browser applies an update to the part at that
    position. With the message drawn straight into the frame, position 1 was a message in one state (queued,
    restored, continuing) and the plane's columns in another; an update for the columns that met the message
    still there broke the page ("'setIn' cannot be called on an ElementNode", Streamlit's frontend; seen with a
    class on one server, benchmarks/classroom.py). In one container, whatever the state, the parts after it keep
    their positions and kinds."""
    return st.container()


def status_block(status: RunStatus | None, restore=None) -> None:
    """A live frame's head, in its state box: the run's state line and its message (diverged / error / finished /
    queued ...). `restore(last_good_step)` draws the page's button back to the last good state of a diverged run."""
    with state_box():
        if status is None:
            return
        st.markdown(state_line(status), unsafe_allow_html=True)
        if status.state == "diverged":
            st.error(status.message)
            if status.last_good_step is not None and restore is not None:
                restore(status.last_good_step)
        elif status.state == "error":
            st.error(status.message)
        elif status.state == "finished":
            st.success(status.message)
        elif status.message:
            st.info(status.message)


def sidebar_status(status: RunStatus | None) -> None:
    """The run's state and the admission queue, for the sidebar (call inside `with st.sidebar:`)."""
    counts = registry().counts()
    if status is not None:
        st.markdown(f"**This run** `{status.run_id}`  \n{state_line(status)}", unsafe_allow_html=True)
    cohorts = " (a slot trains all the runs of one setup together)" if registry().pool is not None else ""
    # unsafe_allow_html (numbers only here): Streamlit's browser code loads its HTML-in-markdown renderer (a 190 KB
    # chunk) the first time a page shows such markdown, and shows that markdown only once it is loaded. The state
    # line is the first one on a page, so a student's first Train waited for the download from a busy server before
    # "training" appeared (1.4 s quiet, seconds in a class). Asked for here, on every page's first drawing, it is in
    # the browser before anyone presses Train (tests/e2e/test_playground_e2e.py).
    st.caption(f"Training slots: {counts['running']} of {counts['limit']} busy{cohorts} · queued: "
               f"{counts['queued']} · runs training: {counts.get('training', counts['running'])} · "
               f"runs on this server: {counts['runs']}", unsafe_allow_html=True)


def show_error(e: Exception) -> None:
    """A user-fixable error as one sentence (never a traceback)."""
    st.error(quote.field_error(e) if isinstance(e, ConfigError) else quote.md(e))


