"""Widgets and run glue shared by the Autoencoder Lab and the Image GAN page.

- `Form`: widgets <-> RunConfig fields. Each widget's key is `<prefix><field>`; its value is also kept in a plain
  dict in the session (`<prefix>values`), because Streamlit forgets the state of a widget that is not drawn in a
  run (e.g. the β slider while the model is a plain autoencoder) and the user's choice must survive that.
- `data_widgets`: digits / sprites / MNIST / Fashion-MNIST (with a sentence on where to put the files when they
  are missing) / your own images (a .zip upload or a folder on the server).
- `resolve_run`: the run of a page from the URL (`?run=`) or the session, only if it fits the page.
- `controls` / `act`: Train, Pause, Step, Reset and what they do to a Runner.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import streamlit as st

from dashboard import charts, links, quote, runtime, uploads
from dashboard.settings import UPLOAD_DIR
from ganae import config as C
from ganae.config import ConfigError, RunConfig
from ganae.data import DataError

ROOT = Path(__file__).resolve().parent.parent
IMAGE_DATA = ("digits", "sprites", "mnist", "fashion_mnist", "folder")
DATA_LABELS = {"digits": "digits (8×8, bundled)", "sprites": "sprites (32×32, generated)", "mnist": "MNIST (28×28)",
               "fashion_mnist": "Fashion-MNIST (28×28)", "folder": "your own images (.zip or folder)"}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
MNIST_DIRS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
SPRITES_N = 6000              # sprites drawn for a run: enough to learn, quick on a laptop CPU
IMAGE_SIZES = [16, 24, 28, 32, 48, 64]
BATCHES = [16, 32, 64, 128, 256]
LRS = [1e-5, 3e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2]
LATENTS = [1, 2, 3, 4, 6, 8, 10, 12, 16, 24, 32, 48, 64, 100, 128]
WIDTHS = [32, 64, 128, 256, 512, 1024]
CHANNELS = [8, 16, 32, 48, 64]
# widths (px) images are laid out for at a 1440-px-wide window: the right column of a training page, half of
# it, the sample panel of the Image GAN page, and the full main area (images never stretch, they shrink to fit)
WIDE, HALF, PANEL, FULL = 700, 340, 350, 900


def image(img, caption: str | None = None, **kw: Any) -> None:
    """st.image as a lossless PNG (JPEG would smear the pixel edges of tiny digits), at its own size or, with the
    projector on, larger (the browser upscales it pixel for pixel: dashboard/charts.py)."""
    kw.setdefault("width", charts.image_width(int(img.shape[1])))
    st.image(img, caption=caption, output_format="PNG", **kw)


def options(values: list, current: Any) -> list:
    """`values`, plus the current value when a preset or URL chose one outside them."""
    return values if current is None or current in values else sorted(values + [current])


# ---- form state ---------------------------------------------------------------------------------------------
class Form:
    """The settings of one page: widget values kept per field, a base config for fields without a widget."""

    def __init__(self, prefix: str, default: Callable[[], RunConfig], fields: Iterable[str],
                 derived: Callable[[RunConfig], dict[str, Any]] | None = None):
        self.prefix = prefix
        self.default = default
        self.fields = tuple(fields)
        self.derived = derived or (lambda cfg: {})

    @property
    def values(self) -> dict[str, Any]:
        return st.session_state.setdefault(self.prefix + "values", {})

    def init(self, cfg: RunConfig | None, source: str, force: bool = False) -> None:
        """Fill the widgets from `cfg` (or the default) when the page shows a run the form does not describe yet
        (`source` is its id; "default" when there is no run). The user's edits and a chosen preset are kept
        while the same run stays on the page."""
        ss = st.session_state
        if not force and self.values and (source == "default" or ss.get(self.prefix + "run") == source):
            return
        cfg = cfg or self.default()
        vals = {f: _get(cfg, f) for f in self.fields}
        vals.update(self.derived(cfg))
        ss[self.prefix + "values"] = vals
        for f, v in vals.items():               # widgets read their state from here on the next draw
            ss[self.prefix + f] = v
        ss[self.prefix + "base"] = cfg.to_json()
        if source != "preset":
            ss[self.prefix + "run"] = source

    def adopt(self, run_id: str, cfg: RunConfig) -> None:
        """The widgets now describe run `run_id` (just created or reset with `cfg`): keep what they show."""
        st.session_state[self.prefix + "run"] = run_id
        st.session_state[self.prefix + "base"] = cfg.to_json()

    def key(self, field: str) -> str:
        """The widget key of `field`, its state restored from the kept value when Streamlit dropped it."""
        k = self.prefix + field
        if k not in st.session_state and field in self.values:
            st.session_state[k] = self.values[field]
        return k

    def widget(self, fn: Callable[..., Any], label: str, *args: Any, field: str, show: bool = True,
               **kw: Any) -> Any:
        """Draw `fn(label, *args, key=..., **kw)` bound to `field`; returns its value. With show=False (an
        advanced setting in the student view) nothing is drawn and the kept value is returned."""
        if not show:
            return self.kept(field)
        value = fn(label, *args, key=self.key(field), **kw)
        self.values[field] = st.session_state.get(self.prefix + field, value)
        return self.values[field]

    def kept(self, field: str) -> Any:
        """The value of a field whose widget is not drawn (from the run, a preset, the link or the default)."""
        if field not in self.values:
            self.values[field] = _get(self.base(), field)
        return self.values[field]

    def span(self, lo: int | float, hi: int | float, field: str) -> tuple[int | float, int | float]:
        """A number widget's bounds, widened to hold the value a link or a preset put there (a valid config may
        go beyond what the widget offers; Streamlit would clamp the value or refuse to draw)."""
        v = self.values.get(field)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = type(lo)(v)
            return min(lo, v), max(hi, v)
        return lo, hi

    def get(self, field: str, default: Any = None) -> Any:
        return self.values.get(field, default)

    def base(self) -> RunConfig:
        text = st.session_state.get(self.prefix + "base")
        return RunConfig.from_json(text) if text else self.default()

    def pending(self, updates: dict[str, Any]) -> tuple[RunConfig | None, Exception | None, list[str]]:
        """base + `updates` validated: (config, None, warnings) or (None, error, [])."""
        try:
            cfg = self.base().with_updates(**updates)
            return cfg, None, C.validation_notes(cfg)
        except (ConfigError, ValueError) as e:
            return None, e, []


def _get(cfg: RunConfig, dotted: str) -> Any:
    sec, name = dotted.split(".")
    return getattr(getattr(cfg, sec), name)


# ---- sample grids over time ---------------------------------------------------------------------------------
class Frames:
    """The sample grids a run went through, as uint8: at most `cap` frames. When full, every other frame is
    dropped and new frames are kept only every (span / cap) steps, so the frames stay spread over the whole run
    and memory stays bounded however long it trains."""

    def __init__(self, cap: int = 48):
        self.cap = cap
        self.lock = threading.Lock()
        self.steps: list[int] = []
        self.grids: list[np.ndarray] = []
        self.gap = 0

    def add(self, step: int, samples: np.ndarray) -> None:
        with self.lock:
            if self.steps and step < self.steps[-1]:        # the run was reset
                self.steps, self.grids, self.gap = [], [], 0
            if self.steps and (step == self.steps[-1] or step - self.steps[-1] < self.gap):
                return                                        # too close to the last kept frame
            self.steps.append(int(step))
            self.grids.append(_to_u8(samples))
            if len(self.steps) > self.cap:
                keep = list(range(0, len(self.steps) - 1, 2)) + [len(self.steps) - 1]
                self.steps = [self.steps[i] for i in keep]
                self.grids = [self.grids[i] for i in keep]
                self.gap = max(1, (self.steps[-1] - self.steps[0]) // self.cap)

    def get(self, step: int) -> np.ndarray | None:
        with self.lock:
            if step in self.steps:
                return _from_u8(self.grids[self.steps.index(step)])
        return None

    def list(self) -> list[int]:
        with self.lock:
            return list(self.steps)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.round((np.clip(np.nan_to_num(x, nan=-1.0), -1, 1) + 1) * 127.5).astype(np.uint8)


def _from_u8(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 127.5 - 1.0


# ---- data ----------------------------------------------------------------------------------------------------
def mnist_missing(name: str, root: str = "data") -> str | None:
    """None when the MNIST-like files are in place; else a sentence saying where to put them."""
    folder = MNIST_DIRS.get(name)
    if folder is None:
        return None
    raw = Path(root)
    if not raw.is_absolute():
        raw = Path.cwd() / raw
    raw = raw / folder / "raw"
    missing = [f for f in MNIST_FILES if not (raw / f).is_file() and not (raw / f"{f}.gz").is_file()]
    if not missing:
        return None
    title = "MNIST" if name == "mnist" else "Fashion-MNIST"
    return (f"{title} is not on this machine (it cannot be downloaded offline). Place the four files "
            f"{', '.join(f'`{f}.gz`' for f in MNIST_FILES)} (or the same names unpacked) in the folder "
            f"`{raw}`, or tick *download* below if this machine has internet access. Until then, "
            f"**digits** and **sprites** work everywhere.")


def save_upload(content: bytes, suffix: str) -> str:
    """Keep an uploaded file under a name derived from its content; returns the path."""
    UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
    path = UPLOAD_DIR / f"{hashlib.sha256(content).hexdigest()[:16]}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(".part")
        tmp.write_bytes(content)
        tmp.replace(path)
    return str(path)


def data_widgets(form: Form) -> dict[str, Any]:
    """The data choice; returns the config updates it implies (data.name, path, size, n, download)."""
    p = form.prefix
    name = form.widget(st.selectbox, "Images", IMAGE_DATA, field="data.name", format_func=lambda n: DATA_LABELS[n],
                       help="The images to learn. Digits and sprites work offline; MNIST needs its files.")
    upd: dict[str, Any] = {"data.name": name}
    if name in MNIST_DIRS:
        note = mnist_missing(name)
        download = st.checkbox("download (needs internet)", key=p + "download", value=False)
        if note and not download:
            st.info(note, icon=":material/folder_open:")
        upd["data.download"] = bool(download)
    elif name == "sprites":
        upd["data.n"] = SPRITES_N
        st.caption("Square, ellipse or heart at a random scale, rotation and position: five known factors.")
    elif name == "folder":
        up = uploads.file_uploader("A .zip of images (sub-folders = classes)", type=["zip"], key=p + "upload",
                                   help="PNG / JPEG / BMP / GIF; turned grayscale and square. At most 20,000 "
                                        "images.")
        if up is not None:
            form.values["data.path"] = save_upload(up.getvalue(), ".zip")
        typed = st.text_input("…or a folder on the server", key=p + "folder_path",
                              placeholder="/path/to/images", help="Used when no zip is uploaded.")
        path = form.values.get("data.path") if up is not None else (typed.strip() or form.values.get("data.path"))
        if up is None and typed.strip():
            form.values["data.path"] = typed.strip()
        if path:
            upd["data.path"] = path
            st.caption(f"Using {quote.code(Path(path).name)}.")
        upd["data.image_size"] = form.widget(st.select_slider, "Image size",
                                             options(IMAGE_SIZES, form.get("data.image_size")),
                                             field="data.image_size", format_func=lambda s: f"{s}×{s}")
    return upd


# ---- the run of a page --------------------------------------------------------------------------------------
def resolve_run(key: str, fits: Callable[[RunConfig], bool]):
    """(runner, lost_id): this page's run from the URL or the session, if it still exists and fits the page.

    A run of another page named in the URL (e.g. a Playground run) is left alone, not adopted."""
    reg = runtime.registry()
    qid = st.query_params.get(runtime.QUERY_KEY)
    sid = st.session_state.get(f"{key}:run")
    for rid in (qid, sid):
        r = reg.get(rid) if rid else None
        if r is None or not fits(r.cfg):
            continue
        reg.touch(rid, runtime.session_token())
        runtime.remember_run(key, r)
        st.session_state[f"{key}:run"] = rid
        return r, None
    lost = next((rid for rid in (sid, qid) if rid and reg.get(rid) is None), None)
    if sid and reg.get(sid) is None:
        st.session_state.pop(f"{key}:run", None)
    return None, lost


def open_link(page: str, form: Form, fits: Callable[[RunConfig], bool]):
    """The run and the form of an image page, with the URL's settings: (runner, lost id).

    A link opened just now fills the form with its settings; without a run in the URL it also replaces this
    session's earlier run of the page (the user asked for the link's setup). A run in the URL is shown (e.g.
    after a reload), with the form as the URL describes it."""
    link_cfg = links.opened_link(page)
    if link_cfg is not None and not st.query_params.get(runtime.QUERY_KEY):
        links.leave_run(page)
    runner, lost = resolve_run(page, fits)
    if link_cfg is not None:
        form.init(link_cfg, runner.run_id if runner is not None else links.url_fingerprint(), force=True)
    else:
        form.init(runner.cfg if runner is not None else None, runner.run_id if runner is not None else "default")
    return runner, lost


def new_run(key: str, cfg: RunConfig):
    runner = runtime.create_run(key, cfg)
    st.session_state[f"{key}:run"] = runner.run_id
    return runner


ACTIONS = ("play", "pause", "step", "reset")


def pressed(prefix: str) -> str | None:
    """The button pressed in this rerun, read before the buttons are drawn (so they can be drawn in the state
    the action leaves the run in)."""
    return next((a for a in ACTIONS if st.session_state.get(prefix + a) is True), None)


def controls(prefix: str, runner, share: RunConfig | None = None, page: str | None = None,
             watching: bool = False) -> None:
    """Train / Pause / Step / Reset buttons (what they do: `pressed` + `act`; all off while `watching`), then the
    links to the settings of the form (`share`) and to watch the run."""
    active = runner is not None and runner.status().active
    cols = st.columns([1, 1, 1, 1, 1.5], gap="small")
    cols[0].button("Train", icon=":material/play_arrow:", type="primary", key=prefix + "play",
                   disabled=active or watching, width="stretch",
                   help="Train continuously; the panels below refresh as it learns.")
    cols[1].button("Pause", icon=":material/pause:", key=prefix + "pause", disabled=not active or watching,
                   width="stretch")
    cols[2].button("Step ×10", icon=":material/skip_next:", key=prefix + "step", width="stretch", disabled=watching,
                   help="Pause, then train 10 iterations and show the result.")
    cols[3].button("Reset", icon=":material/restart_alt:", key=prefix + "reset", width="stretch", disabled=watching,
                   help="Start over from fresh weights with the settings on the left.")
    with cols[4]:
        links.share_links(share, page, {runtime.QUERY_KEY: runner.run_id} if runner is not None else None, prefix)


def act(key: str, action: str | None, runner, pending: RunConfig | None, error: Exception | None,
        form: Form | None = None):
    """Carry out a pressed button; returns the (possibly new) runner. Errors are shown as sentences."""
    if action is None:
        return runner
    me = runtime.owner_token()
    try:
        if runner is None or action == "reset":
            if pending is None:
                raise error or ValueError("the settings are not valid")
            with st.spinner("Building the model and loading the data…"):
                if runner is None:
                    runner = new_run(key, pending)
                else:
                    runner.reset(pending, owner=me)
            if form is not None:
                form.adopt(runner.run_id, pending)
            if action == "reset":
                return runner
        if action == "play":
            step0 = runner.status().step
            runner.play(owner=me)
            runner.wait_for_snapshot(step0, timeout=0.5)     # the first frame already has data
        elif action == "pause":
            runner.pause(owner=me)
        elif action == "step":
            runner.step(10, "both", owner=me)
    except (DataError, ValueError, RuntimeError, TimeoutError, OSError) as e:
        runtime.show_error(e)
    return runner


def status_block(runner, status) -> None:
    """The run's state line and its message, with the restore button (runtime.status_block; off for a watcher)."""
    def restore(step: int) -> None:
        if st.button(f"⟲ Restore the last good state (step {step:,})", key=f"restore_{runner.run_id}",
                     disabled=runtime.watching(runner)):
            try:
                runner.restore_last_good(owner=runtime.owner_token())
            except (RuntimeError, TimeoutError) as e:
                runtime.show_error(e)
            st.rerun()

    runtime.status_block(status, restore)


