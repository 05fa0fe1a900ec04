"""Checkpoints: the shipped pre-trained models and your own saves — what each one is, open it in a page, save a
run of this session, download, upload.

Thin page: files go through `ganae.checkpoint` (safe load: it never unpickles code, and checks size, archive and
payload, with a sentence for every refusal); a checkpoint opens as a run in the runtime registry
(`links.start_from_payload`) and the page that shows it opens with the run id in the URL.

Folders: `checkpoints/` (GANAE_CHECKPOINT_DIR) holds the shipped models and the saves of the training pages;
`checkpoints/user/` (GANAE_USER_CHECKPOINT_DIR) holds what this page saves and accepts as uploads.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import image_controls as ic
from dashboard import links, quote, runtime, uploads
from ganae import checkpoint, lessons, trainer
from ganae.checkpoint import CheckpointError
from ganae.config import ConfigError, RunConfig
from ganae.data import DataError

NAME_MAX = 60                 # characters of a checkpoint name
FAMILY_LABELS = {"gan": "GAN", "ae": "autoencoder", "dae": "denoising AE", "vae": "VAE", "aae": "adversarial AE",
                 "vaegan": "VAE-GAN"}
METRIC_LABELS = {"modes": "modes", "hq": "HQ", "kl": "KL", "js": "JS", "fd": "FD", "precision": "precision",
                 "recall": "recall", "coverage": "coverage", "classes": "classes", "test_mse": "test MSE",
                 "test_psnr": "PSNR", "test_kl": "KL", "active_units": "active units", "reverse_kl": "reverse KL",
                 "test_accuracy": "test accuracy"}
ERRORS = (CheckpointError, ConfigError, DataError, OSError, RuntimeError, TimeoutError, ValueError, TypeError)
ODD = (ArithmeticError, AttributeError, KeyError, TypeError, ValueError)   # what an odd file's fields can raise


# ---- folders and names ---------------------------------------------------------------------------------------
def shipped_dir() -> Path:
    return ic.checkpoint_dir()


def user_dir() -> Path:
    return Path(os.environ.get("GANAE_USER_CHECKPOINT_DIR") or shipped_dir() / "user")


def safe_name(text: str) -> str:
    """A file stem made of letters, digits, '-', '_' and '.' only: no folders, no '..', no hidden files."""
    stem = str(text).strip()
    if stem.lower().endswith(".pt"):
        stem = stem[:-3]
    parts = [p for p in re.split(r"[/\\]+", stem) if p.strip(". ")]      # folders: their names, never '..'
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts))
    stem = re.sub(r"\.{2,}", ".", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip(".-_")
    return stem[:NAME_MAX].rstrip(".-_")


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().parent == folder.resolve()


def unique_path(folder: Path, stem: str) -> Path:
    path, i = folder / f"{stem}.pt", 2
    while path.exists():
        path, i = folder / f"{stem}-{i}.pt", i + 1
    return path


# ---- what a checkpoint is ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def _kind(path: str, mtime: float, size: int) -> str:
    """'run' or the payload's own kind ('classifier'); read once per file version."""
    try:
        payload = checkpoint.load(path)
    except CheckpointError:
        return "broken"
    kind = payload.get("kind")
    return str(kind) if isinstance(kind, str) and kind else "run"


@st.cache_resource(show_spinner=False)
def _tidied(folder: str) -> list[str]:
    """Once per server process and folder: delete the temp files of saves killed mid-write (kill -9 left one
    hidden `.<name>.<random>.tmp` each time)."""
    return [p.name for p in checkpoint.remove_stale_temp(folder)]


def entries() -> list[dict[str, Any]]:
    """Every checkpoint of both folders (`checkpoint.list_checkpoints`), with `where` and `kind` added."""
    out: list[dict[str, Any]] = []
    folders = [(shipped_dir(), "checkpoints/")]
    if user_dir().resolve() != shipped_dir().resolve():
        folders.append((user_dir(), "checkpoints/user/"))
    for folder, where in folders:
        _tidied(str(folder.resolve()))
        for e in checkpoint.list_checkpoints(folder):
            e = {**e, "where": where}
            if "error" not in e:
                kind = e.get("kind")
                if not kind:
                    try:
                        st_ = Path(e["path"]).stat()
                        kind = _kind(e["path"], st_.st_mtime, st_.st_size)
                    except OSError:
                        kind = "run"
                e["kind"] = kind
            out.append(e)
    return out


