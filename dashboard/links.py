"""Links: a page's whole setup in its URL, a "copy link" control, a student view, and opening another page on a
run (from a config or from a checkpoint).

A shareable link holds the configuration as `section.field=value` parameters (only the fields that differ from
`RunConfig()`'s defaults, plus the seed, always), so opening it rebuilds the same config and, with the same seed,
the same first steps. It never holds the run id: a run belongs to the server and the session that trains it, a
link is a recipe anyone can start again.

    cfg = links.config_from_url()          # the config in the URL, or None (none there / not valid: a sentence)
    cfg = links.opened_link("playground")  # the same, once per link opened on a page
    links.follow("playground", pending)    # the page's form -> its URL (and the problem of a link it could not use)
    links.sync_url(cfg)                    # keep the address bar in step with the form (the run id stays)
    links.copy_link(cfg)                   # a small "Share" popover with the URL and a copy button
    if links.advanced(): ...               # False with ?advanced=0: pages hide their advanced controls

    runner = links.start_run("playground", cfg)          # a new run (idle) for that page, in this session
    links.open_page("playground", runner.run_id)         # st.switch_page with ?run=<id> (and ?advanced=0 kept)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

import streamlit as st

from dashboard import quote, runtime
from ganae import lessons
from ganae.checkpoint import CheckpointError
from ganae.config import ConfigError, RunConfig

SEED = "train.seed"
ADVANCED = "advanced"                 # ?advanced=0 hides advanced controls (a student view)
_ADV_STATE = "_links_advanced"
OFF = ("0", "false", "no", "off")
# page name (ganae.lessons.PAGES) -> URL path of the page, as app.py registers it
URL_PATHS = {"home": "home", "playground": "playground", "ae_lab": "ae-lab", "image_gan": "image-gan",
             "latent": "latent", "arena": "arena", "dirac": "dirac", "checkpoints": "checkpoints",
             "lessons": "lessons"}
# pages that show a run: the key under which runtime / the page remember "this session's run of the page"
RUN_KEYS = {"playground": "playground", "ae_lab": "ae_lab", "image_gan": "image_gan", "latent": "latent"}


# ---- config <-> URL parameters -------------------------------------------------------------------------------
def params_of(cfg: RunConfig) -> dict[str, str]:
    """The URL parameters of `cfg`: the fields that differ from the defaults, and the seed (always)."""
    q = dict(sorted(cfg.to_query().items()))
    q[SEED] = str(int(cfg.train.seed))
    return q


def config_of(params: Mapping[str, Any]) -> RunConfig | None:
    """The config described by URL parameters (keys with a dot), validated; None when there are none.

    Raises ConfigError (naming the parameter) for an unknown field or a value the field cannot take."""
    dotted = {}
    for k, v in params.items():
        if "." not in str(k):
            continue
        if isinstance(v, (list, tuple)):      # a parameter given twice: the last one wins, as in st.query_params
            v = v[-1] if v else ""
        dotted[str(k)] = str(v)
    if not dotted:
        return None
    return RunConfig.from_query(dotted).validate()


def query_string(cfg: RunConfig, **extra: str) -> str:
    return urlencode({**params_of(cfg), **{k: str(v) for k, v in extra.items()}})


def page_url(page: str | None = None) -> str:
    """The browser's URL of `page` (default: the current page) without parameters; a relative path when the app
    runs without a browser (tests)."""
    current = _context_url()
    if page is None:
        return current or "/"
    path = URL_PATHS.get(page, page)
    if not current:
        return f"/{path}"
    root = current.rstrip("/")
    for p in sorted(URL_PATHS.values(), key=len, reverse=True):
        if root.endswith("/" + p):
            root = root[: -len(p) - 1]
            break
    return f"{root}/{path}"


def _context_url() -> str | None:
    try:
        return st.context.url
    except Exception:       # no browser session (AppTest, bare mode)
        return None


def link(cfg: RunConfig, page: str | None = None, **extra: str) -> str:
    """The full shareable URL of `cfg` on `page` (default: the current page)."""
    if not advanced():
        extra.setdefault(ADVANCED, "0")
    return f"{page_url(page)}?{query_string(cfg, **extra)}"


def problem_sentence(e: ConfigError) -> str:
    """What a page says about a link it cannot use (the parameter and the fix)."""
    return (f"The link's settings could not be used — {quote.field_error(e)}. The page starts from its defaults "
            f"instead.")


def config_from_url(show_error: bool = True) -> RunConfig | None:
    """The config in this page's URL, or None. A link that does not describe a valid config is reported as one
    sentence (the parameter and the fix) and ignored."""
    try:
        return config_of(st.query_params.to_dict())
    except ConfigError as e:
        if show_error:
            st.warning(problem_sentence(e), icon=LINK_OFF)
        return None


NO_LINK = "url:"                      # the fingerprint of a URL without config parameters
LINK_OFF = ":material/link_off:"


def url_fingerprint(extra: Iterable[str] = ()) -> str:
    """A short text naming the config parameters in the URL (changes when a different link is opened): pages
    use it as the `source` of their form's init, so a new link refills the form once. `extra` names further
    (undotted) parameters that belong to the page's setup."""
    keep = set(extra)
    dotted = sorted((k, v) for k, v in st.query_params.to_dict().items() if "." in k or k in keep)
    return NO_LINK + urlencode(dotted)


