"""AppTest of the Stabilization Arena and the Dirac-GAN pages (no browser): a two-variant comparison runs, both
curves grow, the table fills, the CSV export holds both variants; K seeds give mean ± sd over exactly K runs; the
Dirac page's verdicts match the paper."""
from __future__ import annotations

import base64
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_charts import chart_specs
from ganae import arena as arena_mod

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def _stop_arenas():
    yield
    arena_mod.stop_all()


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def status(at: AppTest) -> str:
    lines = [m.value for m in at.markdown if "ganae-arena-step" in m.value]
    return lines[0] if lines else ""


def run_until(at: AppTest, pred, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()                              # run_every is not fired by AppTest: rerun by hand
        if pred(at):
            return True
        time.sleep(0.3)
    return False


def chart(at: AppTest, key: str) -> dict:
    return next(spec for k, spec in chart_specs(at) if k == key)


def values(a) -> np.ndarray:
    if isinstance(a, dict) and "bdata" in a:
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=np.dtype(a["dtype"]))
    return np.asarray(a)


def the_arena(at: AppTest) -> arena_mod.ArenaRunner:
    arena_id = at.query_params["arena"]
    arena_id = arena_id[0] if isinstance(arena_id, list) else arena_id
    return next(a for a in arena_mod._LIVE if a.arena_id == arena_id)


def test_two_variant_comparison_runs_curves_grow_table_fills_csv_exports():
    at = open_page("arena")
    assert at.title[0].value == "Stabilization Arena"
    assert any(r"\bar m" in x.value for x in at.latex)              # the concept, with its formula
    at.select_slider(key="ar_steps").set_value(100).run()
    at.button(key="ar_start").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    slots = [c.value for c in at.sidebar.caption if c.value.startswith("Training slots")]
    assert len(slots) == 1                                            # drawn once, by the live frame
    if "training" in status(at):
        assert slots[0].startswith("Training slots: 1 of")            # ... after Start: the arena's slot is busy
    assert run_until(at, lambda a: "training" in status(a) or "finished" in status(a), 20)

    def panel_lengths(a) -> dict[str, int]:
        spec = chart(a, "ar_multiples")
        return {t["xaxis"]: len(values(t["x"])) for t in spec["data"] if t["name"] == "D loss"}

    assert run_until(at, lambda a: min(panel_lengths(a).values(), default=0) > 0, 30)
    first = panel_lengths(at)
    assert set(first) == {"x", "x2"}                                  # a panel per variant: base, recommended
    assert run_until(at, lambda a: "finished" in status(a), 90), status(at)
    last = panel_lengths(at)
    assert all(last[k] > first[k] for k in first) and set(last.values()) == {100}     # both curves grew
    assert 'data-step="100"' in status(at)

    table = at.table[0].value
    assert list(table.index) == ["base", "recommended"]
    assert {"modes", "HQ %", "KL", "JS", "osc. amplitude", "ms / step"} <= set(table.columns)
    assert (table["ms / step"] != "–").all() and (table["modes"] != "–").all()
    assert any("wins" in m.value for m in at.markdown)

    labels = [d.label for d in at.download_button]
    assert labels == ["Table (CSV)", "Histories (CSV)", "Losses (PNG)", "Samples (PNG)"]
    view = the_arena(at).view()                                        # what the CSV buttons serve when clicked
    rows = list(csv.DictReader(io.StringIO(view.table_csv())))
    assert [r["variant"] for r in rows] == ["base", "recommended"]
    hist = list(csv.DictReader(io.StringIO(view.histories_csv())))
    assert {h["variant"] for h in hist} == {"base", "recommended"} and max(int(h["step"]) for h in hist) == 100