def config_of(e: dict[str, Any]) -> RunConfig | None:
    try:
        return RunConfig.from_dict(e.get("config"))
    except ODD:
        return None


def describe(e: dict[str, Any]) -> tuple[str, str]:
    """(model, dataset) in words."""
    cfg = config_of(e)
    data = cfg.data.name if cfg is not None else "?"
    if e.get("kind") == "classifier":
        return "metric classifier", data
    if cfg is None:
        return "unknown model", data
    m = cfg.model
    name = FAMILY_LABELS.get(m.family, m.family)
    if m.family == "vae" and m.beta != 1.0:
        name = f"β-VAE (β = {m.beta:g})"
    if cfg.is_gan and cfg.model.family == "gan":
        name += f", {cfg.objective.loss} loss"
    return f"{name}, {m.latent_dim}-d latent", data


def metrics_text(metrics: dict[str, Any], limit: int = 4) -> str:
    parts = []
    for k, v in metrics.items():
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            continue
        label = METRIC_LABELS.get(k, k)
        parts.append(f"{label} {int(v)}" if k in ("modes", "classes", "active_units") or float(v).is_integer()
                     else f"{label} {v:.3g}")
        if len(parts) >= limit:
            break
    return " · ".join(parts)


def size_text(n: int) -> str:
    return f"{n / 1024:.0f} kB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def date_text(iso: str) -> str:
    return iso[:16].replace("T", " ") if iso else ""


def _label(e: dict[str, Any]) -> str:
    model, data = describe(e)
    return f"{e['where']}{Path(e['path']).name} · {model} on {data} · step {e['step']:,}"


# ---- actions -------------------------------------------------------------------------------------------------
def open_checkpoint(e: dict[str, Any], page: str) -> None:
    """Start a run from the checkpoint and open `page` on it (a sentence when that is not possible)."""
    try:
        with st.spinner(f"Loading {quote.md(Path(e['path']).name)}…"):
            payload = checkpoint.load(e["path"])
            runner = links.start_from_payload(page, payload)
    except ERRORS as err:
        runtime.show_error(err)
        return
    links.open_page(page, runner.run_id)


def _latest_evals(trainer: Any) -> dict[str, float]:
    """The latest finite value of each evaluation curve (what the page showed last)."""
    out: dict[str, float] = {}
    evals = getattr(trainer, "evals", None)
    for k, col in (getattr(evals, "values", None) or {}).items():
        for v in reversed(col):
            if math.isfinite(v):
                out[k] = float(v)
                break
    return out


def save_run(runner: Any, text: str, replace: bool = False) -> tuple[str, str]:
    """Save `runner`'s trainer into the user folder under a sanitised name: ("ok" | "error", sentence)."""
    stem = safe_name(text)
    if not stem:
        return "error", ("Type a name for the checkpoint, made of letters, digits, '-', '_' or '.' "
                         "(for example ring8-r1-monday).")
    folder = user_dir()
    path = folder / f"{stem}.pt"
    if not _inside(path, folder):
        return "error", "That name would leave your checkpoint folder; type a plain name (no '/' or '..')."
    if path.exists() and not replace:
        return "error", (f"There is already a checkpoint named '{stem}' in your folder: type another name or tick "
                         f"*Replace*.")
    step = runner.status().step
    note = f"saved on the Checkpoints page from run {runner.run_id} at step {step}"
    try:
        runner.call(lambda t: t.save(path, note=note, metrics=_latest_evals(t)), timeout=60.0)
    except ERRORS as e:
        return "error", f"The run could not be saved ({quote.md(e)}); try again, or pause the run first."
    tidy = "" if stem == text.strip().removesuffix(".pt") else " (the name was tidied: only letters, digits, " \
                                                              "'-', '_' and '.' are kept)"
    return "ok", f"Saved **{path.name}** (step {step:,}) in `{folder}`{tidy}."