# ---- a page that follows its URL -------------------------------------------------------------------------------
# The pattern of a training page:
#     cfg = links.opened_link("playground")       # a link opened just now: fill the form from it
#     ... draw the form, build the pending config ...
#     links.follow("playground", pending)         # the address bar follows the form
# A page's own writes to the URL are remembered (the fingerprints it left), so they never count as a new link.
def _seen_key(page: str) -> str:
    return f"_link:{page}"


SEEN_MAX = 64


def _seen(page: str) -> list[str]:
    seen = st.session_state.get(_seen_key(page))
    return seen if isinstance(seen, list) else []


def _remember(page: str, fp: str) -> None:
    """Remember a fingerprint this page opened or wrote. All of them, not just the last: a rerun request carries
    the browser's address as it was when the user clicked, which can lag the page's latest write (two quick slider
    moves) -- an older own write must not read as a newly opened link and reset the form."""
    seen = [f for f in _seen(page) if f != fp] + [fp]
    st.session_state[_seen_key(page)] = seen[-SEEN_MAX:]


def _keys_key(page: str) -> str:
    return f"_link_keys:{page}"


def _problem_key(page: str) -> str:
    return f"_link_problem:{page}"


def _not_here(page: str, cfg: RunConfig) -> ConfigError:
    fam = {"gan": "GAN", "ae": "autoencoder", "dae": "denoising autoencoder", "vae": "VAE",
           "aae": "adversarial autoencoder", "vaegan": "VAE-GAN"}.get(cfg.model.family, cfg.model.family)
    where = "2D points" if cfg.is_points else "images"
    return ConfigError("model.family" if cfg.is_points == (page == "playground") else "data.name",
                       f"the link describes a {fam} on {cfg.data.name} ({where}), which the "
                       f"{lessons.PAGES.get(page, page)} page cannot show; open it on the "
                       f"{lessons.PAGES.get(lessons.page_for(cfg), 'right')} page")


NOT_AN_UPLOAD = ("a link can only name a file uploaded to this server through a page (a CSV of points, a drawing "
                 "or a .zip of images); upload the file on the page")