def test_k_seeds_report_mean_and_sd_over_exactly_k_runs():
    at = open_page("arena")
    at.number_input(key="ar_seeds").set_value(2).run()
    at.select_slider(key="ar_steps").set_value(50).run()
    assert any("= **4 runs**" in c.value for c in at.caption)
    at.button(key="ar_start").click().run()
    assert run_until(at, lambda a: "finished" in status(a), 120), status(at)
    table = at.table[0].value
    assert (table["runs"] == "2").all()
    assert all("±" in c for c in table["KL"]) and all("±" in c for c in table["ms / step"])
    view = the_arena(at).view()
    for row in view.table:
        runs = view.runs_of(row["variant"])
        assert len(runs) == 2 and row["n"] == 2
        kl = np.array([r.metrics["kl"] for r in runs])
        assert row["kl"] == pytest.approx(kl.mean()) and row["kl_sd"] == pytest.approx(kl.std(ddof=1))
    assert any("Mean ± sd over K = 2 seeds" in c.value for c in at.caption)


def test_setup_load_named_comparison_add_and_remove_variants_and_limit():
    at = open_page("arena")
    at.selectbox(key="ar_pick").set_value("wgan-clip-vs-gp").run()
    at.button(key="ar_load").click().run()
    assert at.session_state["ar_preset"] == "ring8-wgan-clip"
    assert [v["name"] for v in at.session_state["ar_variants"]] == ["WGAN-GP"]
    at.number_input(key="ar_f:objective.r1").set_value(1.0)
    at.button(key="FormSubmitter:ar_add-Add variant").click().run()
    assert not at.exception
    names = [v["name"] for v in at.session_state["ar_variants"]]
    assert names == ["WGAN-GP", "R1 γ 1"]
    at.number_input(key="ar_seeds").set_value(4).run()                 # 3 variants × 4 seeds = 12 runs
    assert any("too many" in e.value for e in at.error)
    assert at.button(key="ar_start").disabled
    at.button(key="ar_rm_1").click().run()
    assert [v["name"] for v in at.session_state["ar_variants"]] == ["WGAN-GP"]
    assert not any("too many" in e.value for e in at.error) and not at.button(key="ar_start").disabled


def test_dirac_page_verdicts_match_the_paper():
    at = open_page("dirac")
    assert at.title[0].value == "Dirac-GAN"
    assert len(at.latex) >= 2 and any("Why unregularised" in e.label for e in at.expander)
    for mode in ("simultaneous", "alternating", "continuous"):
        at.radio(key="dg_mode").set_value(mode).run()
        table = at.table[0].value
        assert list(table.index) == ["gan", "ns-gan", "wgan", "wgan-gp", "instance-noise", "gp-zero",
                                     "gp-zero-critical", "consensus"]
        assert (table["paper agrees"] == "✓").all(), table
        assert (table["here"] == table["paper"]).all()
        assert any("8 of 8 agree" in m.value for m in at.markdown)
    assert table.loc["gan", "here"] == "oscillates"                     # continuous: the GAN circles
    at.radio(key="dg_mode").set_value("simultaneous").run()
    assert at.table[0].value.loc["gan", "here"] == "diverges"           # simultaneous steps spiral out
    panels = json.loads(next(e for e in at.get("plotly_chart")).proto.spec)
    assert sum(t.get("name") == "equilibrium" for t in panels["data"]) == 8
    at.select_slider(key="dg_h").set_value(1.0).run()                   # far from the paper's setting
    assert (at.table[0].value["paper agrees"] == "✗").any()
    assert any("lesson of its own" in c.value for c in at.caption)
    at.button(key="dg_paper").click().run()
    assert (at.table[0].value["paper agrees"] == "✓").all()


