"""Property-based: whatever a student types into a page, the page gets a valid config or a sentence naming the
field -- never an exception.

Three input surfaces, driven with hypothesis through the pure functions the pages call:
- the Playground's form (`settings.pending_config`, widget values in the session state),
- the image pages' forms (`image_controls.Form.pending`, the updates their widgets produce),
- a page's URL (`links.config_of`, the `section.field=value` parameters of a shared link);
then a few AppTest runs that put every number widget of a page at its limits (what a browser can send).
Values: numbers (NaN, ±inf, negative, huge), strings, None, booleans, lists, dicts.
"""
from __future__ import annotations

import ast
import math
import types
import warnings
from pathlib import Path

import pytest
import streamlit
import torch
from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st
from streamlit.testing.v1 import AppTest

from dashboard import image_controls, links, runtime, settings
from ganae import config as C
from ganae.config import ConfigError, RunConfig
from test_quote import unescaped_openers

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ROOT / "dashboard" / "views"
APP = str(ROOT / "dashboard" / "app.py")
FUZZ = hsettings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])

# what an attacker types or links: numbers past float range, HTML / markdown that a page might render, server paths
HUGE = st.sampled_from([10**309, -10**400, 2**1024, 10**4000])
PAYLOADS = st.sampled_from(["[x](https://evil.example)", "![](https://evil.example/t.png)", "<script>alert(1)</script>",
                            '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>', ":red[x] `y` $z$",
                            "www.evil.example", "9" * 400])
PATHS = st.sampled_from(["/usr/share", "/etc/passwd", "/", "data", "../../etc", "/nonexistent/folder",
                         str(settings.UPLOAD_DIR), str(settings.UPLOAD_DIR / ".." / "x.zip")])