def is_upload(path: str) -> bool:
    """Whether `path` is a file name in the upload folder (where pages keep uploads and drawings, named by their
    content); decided from the name alone, so the answer says nothing about other paths on the server."""
    from dashboard.settings import UPLOAD_DIR
    try:
        return Path(path).resolve().parent == UPLOAD_DIR.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def check_server_paths(cfg: RunConfig) -> RunConfig:
    """A link may not point the server at its own files: data.root stays the data folder, and data.path (a CSV of
    points, a folder or zip of images) must name an upload made through a page. Otherwise a crafted link could
    show any image folder the server can read, walk a tree such as /usr/share, quote a file's first lines in an
    error sentence, or tell by the sentence whether a path exists: every refused path gets the same one."""
    d, default = cfg.data, RunConfig().data
    if d.root != default.root:
        raise ConfigError("data.root", "a link cannot choose a folder on the server; leave it out of the link")
    if d.path and not is_upload(d.path):
        raise ConfigError("data.path", NOT_AN_UPLOAD)
    return cfg


def opened_link(page: str, extra: Iterable[str] = ()) -> RunConfig | None:
    """The config of a link opened on `page` just now, or None.

    Returns the URL's config the first time this session sees these config parameters on `page`; None on later
    reruns (the page's own URL writes included), without config parameters, and for a link that cannot be used:
    an unknown field, a bad value, or a setup the page cannot show. That problem is kept as one sentence, which
    `follow` shows until the user changes the settings.

    A link holds the fields that differ from `RunConfig()` (whose data are the 2D ring of 8), never from a
    page's own defaults: a link made on the Playground means the same config on any page, and the Image GAN page
    says it cannot show it rather than reading it as something else. `extra` names undotted parameters of the
    page's setup that make a link new too (the page reads them)."""
    ss = st.session_state
    ss[_keys_key(page)] = tuple(extra)
    fp = url_fingerprint(extra)
    if fp == NO_LINK or fp in _seen(page):
        return None
    _remember(page, fp)
    ss.pop(_problem_key(page), None)
    params = st.query_params.to_dict()
    try:
        cfg = config_of(params)
        if cfg is None:
            return None
        if page in RUN_KEYS and not lessons.fits(page, cfg):
            raise _not_here(page, cfg)
        return check_server_paths(cfg)
    except ConfigError as e:
        report_problem(page, problem_sentence(e))
        return None


def report_problem(page: str, sentence: str) -> None:
    """Keep the problem of a link opened on `page`: `follow` shows it until the user changes the settings."""
    st.session_state[_problem_key(page)] = [sentence, None]


def follow(page: str, cfg: RunConfig | None, extra: Mapping[str, str] | None = None) -> None:
    """Keep the address bar in step with the page's settings (`cfg`, plus `extra` undotted parameters of the
    page's setup) and show the problem of a link that could not be used, while the settings are still the
    defaults it fell back to."""
    ss = st.session_state
    problem = ss.get(_problem_key(page))
    if problem is not None:
        now = (cfg.to_json() + repr(sorted((extra or {}).items()))) if cfg is not None else None
        if problem[1] is None:
            problem[1] = now
        if problem[1] == now or now is None:
            st.warning(problem[0], icon=LINK_OFF)
        else:
            ss.pop(_problem_key(page), None)
    if cfg is not None:
        sync_url(cfg)
        for k, v in (extra or {}).items():
            if st.query_params.get(k) != v:
                st.query_params[k] = v
    _remember(page, url_fingerprint(ss.get(_keys_key(page), ())))


def leave_run(page: str) -> None:
    """Forget this session's run of `page` (a link was opened: the page shows the link's setup, not the old run).
    The run is paused so that it does not hold a training slot for nothing."""
    key = RUN_KEYS.get(page, page)
    _pause_previous(page)
    old = st.session_state.pop(f"_run:{key}", None)
    st.session_state.pop(f"{key}:run", None)
    if old:
        runtime.registry().detach(old, runtime.session_token())


def student_caption() -> None:
    st.caption(":material/school: Student view: advanced settings hidden (`?advanced=0`).")