def open_dirac_link(query: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/dirac.py")
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_dirac_link_sets_up_the_page_and_the_url_follows_the_controls():
    at = open_dirac_link({"methods": "gan,consensus", "mode": "alternating", "h": "0.05", "steps": "2000",
                          "theta0": "1.5", "psi0": "-0.5", "dsteps": "3", "consensus:gamma": "0.4"})
    assert list(at.table[0].value.index) == ["gan", "consensus"]
    assert at.radio(key="dg_mode").value == "alternating"
    assert at.select_slider(key="dg_h").value == 0.05 and at.select_slider(key="dg_steps").value == 2000
    assert at.slider(key="dg_theta0").value == 1.5 and at.slider(key="dg_psi0").value == -0.5
    assert at.number_input(key="dg_dsteps").value == 3
    assert at.number_input(key="dg_p:consensus:gamma").value == 0.4
    at.select_slider(key="dg_h").set_value(0.2).run()                  # an edit is written back to the URL
    assert at.query_params["h"] == "0.2" and at.query_params["consensus:gamma"] == "0.4"
    share = next(c for c in at.code if "methods=gan%2Cconsensus" in c.value)
    assert "h=0.2" in share.value and "dsteps=3" in share.value


def test_dirac_bad_link_is_named_and_the_rest_applies():
    at = open_dirac_link({"mode": "sideways", "h": "0.05", "theta0": "9"})
    warning = " ".join(w.value for w in at.warning)
    assert "**mode**" in warning and "sideways" in warning and "**theta0**" in warning
    assert at.select_slider(key="dg_h").value == 0.05                  # the good parameter was used
    assert at.radio(key="dg_mode").value == "simultaneous" and at.slider(key="dg_theta0").value == 1.0


def test_dirac_link_text_is_quoted_in_its_sentence():
    """Before: ?mode=[x](https://evil.example) was a live link in the warning."""
    at = open_dirac_link({"mode": "[x](https://evil.example) ![](https://evil.example/t.png)", "h": "x" * 500})
    (warning,) = [w.value for w in at.warning]
    assert r"'\[x\](https:" in warning and "![](" not in warning and "](https://" not in warning
    assert "**h**" in warning and len(warning) < 600                     # the pasted value is cut


def test_dirac_student_view_hides_the_method_parameters_and_keeps_them():
    at = open_dirac_link({"mode": "alternating", "dsteps": "2", "advanced": "0"})
    assert not [n for n in at.number_input if n.key and n.key.startswith("dg_p:")]
    assert not [n for n in at.number_input if n.key == "dg_dsteps"]
    assert any("Student view" in c.value for c in at.caption)
    at.select_slider(key="dg_h").set_value(0.2).run()
    assert at.session_state["dg_dsteps"] == 2 and at.session_state["dg_p:consensus:gamma"] == 0.3
    assert (at.table[0].value["here"].notna()).all()


def test_arena_trains_on_your_own_points(tmp_path):
    """Own data on the Arena: an uploaded CSV of points replaces the preset's data for the base and every variant."""
    from dashboard import settings
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal((-1, 0), 0.05, (150, 2)), rng.normal((1, 0), 0.05, (150, 2))])
    path = settings.save_upload("two.csv", "\n".join(f"{x},{y}" for x, y in pts).encode())
    at = open_page("arena")
    at.session_state["ar_own"] = {"data.name": "csv", "data.path": path}
    at.select_slider(key="ar_steps").set_value(50).run()
    assert any("your own points" in c.value for c in at.caption)
    at.button(key="ar_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert run_until(at, lambda a: "finished" in status(a), timeout=120), status(at)
    assert len(at.table[0].value) >= 2                           # the base and its variant(s), compared
    link = next(c.value for c in at.code if "data.name=csv" in c.value)   # the link carries the own data
    assert "data.path=" in link and "two" not in link               # (by its content's name on this server)


def test_arena_own_data_of_the_wrong_kind_is_not_used():
    at = open_page("arena")
    at.session_state["ar_own"] = {"data.name": "folder", "data.path": "/nonexistent.zip"}
    at.run()                                     # a ring-8 base: images do not apply to it
    assert not any("your own" in c.value for c in at.caption)
    assert not any("data.name=folder" in c.value for c in at.code)


def test_arena_control_bar_follows_the_live_state_and_pause_stops_the_steps():
    """Issue #20.1: after Start the bar showed the state before the click (Pause / Resume / +50 greyed out, Start
    pressable) until some other widget reran the page."""
    at = open_page("arena")
    at.select_slider(key="ar_steps").set_value(10000).run()
    assert at.button(key="ar_pause").disabled and at.button(key="ar_resume").disabled
    at.button(key="ar_start").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert the_arena(at).view().active
    assert not at.button(key="ar_pause").disabled                       # the very run that pressed Start
    assert at.button(key="ar_resume").disabled and at.button(key="ar_start").disabled
    assert not at.button(key="ar_step").disabled

    at.button(key="ar_pause").click().run()
    arena = the_arena(at)
    assert arena.view().state == "paused" and "paused" in status(at)
    assert at.button(key="ar_pause").disabled and not at.button(key="ar_resume").disabled
    assert not at.button(key="ar_start").disabled                       # paused: Start may build it anew
    step = arena.view().step
    assert 0 <= step < 10000 and f'data-step="{step}"' in status(at)
    time.sleep(1.0)
    at.run()
    assert arena.view().step == step and f'data-step="{step}"' in status(at)     # the steps stopped

    at.button(key="ar_step").click().run()
    assert arena.view().step == step + 50 and f'data-step="{step + 50}"' in status(at)
    at.button(key="ar_resume").click().run()
    assert arena.view().active and not at.button(key="ar_pause").disabled
    assert run_until(at, lambda a: arena.view().step > step + 50, 30)
    at.select_slider(key="ar_steps").set_value(5000).run()              # another setup: Start builds it
    assert not at.button(key="ar_start").disabled
    assert any("You changed the setup" in i.value for i in at.info)


def test_dirac_gan_and_ns_gan_share_their_linearisation_and_the_page_says_why_they_end_apart():
    """Issue #20.4: gan and ns-gan showed the same eigenvalues (±0.5i) and update |λ| (1.0012), one labelled
    'diverges', the other 'oscillates', without a word on why."""
    from ganae import dirac
    np.testing.assert_allclose(dirac.eigenvalues("gan"), dirac.eigenvalues("ns-gan"), atol=1e-6)
    np.testing.assert_allclose(np.sort_complex(dirac.eigenvalues("gan")), [-0.5j, 0.5j], atol=1e-6)
    rad = np.abs(dirac.update_eigenvalues("gan", h=0.1))
    np.testing.assert_allclose(rad, np.abs(dirac.update_eigenvalues("ns-gan", h=0.1)), rtol=1e-9)
    assert rad.max() == pytest.approx(np.sqrt(1 + 0.1 ** 2 / 4))          # 1.0012 > 1 for both
    # away from (0, 0) they differ: the GAN's flow keeps the radius, the NS-GAN's pulls in by -t tanh(t/2)
    th, ps = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 9))
    np.testing.assert_allclose(dirac.radial_drift("gan", th, ps), 0.0, atol=1e-12)
    t = th * ps
    np.testing.assert_allclose(dirac.radial_drift("ns-gan", th, ps), -t * np.tanh(t / 2), atol=1e-12)
    # ... which ends one on an outward spiral and the other on a cycle of radius ≈ sqrt(2h)
    for h in (0.05, 0.1, 0.2):
        ns = dirac.trajectory("ns-gan", 1.0, 1.0, steps=int(400 / h), h=h)
        assert np.hypot(*ns[-len(ns) // 4:].T).mean() == pytest.approx(np.sqrt(2 * h), rel=0.03)
    gan = dirac.trajectory("gan", 1.0, 1.0, steps=1000, h=0.1)
    assert np.all(np.diff(np.hypot(*gan.T)) > 0) and dirac.verdict(gan) == "diverges"

    at = open_page("dirac")
    table = at.table[0].value
    assert table.loc["gan", "here"] == "diverges" and table.loc["ns-gan", "here"] == "oscillates"
    assert table.loc["gan", "update |λ|max"] == table.loc["ns-gan", "update |λ|max"] == "1.0012 > 1"
    note = [c.value for c in at.caption if "Same linearisation" in c.value]
    assert len(note) == 1 and "±0.5i" in note[0] and "1.0012" in note[0] and "-0.46 at the start" in note[0]
    assert "√(2h) = 0.45" in note[0]
    at.radio(key="dg_mode").set_value("alternating").run()          # both circle: nothing to explain
    assert not any("Same linearisation" in c.value for c in at.caption)