def accept_upload(filename: str, data: bytes) -> tuple[str, str]:
    """Check an uploaded file and keep it in the user folder: ("ok" | "error", sentence). Writes nothing unless the
    file is a valid ganae checkpoint of at most the upload limit whose configuration is valid here and whose
    weights fit the model that configuration describes."""
    shown = quote.md(Path(filename).name or "the file", 120)
    try:
        payload = checkpoint.load(bytes(data), max_bytes=uploads.limit_bytes())
        if payload.get("kind") != "classifier":
            links.payload_config(payload)
            trainer.check_weights(payload)
    except CheckpointError as e:
        return "error", f"**{shown}** was not accepted. {quote.md(e)}"
    stem = safe_name(Path(filename).stem) or "upload"
    folder = user_dir()
    path = unique_path(folder, stem)
    if not _inside(path, folder):
        return "error", f"**{shown}** was not accepted: its name cannot be used; rename the file and try again."
    body = {k: v for k, v in payload.items() if k not in ("schema", "format")}
    try:
        checkpoint.save(path, body)
    except (TypeError, OSError, CheckpointError) as e:
        return "error", f"**{shown}** could not be stored ({quote.md(e)})."
    model, dataset = describe({"config": payload.get("config"), "kind": payload.get("kind")})
    return "ok", (f"Accepted **{shown}**: {model} on {dataset}, step {int(payload['step']):,}. Saved as "
                  f"`{path.name}` in your folder.")


# ---- sections ------------------------------------------------------------------------------------------------
def gallery(all_entries: list[dict[str, Any]]) -> None:
    good = [e for e in all_entries if "error" not in e]
    broken = [e for e in all_entries if "error" in e]
    if not all_entries:
        st.info("No checkpoints yet. Train a model on a page and save it below, or upload one.",
                icon=":material/inventory_2:")
        return
    rows, described = [], []
    for e in good:
        try:
            rows.append(row(e))
            described.append(e)
        except ODD as err:             # one odd file is listed as such; the others stay usable
            broken.append({**e, "error": f"its summary cannot be shown ({type(err).__name__}); it is damaged or "
                                         "was not made by ganae — save it again."})
    good = described
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch", key="ck_table",
                     column_config={"note": st.column_config.TextColumn("note", width="large"),
                                    "steps": st.column_config.NumberColumn("steps", format="%d")})
    for e in broken:
        st.warning(f"**{quote.md(e['where'] + Path(e['path']).name)}** cannot be used: {quote.md(e['error'])}",
                   icon=":material/broken_image:")
    if good:
        details(good)


def row(e: dict[str, Any]) -> dict[str, Any]:
    """One checkpoint's line in the gallery table (plain text cells)."""
    model, data = describe(e)
    return {"checkpoint": Path(e["path"]).name, "folder": e["where"], "model": model, "data": data,
            "steps": int(e["step"]), "metrics": metrics_text(e.get("metrics") or {}),
            "saved": date_text(e.get("modified", "")), "size": size_text(int(e.get("size_bytes", 0))),
            "note": (e.get("note") or "")[:160]}