odd_values = st.one_of(
    HUGE, PAYLOADS, PATHS,
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.text(max_size=10), st.sampled_from(["", "nan", "inf", "-1", "1e-3", "1e400", "0x10", "ns", "digits", "conv",
                                           "../../etc/passwd", "ring8", "true"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
CHOICES = {"data.name": C.DATASETS, "model.family": C.FAMILIES, "model.arch": C.ARCHS,
           "model.activation": C.ACTIVATIONS, "model.d_activation": C.ACTIVATIONS, "model.noise": C.NOISES,
           "objective.loss": C.LOSSES, "objective.spectral_norm": C.SPECTRAL, "optim.g_opt": C.OPTIMIZERS,
           "optim.d_opt": C.OPTIMIZERS}


def plausible(field: str, datasets: tuple[str, ...] = C.DATASETS):
    """Values of the field's type in a range a widget offers, so that many examples are accepted configs."""
    sec, name = field.split(".")
    default = getattr(getattr(RunConfig(), sec), name)
    if field == "data.name":
        return st.sampled_from(datasets)
    if field in CHOICES:
        return st.sampled_from(CHOICES[field])
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(1, max(8, 2 * default))
    if isinstance(default, float):
        return st.floats(0.0, max(1.0, 2 * default))
    return st.just(default)


def changes_of(fields: tuple[str, ...], max_size: int, datasets: tuple[str, ...]):
    """{field: value} for 1..max_size of `fields`, each value odd or plausible (even odds); `datasets`: the
    page's dataset choices."""
    def value(f: str):
        return st.booleans().flatmap(lambda odd: odd_values if odd else plausible(f, datasets))
    return st.lists(st.sampled_from(fields), min_size=1, max_size=max_size, unique=True).flatmap(
        lambda fs: st.fixed_dictionaries({f: value(f) for f in fs}))


def fields_of(view: str) -> tuple[str, ...]:
    """The FIELDS tuple a page file declares (read from its source: importing a page would run it)."""
    tree = ast.parse((VIEWS / view).read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "FIELDS" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError(f"{view} declares no FIELDS")


CONFIG_FIELDS = {f"{sec}.{f}" for sec, fs in RunConfig().to_dict().items() for f in fs}
AE_FIELDS = tuple(f for f in fields_of("ae_lab.py") if f in CONFIG_FIELDS)
IG_FIELDS = tuple(f for f in fields_of("image_gan.py") if f in CONFIG_FIELDS)


def assert_valid(cfg: RunConfig) -> None:
    """A config a page may hand to a Runner: it validates and survives its own JSON (no NaN slipped in)."""
    event("accepted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg.validate()
    assert RunConfig.from_json(cfg.to_json()) == cfg


def assert_names_a_field(err: Exception | None, changed: set[str]) -> None:
    """A refusal is a ConfigError naming a real field: the changed one, or for a combination that cannot work
    (conv nets on 2D points, a CSV not uploaded yet) the field to change with it."""
    assert isinstance(err, ConfigError), f"{type(err).__name__}: {err} (not a ConfigError naming a field)"
    event("refused: the changed field" if err.field in changed else "refused: a combination")
    assert err.field in changed | CONFIG_FIELDS, f"{err.field!r} is not a config field (changed: {sorted(changed)})"
    assert str(err).startswith(err.field + ": ") and len(str(err)) > len(err.field) + 5


@pytest.fixture
def fake_session(monkeypatch):
    """A plain dict as st.session_state for the form modules (no Streamlit script needed)."""
    def install(module) -> dict:
        ss: dict = {}
        monkeypatch.setattr(module, "st", types.SimpleNamespace(session_state=ss, query_params={}))
        return ss
    return install


# ---- the Playground's form -----------------------------------------------------------------------------------------
@FUZZ
@given(changes_of(settings.FIELDS, 4, settings.PLAYGROUND_DATASETS))
def test_playground_form_gives_a_valid_config_or_names_the_field(fake_session, changes):
    ss = fake_session(settings)
    base = settings.default_config()
    for f in settings.FIELDS:                       # the widgets as init_state fills them ...
        sec, name = f.split(".")
        ss[settings.PREFIX + f] = getattr(getattr(base, sec), name)
    ss[settings.BASE_KEY] = base.to_json()
    for f, v in changes.items():                    # ... then the student's values
        ss[settings.PREFIX + f] = v
    cfg, err, notes = settings.pending_config()
    if cfg is not None:
        assert err is None
        assert_valid(cfg)
        assert all(isinstance(n, str) and n for n in notes)
    else:
        assert_names_a_field(err, set(changes))


# ---- the image pages' forms ------------------------------------------------------------------------------------------
IMAGE_BASES = {
    "ae": RunConfig().with_updates(**{"data.name": "digits", "model.family": "ae", "model.latent_dim": 8,
                                      "model.arch": "conv"}),
    "ig": RunConfig().with_updates(**{"data.name": "digits", "model.family": "gan", "model.arch": "conv",
                                      "model.latent_dim": 32}),
}


@FUZZ
@given(st.sampled_from(["ae", "ig"]), st.data())
def test_image_forms_give_a_valid_config_or_name_the_field(fake_session, prefix, data):
    fields = AE_FIELDS if prefix == "ae" else IG_FIELDS
    changes = data.draw(changes_of(fields, 3, image_controls.IMAGE_DATA))
    ss = fake_session(image_controls)
    ss[f"{prefix}:base"] = IMAGE_BASES[prefix].to_json()
    form = image_controls.Form(f"{prefix}:", lambda: IMAGE_BASES[prefix], fields)
    cfg, err, notes = form.pending(changes)
    if cfg is not None:
        assert err is None
        assert_valid(cfg)
    else:
        assert_names_a_field(err, set(changes))


def test_the_image_pages_declare_fields_to_fuzz():
    assert {"data.name", "model.latent_dim", "train.seed", "train.steps"} <= set(AE_FIELDS)
    assert {"data.name", "model.latent_dim", "optim.g_lr", "optim.n_critic"} <= set(IG_FIELDS)


# ---- a page's URL ----------------------------------------------------------------------------------------------------
url_keys = st.one_of(st.sampled_from(sorted(CONFIG_FIELDS)), st.sampled_from(["run", "advanced", "lesson", "step"]),
                     st.text(max_size=12), st.sampled_from(["optim.lr", "bogus.x", ".", "data.", ".name"]),
                     PAYLOADS.map(lambda p: f"model.{p}"), PAYLOADS)
# a link that names a server path for the data (a folder of images, a CSV of points)
path_links = st.tuples(st.sampled_from(["folder", "csv"]), PATHS).map(
    lambda t: {"data.name": t[0], "data.path": t[1], "model.family": "ae" if t[0] == "folder" else "gan"})
url_values = st.one_of(st.text(max_size=12), PAYLOADS, PATHS, HUGE.map(str),
                       st.sampled_from(["nan", "inf", "-inf", "1e400", "-5", "0", "true", "ns", "wgan", "digits", ""]),
                       st.lists(st.text(max_size=4), max_size=2))
# a link as the Share button writes it (a field, its value as text), then edited by hand
shared = st.sampled_from(sorted(CONFIG_FIELDS)).flatmap(
    lambda f: st.tuples(st.just(f), plausible(f).map(lambda v: str(v).lower() if isinstance(v, bool) else str(v))))
url_params = st.tuples(st.lists(shared, max_size=3), st.dictionaries(url_keys, url_values, max_size=2)).map(
    lambda t: {**dict(t[0]), **t[1]})


@FUZZ
@given(st.one_of(url_params, path_links))
def test_a_link_gives_a_valid_config_nothing_or_names_the_parameter(params):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # an unusual but valid combination warns: not a refusal
            cfg = links.config_of(params)
            if cfg is not None:
                links.check_server_paths(cfg)        # what a page does next with a link
    except ConfigError as e:
        event("refused")
        given_keys = {str(k) for k in params if "." in str(k)}
        assert e.field in given_keys | CONFIG_FIELDS | {k.split(".")[0] for k in given_keys}, e.field
        assert str(e).startswith(e.field + ": ")
        sentence = links.problem_sentence(e)         # what the page shows: user text quoted, a line at most
        assert not unescaped_openers(sentence.replace("**", "")), sentence
        assert len(sentence) < 700
        if e.field == "data.path" and "needs a path" not in str(e):     # any path a link names: one sentence
            assert sentence == links.problem_sentence(ConfigError("data.path", links.NOT_AN_UPLOAD))
        return
    if cfg is None:
        assert not any("." in str(k) for k in params)
    else:
        assert_valid(cfg)


# ---- widgets at their limits, in the real pages -----------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    streamlit.cache_resource.clear()


def _shown_problems(at: AppTest) -> list[str]:
    """Error boxes that do not name a field (a sentence naming the field is the expected answer to a bad value)."""
    named = [f"**{f}**" for f in CONFIG_FIELDS] + [f for f in CONFIG_FIELDS]
    return [e.value for e in at.error if not any(n in e.value for n in named)]


def _numbers_to(at: AppTest, end: str, prefix: str) -> int:
    widgets = [w for w in at.number_input if str(w.key or "").startswith(prefix)]
    for w in widgets:
        value = w.max if end == "max" else w.min
        if value is not None:
            w.set_value(value)
    at.run()
    return len(widgets)


@pytest.mark.parametrize("end", ["max", "min"])
def test_playground_number_widgets_at_their_limits(end):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/playground.py").run()
    assert _numbers_to(at, end, settings.PREFIX) >= 8
    assert not at.exception, [e.value for e in at.exception]
    assert not _shown_problems(at), _shown_problems(at)
    at.button(key="pg_step").click().run()          # one training step with all of them at the limit
    assert not at.exception, [e.value for e in at.exception]
    assert not _shown_problems(at), _shown_problems(at)
    rid = at.query_params.get("run")
    if rid:                                         # a run was built: it took the values, trained or diverged
        r = runtime.registry().get(rid[0] if isinstance(rid, list) else rid)
        assert r is not None and r.status().state in ("paused", "diverged") and r.status().step <= 1
        runtime.registry().remove(r.run_id)


@pytest.mark.parametrize("view,prefix", [("image_gan.py", "ig:"), ("ae_lab.py", "ae:")])
def test_image_page_number_widgets_at_their_limits(view, prefix):
    at = AppTest.from_file(str(VIEWS / view), default_timeout=60).run()
    assert not at.exception
    if at.radio(key=prefix + "model.arch").value != "mlp":
        at.radio(key=prefix + "model.arch").set_value("mlp").run()
    assert _numbers_to(at, "max", prefix) >= 2
    assert not at.exception, [e.value for e in at.exception]
    assert not _shown_problems(at), _shown_problems(at)


@pytest.mark.parametrize("text", ["../../../../etc", "/nonexistent/folder", "x" * 2000, "\t", "C:\\photos"])
def test_image_folder_path_nonsense_is_a_sentence(text):
    at = AppTest.from_file(str(VIEWS / "ae_lab.py"), default_timeout=60).run()
    at.selectbox(key="ae:data.name").set_value("folder").run()
    at.text_input(key="ae:folder_path").input(text).run()
    assert not at.exception
    at.button(key="ae:play").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.error, "a folder that cannot be read must be reported"
    assert all("Traceback" not in e.value for e in at.error)
    assert "ae_lab:run" not in at.session_state          # no run was made

