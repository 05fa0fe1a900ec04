"""Lessons: guided tours through the pages for a lecture or a lab session.

Thin page over `ganae.lessons` (the content). A lesson is a sequence of steps; each step says what to do and what
to notice, and one button opens the step's page set up for it: a fresh run of the step's preset (idle — pressing
Train is the student's part), a shipped pre-trained model, or the Dirac-GAN's methods. The lesson and the step
live in the URL (`?lesson=mode-collapse&step=2`), so a teacher can hand out a link to any step; `?advanced=0`
(the student view) follows the student from page to page.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from dashboard import image_controls as ic
from dashboard import links, runtime
from ganae import checkpoint, dirac, lessons, presets
from ganae.checkpoint import CheckpointError
from ganae.config import ConfigError
from ganae.data import DataError

LESSON_KEY, STEP_KEY = "ls_lesson", "ls_step"       # session state: the lesson's name, the step's index (0-based)
# the Dirac-GAN page's setting where the paper's verdicts hold (views/dirac.py, PAPER): a step resets to it
DIRAC_PAPER = {"dg_h": 0.1, "dg_steps": 1000, "dg_theta0": 1.0, "dg_psi0": 1.0, "dg_dsteps": 1}
ERRORS = (CheckpointError, ConfigError, DataError, OSError, RuntimeError, TimeoutError, ValueError)


def _from_url() -> None:
    """?lesson=...&step=N (1-based) -> the session's lesson and step, once per distinct link."""
    q = st.query_params
    name, step = q.get("lesson"), q.get("step")
    sig = f"{name}|{step}"
    if name is None or st.session_state.get("_ls_url") == sig:
        return
    st.session_state["_ls_url"] = sig
    if name in lessons.LESSONS:
        st.session_state[LESSON_KEY] = name
        n = len(lessons.LESSONS[name].steps)
        try:
            st.session_state[STEP_KEY] = min(max(int(step or 1) - 1, 0), n - 1)
        except ValueError:
            st.session_state[STEP_KEY] = 0


def _to_url(name: str, index: int) -> None:
    if st.query_params.get("lesson") != name:
        st.query_params["lesson"] = name
    if st.query_params.get("step") != str(index + 1):
        st.query_params["step"] = str(index + 1)
    st.session_state["_ls_url"] = f"{name}|{index + 1}"


def _on_lesson() -> None:
    st.session_state[STEP_KEY] = 0


def _move(delta: int, n: int) -> None:
    st.session_state[STEP_KEY] = min(max(int(st.session_state.get(STEP_KEY, 0)) + delta, 0), n - 1)


# ---- what a step opens ---------------------------------------------------------------------------------------
def setup_text(step: lessons.Step) -> str:
    """The step's setup in words, shown above its button."""
    if step.page == "dirac" and step.state:
        methods = ", ".join(f"*{m}*" for m in step.state.get("methods", []))
        return f"Methods {methods}, {step.state.get('mode', 'simultaneous')} updates, the paper's step size and start."
    if step.preset:
        p = presets.PRESETS[step.preset]
        text = f"**{p.title}** — {p.description}"
        if step.updates:
            text += " Changed for this step: " + ", ".join(f"`{k} = {v}`" for k, v in step.updates.items()) + "."
        if step.pretrained:
            text += " Uses the shipped pre-trained model when there is one."
        return text
    if step.page in links.RUN_KEYS:
        return "Continues with the run you have open on that page."
    return "Opens the page as you left it."


def pretrained_entry(step: lessons.Step) -> dict[str, Any] | None:
    """The shipped checkpoint made from the step's preset, if the checkpoints folder has one."""
    if not step.pretrained:
        return None
    try:
        entries = checkpoint.list_checkpoints(ic.checkpoint_dir())
    except OSError:
        return None
    return lessons.pretrained_entry(step, entries)


def _latest_run(page_keys: tuple[str, ...]) -> str | None:
    runs = links.session_runs()
    for rid in reversed(list(runs)):
        if runs[rid] in page_keys:
            return rid
    return None