def sync_url(cfg: RunConfig | None) -> None:
    """Write `cfg`'s parameters into the address bar (stale config parameters are removed; others such as the run
    id stay). Writes only what changed, so it costs nothing on reruns."""
    if cfg is None:
        return
    want = params_of(cfg)
    have = st.query_params.to_dict()
    for k in [k for k in have if "." in k and k not in want]:
        del st.query_params[k]
    for k, v in want.items():
        if have.get(k) != v:
            st.query_params[k] = v


def copy_link(cfg: RunConfig | None, page: str | None = None, label: str = "Share",
              key: str | None = None) -> str | None:
    """A small popover with the link to this setup (st.code has a copy button); returns the URL."""
    if cfg is None:
        return None
    url = link(cfg, page)
    with st.popover(label, icon=":material/link:", help="A link that opens this page with these settings and seed",
                    key=key):
        st.markdown("**Link to these settings**")
        st.code(url, language=None, wrap_lines=True)
        st.caption("Opening it sets up the same configuration and seed: pressing Train there gives the same "
                   "first steps. It does not share this run — the other person trains their own.")
    return url


def watch_link(page: str, params: Mapping[str, str], key: str, what: str = "run") -> str:
    """A small "Watch" popover with the address of this very run (`params`: its id in the URL), next to Share;
    returns the URL. It carries no secret: who opens it watches, only this browser commands the run."""
    url = f"{page_url(page)}?{urlencode({**params, **carry()})}"
    with st.popover("Watch", icon=":material/visibility:", key=key,
                    help=f"A link that shows this {what} live, read-only, in any other browser"):
        st.markdown(f"**Link to watch this {what}**")
        st.code(url, language=None, wrap_lines=True)
        st.caption(f"Whoever opens it sees this {what} as it trains, with the controls off: only this browser can "
                   f"train, pause, step or reset it. They can make their own copy and go on from there. Project it "
                   f"to let a class watch.")
    return url


def share_links(cfg: RunConfig | None, page: str, run_params: Mapping[str, str] | None, key: str) -> None:
    """Share (the settings) and, with a run, Watch (this run) side by side (on two lines where they do not fit)."""
    with st.container(horizontal=True, gap="small"):
        copy_link(cfg, page, key=f"{key}share")
        if run_params:
            watch_link(page, run_params, key=f"{key}watch")


# ---- the student view ------------------------------------------------------------------------------------------
def advanced() -> bool:
    """False when the URL said ?advanced=0 (in this session, on any page since): hide advanced controls.

    ?advanced=1 shows them again. The choice stays in the address bar when the student changes pages."""
    ss = st.session_state
    value = st.query_params.get(ADVANCED)
    if value is not None:
        ss[_ADV_STATE] = value.strip().lower() not in OFF
    on = bool(ss.get(_ADV_STATE, True))
    if not on and value is None:
        st.query_params[ADVANCED] = "0"
    return on


def set_advanced(on: bool) -> None:
    st.session_state[_ADV_STATE] = bool(on)
    if on:
        if ADVANCED in st.query_params:
            del st.query_params[ADVANCED]
    else:
        st.query_params[ADVANCED] = "0"


def carry() -> dict[str, str]:
    """Parameters that follow the user from page to page (the student view)."""
    return {} if advanced() else {ADVANCED: "0"}


# ---- opening pages ---------------------------------------------------------------------------------------------
def page_file(page: str) -> str:
    if page not in URL_PATHS:
        raise KeyError(f"'{page}' is not a page; pages: {', '.join(URL_PATHS)}")
    return f"views/{page}.py"


def open_page(page: str, run_id: str | None = None, params: Mapping[str, str] | None = None) -> None:
    """Switch to `page` (never returns), with the run and the student view in its URL."""
    query = {**carry(), **dict(params or {})}
    if run_id:
        query[runtime.QUERY_KEY] = run_id
    st.switch_page(page_file(page), query_params=query)