def checkpoint_dir() -> Path:
    """Where the dashboard saves and finds checkpoints (GANAE_CHECKPOINT_DIR, else the project's checkpoints/)."""
    return Path(os.environ.get("GANAE_CHECKPOINT_DIR") or ROOT / "checkpoints")


def checkpoint_name(cfg: RunConfig, run_id: str, step: int) -> str:
    return f"{cfg.model.family}-{cfg.data.name}-{run_id}-step{step}.pt"


def save_checkpoint(runner) -> Path:
    """Save the run (between chunks, on its thread) into the checkpoints folder; returns the path."""
    step = runner.status().step
    path = checkpoint_dir() / checkpoint_name(runner.cfg, runner.run_id, step)
    return runner.call(lambda t: t.save(path, note=f"saved from the dashboard at step {step}"), timeout=60.0)


def run_actions(prefix: str, runner) -> None:
    """Save the run as a checkpoint, or open it in the Latent Explorer."""
    if runner is None:
        return
    c1, c2, _ = st.columns([1.3, 1.3, 2])
    if c1.button("Open in Latent Explorer", icon=":material/explore:", key=prefix + "explore", width="stretch",
                 help="Interpolate, traverse and click the latent space of this very model."):
        st.switch_page("views/latent.py", query_params={runtime.QUERY_KEY: runner.run_id})
    if c2.button("Save checkpoint", icon=":material/save:", key=prefix + "save", width="stretch",
                 help=f"Write the model, its optimiser and its history to {checkpoint_dir().name}/; the Latent "
                      f"Explorer lists it there."):
        try:
            path = save_checkpoint(runner)
            st.toast(f"Saved {path.name}", icon=":material/save:")
            st.session_state[prefix + "saved"] = path.name
        except (OSError, RuntimeError, TimeoutError, TypeError) as e:
            runtime.show_error(e)
    if st.session_state.get(prefix + "saved"):
        c2.caption(f"Saved `{st.session_state[prefix + 'saved']}`")