def open_step(step: lessons.Step) -> None:
    """Set the step's page up and switch to it (a sentence instead when that fails)."""
    page = step.page
    run_id = None
    try:
        if page in ("playground", "ae_lab", "image_gan"):
            cfg = step.config()
            if cfg is not None:
                with st.spinner("Building the model and loading the data…"):
                    run_id = links.start_run(page, cfg).run_id
            else:
                run_id = _latest_run((page,))
        elif page == "latent":
            entry = pretrained_entry(step)
            if entry is not None:
                with st.spinner(f"Loading {Path(entry['path']).name}…"):
                    run_id = links.start_from_payload(page, checkpoint.load(entry["path"])).run_id
            else:
                run_id = _latest_run(("ae_lab", "image_gan", "playground", "latent"))
                if run_id is None:
                    st.info("There is no shipped model for this step and no run of yours yet: do the previous step "
                            "first (train for a minute), then come back.", icon=":material/info:")
                    return
                st.session_state["lx_source"] = f"run:{run_id}"
        elif page == "dirac" and step.state:
            apply_dirac(step.state)
    except ERRORS as e:
        runtime.show_error(e)
        return
    links.open_page(page, run_id)


def apply_dirac(state: dict[str, Any]) -> None:
    """The Dirac-GAN page's widgets: the paper's setting, then the step's methods and update mode."""
    ss = st.session_state
    ss.update(DIRAC_PAPER)
    for m, ps in dirac.DEFAULTS.items():
        for p, v in ps.items():
            ss[f"dg_p:{m}:{p}"] = float(v)
    ss["dg_methods"] = [m for m in dirac.METHODS if m in state.get("methods", [])]
    ss["dg_mode"] = state.get("mode", "simultaneous")


TEACHER_NOTE = (
    ":material/visibility: **Projecting a run for the class.** A run obeys only the browser that started it. Press "
    "**Watch** next to **Share** on a training page (or on the Arena) and hand out that link, or project it: whoever "
    "opens it sees the run live with its controls off, so nobody can pause, step or reset it for you. A student who "
    "wants to try something from that point presses **Make my own copy** and trains a copy of their own. A **Share** "
    "link, by contrast, holds only the settings and the seed: each student trains their own run from scratch.")


# ---- page ----------------------------------------------------------------------------------------------------
def run() -> None:
    ss = st.session_state
    _from_url()
    names = lessons.names()
    if ss.get(LESSON_KEY) not in names:
        ss[LESSON_KEY] = names[0]
    st.title("Lessons")
    st.caption("Guided tours through the pages. Each step opens a page set up for it; come back here for the next "
               "step.")

    c1, c2 = st.columns([3, 1.2], vertical_alignment="bottom")
    name = c1.selectbox("Lesson", names, key=LESSON_KEY, on_change=_on_lesson,
                        format_func=lambda n: f"{names.index(n) + 1}. {lessons.LESSONS[n].title}")
    student = c2.toggle("Student view", value=not links.advanced(), key="ls_student",
                        help="Hide the advanced controls on every page (adds ?advanced=0 to the links).")
    if student == links.advanced():
        links.set_advanced(not student)
    lesson = lessons.get(name)
    n = len(lesson.steps)
    i = min(max(int(ss.get(STEP_KEY, 0)), 0), n - 1)
    ss[STEP_KEY] = i
    _to_url(name, i)

    st.markdown(f"**Goal.** {lesson.goal}  \n<small>About {lesson.minutes} minutes · {n} steps</small>",
                unsafe_allow_html=True)
    st.progress((i + 1) / n, text=f"Step {i + 1} of {n}")
    step = lesson.steps[i]
    with st.container(border=True):
        st.subheader(f"{i + 1}. {step.title}")
        st.markdown(f"**Page:** {step.page_title}  \n**Setup:** {setup_text(step)}")
        if st.button(f"Open {step.page_title}", key="ls_open", type="primary", icon=":material/open_in_new:",
                     help="Opens the page set up for this step. Come back to Lessons for the next one."):
            open_step(step)
        left, right = st.columns(2, gap="large")
        with left:
            st.markdown("**What to do**")
            st.markdown(step.do)
        with right:
            st.markdown("**What to notice**")
            st.markdown(step.notice)

    c1, c2, _ = st.columns([1, 1, 3])
    c1.button("Back", key="ls_back", icon=":material/arrow_back:", disabled=i == 0, on_click=_move, args=(-1, n),
              width="stretch")
    c2.button("Next", key="ls_next", icon=":material/arrow_forward:", disabled=i == n - 1, on_click=_move,
              args=(1, n), width="stretch")

    with st.expander("All steps of this lesson"):
        for j, s in enumerate(lesson.steps):
            mark = "▶" if j == i else " "
            st.markdown(f"{mark} **{j + 1}. {s.title}** · {s.page_title}")
    params = urlencode({"lesson": name, "step": i + 1, **links.carry()})
    st.caption(f"Link to this step: `{links.page_url()}?{params}`")
    st.markdown(TEACHER_NOTE)


run()