def session_runs() -> dict[str, str]:
    """run id -> the page it was started on, for the runs this session has open (latest last)."""
    out: dict[str, str] = {}
    for k, v in list(st.session_state.items()):
        if not isinstance(k, str) or not isinstance(v, str):
            continue
        if k.startswith("_run:"):                  # runtime.remember_run's record per page
            out[v] = k[5:]
        elif k.endswith(":run") and k[:-4] in RUN_KEYS:
            out.setdefault(v, k[:-4])
    reg = runtime.registry()
    return {rid: page for rid, page in out.items() if reg.get(rid) is not None}


def _adopt(page: str, runner) -> None:
    """Make `runner` the run of `page` in this session, as the page itself would."""
    key = RUN_KEYS[page]
    st.session_state[f"{key}:run"] = runner.run_id          # image_controls.resolve_run's record
    if page == "latent":
        st.session_state["lx_source"] = f"run:{runner.run_id}"


def start_run(page: str, cfg: RunConfig):
    """A new run of `cfg` (idle: the student presses Train) remembered as this session's run of `page`.

    ConfigError / DataError propagate with their sentence; nothing is registered then."""
    if page not in RUN_KEYS:
        raise ValueError(f"page '{page}' does not show runs")
    if not lessons.fits(page, cfg):
        raise ValueError(f"the {lessons.PAGES.get(page, page)} page cannot show a {cfg.model.family} on "
                         f"{cfg.data.name}")
    _pause_previous(page)
    runner = runtime.create_run(RUN_KEYS[page], cfg)
    _adopt(page, runner)
    return runner


def _pause_previous(page: str) -> None:
    """The run this one replaces on `page` stops training (it would hold a training slot until it is reaped);
    a run this browser only watched is left alone."""
    old = runtime.registry().get(st.session_state.get(f"_run:{RUN_KEYS[page]}"))
    if old is not None and not runtime.watching(old):
        try:
            old.pause(wait=False, owner=runtime.owner_token())
        except RuntimeError:        # already stopped
            pass


def payload_config(payload: Mapping[str, Any]) -> RunConfig:
    """The RunConfig of a checkpoint payload; CheckpointError (a sentence) when it is not valid here."""
    if payload.get("kind") == "classifier":
        raise CheckpointError("This checkpoint is a metric classifier (it scores generated images for the quality "
                              "metrics); it cannot be opened in a page.")
    try:
        return RunConfig.from_dict(payload["config"]).validate()
    except (ConfigError, KeyError, TypeError) as e:
        raise CheckpointError(f"The checkpoint's configuration is not valid in this version ({e}); it cannot be "
                              f"opened.") from None


def start_from_payload(page: str, payload: Mapping[str, Any]):
    """A run that continues from a checkpoint payload (weights, optimiser state, history, step), paused at its
    step, remembered as this session's run of `page`. CheckpointError / DataError propagate with a sentence."""
    from ganae.trainer import Trainer

    cfg = payload_config(payload)
    if page not in RUN_KEYS or not lessons.fits(page, cfg):
        raise CheckpointError(f"A {cfg.model.family} on {cfg.data.name} cannot be opened in the "
                              f"{lessons.PAGES.get(page, page)} page.")
    trainer = Trainer.from_payload(payload, device=cfg.train.device)   # CheckpointError: a sentence
    _pause_previous(page)
    runner = runtime.create_run(RUN_KEYS[page], trainer)
    _adopt(page, runner)
    return runner


__all__ = ["params_of", "config_of", "query_string", "page_url", "link", "config_from_url", "url_fingerprint",
           "problem_sentence", "is_upload", "check_server_paths", "opened_link", "report_problem", "follow",
           "leave_run", "student_caption", "sync_url", "copy_link", "watch_link", "share_links", "advanced",
           "set_advanced", "carry", "page_file", "open_page",
           "session_runs", "start_run", "payload_config", "start_from_payload"]