def live_view(runner, pending: RunConfig | None, draw: Callable[[Any, Any, Any, RunConfig | None], None]) -> None:
    """The live part of an image page: redrawn by itself while the run trains (`draw(runner, status, snapshot,
    pending)`, the status and the snapshot of one `runner.frame()`);
    a change of state (finished, diverged, reaped) reruns the whole page for its buttons and sidebar."""
    status0 = runner.status() if runner is not None else None
    run_id = runner.run_id if runner is not None else None

    @st.fragment(run_every=runtime.run_every(status0))
    def frame() -> None:
        r = runtime.registry().get(run_id) if run_id else None
        if run_id and r is None:
            st.rerun()
        status, snap = r.frame() if r is not None else (None, None)
        if status0 is not None and status is not None and status.state != status0.state:
            st.rerun()
        with st.sidebar:                 # the run and the training slots, as fresh as the frame
            runtime.sidebar_status(status)
        draw(r, status, snap, pending)

    frame()


# ---- the page itself -------------------------------------------------------------------------------------------
def training_page(*, title: str, caption: str, key: str, prefix: str, form: Form, fits: Callable[[RunConfig], bool],
                  draw_form: Callable[[bool], dict[str, Any]], live: Callable[[Any, RunConfig | None], None],
                  picture: tuple[str, str, Callable[[Any], bytes]]) -> None:
    """The layout both image pages share: the form on the left (its link, the student view), the controls, errors,
    the live view, the run's actions and the downloads on the right. `picture` is the page's PNG export
    (label, file stem, maker)."""
    from dashboard import exports

    advanced = links.advanced()
    runner, lost = open_link(key, form, fits)
    st.title(title)
    st.caption(caption)
    if lost:
        st.info(f"The run {quote.code(lost)} is no longer on this server (it was left unwatched for a while, or the "
                f"server restarted). Press Train to start a new one.")
    left, right = st.columns([1, 2.9], gap="medium")
    with left:
        if not advanced:
            links.student_caption()
        upd = draw_form(advanced)
    pending, error, notes = form.pending(upd)
    with right:
        links.follow(key, pending)
        runner = act(key, pressed(prefix), runner, pending, error, form)
        watching = runtime.watch_banner(runner, lambda: runtime.fork_run(key, runner.run_id), key=prefix + "copy")
        controls(prefix, runner, pending, key, watching)
        runtime.settings_notes(runner, pending, error, notes, watching)
        live(runner, pending)
        run_actions(prefix, runner)
        exports.downloads(prefix, runner, picture)
