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

values = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
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
@given(field_names, st.text(max_size=15))
def test_set_from_text_never_raises_anything_but_config_error(name, text):
    sec, f = name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            RunConfig().set(f"{sec}.{f}", text).validate()
    except ConfigError as e:
        assert e.field in ALL_FIELDS or e.field == f"{sec}.{f}"