def details(good: list[dict[str, Any]]) -> None:
    ordered = sorted(good, key=lambda e: e.get("kind") == "classifier")     # models first, classifiers last
    by_path = {e["path"]: e for e in ordered}
    path = st.selectbox("Checkpoint", list(by_path), key="ck_pick", format_func=lambda p: _label(by_path[p]))
    e = by_path[path]
    model, data = describe(e)
    with st.container(border=True):
        st.markdown(f"**{quote.md(Path(path).name)}** — {quote.md(model)} on **{quote.md(data)}**, "
                    f"step **{e['step']:,}** · "
                    f"{size_text(int(e.get('size_bytes', 0)))} · saved {date_text(e.get('modified', ''))}")
        if e.get("note"):
            st.caption(quote.md(e["note"], 600))
        if e.get("metrics"):
            st.markdown("Recorded metrics: " + metrics_text(e["metrics"], limit=12))
        cols = st.columns([1.4, 1.4, 1, 1.6], vertical_alignment="center")
        cfg = config_of(e)
        if e.get("kind") == "classifier":
            cols[0].caption("A metric classifier: the quality metrics use it to score generated images. It is not a "
                            "model to train or explore, so it cannot be loaded into a page.")
        elif cfg is None:
            cols[0].caption("Its configuration is not valid in this version, so it cannot be loaded into a page.")
        else:
            page = lessons.page_for(cfg)
            if cols[0].button(f"Open in {lessons.PAGES[page]}", key="ck_open", type="primary",
                              icon=":material/open_in_new:", width="stretch",
                              help="Continue this model in its training page (paused at its step)."):
                open_checkpoint(e, page)
            if page != "latent" and cols[1].button("Explore its latent space", key="ck_explore",
                                                   icon=":material/explore:", width="stretch"):
                open_checkpoint(e, "latent")
        cols[2].download_button("Download", data=lambda p=path: Path(p).read_bytes(), file_name=Path(path).name,
                                mime="application/octet-stream", key="ck_download", icon=":material/download:",
                                on_click="ignore", width="stretch")


def save_section() -> None:
    reg = runtime.registry()
    runs = links.session_runs()
    if not runs:
        st.caption("No run is open in this session yet: train one on a page, then come back here to save it.")
        return

    def label(rid: str) -> str:
        r = reg.get(rid)
        if r is None:
            return rid
        s = r.status()
        model, data = describe({"config": r.cfg.to_dict()})
        return f"{lessons.PAGES.get(runs[rid], runs[rid])} run {rid} · {model} on {data} · step {s.step:,}"

    c1, c2 = st.columns([2, 1.4], vertical_alignment="bottom")
    rid = c1.selectbox("Run", list(runs)[::-1], key="ck_save_run", format_func=label)
    name = c2.text_input("Name", key="ck_save_name", max_chars=80, placeholder="e.g. ring8-r1-monday")
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    replace = c2.checkbox("Replace a checkpoint of the same name", key="ck_save_replace")
    if c1.button("Save", key="ck_save", icon=":material/save:", width="stretch"):
        r = reg.get(rid)
        st.session_state["ck_save_msg"] = save_run(r, name, replace) if r is not None else \
            ("error", "That run is no longer on this server; train it again.")
    msg = st.session_state.get("ck_save_msg")
    if msg:
        (st.success if msg[0] == "ok" else st.error)(msg[1])


def upload_section() -> None:
    up = uploads.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key="ck_upload",
                               help="A checkpoint saved by ganae. Files that are not ganae checkpoints, are cut off, "
                                    "are too large or would run code when opened are refused.")
    if up is None:
        st.session_state.pop("ck_upload_digest", None)
        return
    data = up.getvalue()
    digest = hashlib.sha256(data).hexdigest() + ":" + up.name
    if st.session_state.get("ck_upload_digest") != digest:      # each upload is checked (and kept) once
        st.session_state["ck_upload_digest"] = digest
        st.session_state["ck_upload_msg"] = accept_upload(up.name, data)
    level, text = st.session_state["ck_upload_msg"]
    (st.success if level == "ok" else st.error)(text)


def run() -> None:
    links.advanced()
    st.title("Checkpoints")
    st.caption("Shipped pre-trained models and your own saves: open one in its page to look at it or train it on, "
               "save a run of this session, download a file or upload one.")
    listing = st.container()
    st.subheader("Save a run of this session")
    save_section()
    st.subheader("Upload")
    upload_section()
    with listing:                       # drawn last: it lists what the sections below just saved
        gallery(entries())
    st.caption(f"Folders: `{shipped_dir()}` (shipped models and saves of the training pages) and `{user_dir()}` "
               f"(saves and uploads of this page).")


run()
