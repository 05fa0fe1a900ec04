"""Property-based: whatever a user types into the config, the answer is a valid run or a ConfigError that names
a real field -- never another exception."""
from __future__ import annotations

import warnings
from dataclasses import fields
from typing import get_type_hints

from hypothesis import HealthCheck, given, settings, strategies as st

from ganae.config import ConfigError, RunConfig

SECTIONS = {sec: [f.name for f in fields(t)] for sec, t in get_type_hints(RunConfig).items()}
ALL_FIELDS = {f"{s}.{f}" for s, fs in SECTIONS.items() for f in fs} | set(SECTIONS)

# what an attacker puts into a field: numbers past float range (10**400 has no float), a 5,000-digit number (as an
# int it has no repr in Python 3.11: tests/test_config.py covers it), HTML / markdown that a page might render,
# server paths
HUGE = st.one_of(st.sampled_from([10**309, -10**400, 2**1024, 10**4000]), st.integers(10**308, 10**1000))
HUGE_TEXT = st.integers(309, 6000).map(lambda n: "9" * n)
PAYLOADS = st.sampled_from(["[x](https://evil.example)", "![](https://evil.example/t.png)", "<script>alert(1)</script>",
                            '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>', "`x`", ":red[x]", "$x$",
                            "/usr/share", "../../etc/passwd", "\u0000", "x" * 3000, "9" * 5000])
values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), HUGE, PAYLOADS,
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                   st.sampled_from(["ns", "wgan", "digits", "ring8", "conv", "mlp", "1e-3", "true", "-1", "nan",
                                    "inf", "cuda", "auto", "vae", "aae"]),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                       max_size=2))
field_names = st.sampled_from([(s, f) for s, fs in SECTIONS.items() for f in fs] + [("optim", "lr"),
                                                                                    ("bogus", "x")])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(field_names, values), max_size=6))
def test_from_dict_then_validate_never_raises_anything_but_config_error(items):
    d: dict = {}
    for (sec, f), v in items:
        d.setdefault(sec, {})[f] = v
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            RunConfig.from_dict(d).validate()
    except ConfigError as e:
        given_names = {f"{s}.{f}" for s, fs in d.items() for f in fs} | set(d)
        assert e.field in ALL_FIELDS | given_names, e.field
        assert str(e).startswith(e.field + ": ") and len(str(e)) > len(e.field) + 5


@settings(max_examples=300, deadline=None)
@given(field_names, st.one_of(st.text(max_size=15), PAYLOADS, HUGE_TEXT))
def test_set_from_text_never_raises_anything_but_config_error(name, text):
    sec, f = name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            RunConfig().set(f"{sec}.{f}", text).validate()
    except ConfigError as e:
        assert e.field in ALL_FIELDS or e.field == f"{sec}.{f}"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([(s, f) for s, fs in SECTIONS.items() for f in fs]), st.one_of(HUGE, PAYLOADS))
def test_a_refusal_quotes_the_value_in_at_most_a_line(name, value):
    """The sentence names the field and stays short, whatever was pasted into it."""
    sec, f = name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            RunConfig.from_dict({sec: {f: value}}).validate()
    except ConfigError as e:
        assert e.field in ALL_FIELDS
        assert len(str(e)) < 300, str(e)
