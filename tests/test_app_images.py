"""The Autoencoder Lab, Image GAN and Latent Explorer pages in Streamlit's AppTest (no browser).

A page's script runs in this process, so the runs it starts live in the same registry as the test: the tests
read the runner by id and free their runs at the end. AppTest does not fire `run_every`; calling `.run()` again
draws the next frame. Images drawn with st.image get a media URL derived from their bytes, so a changed URL
means changed pixels.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from app_charts import chart_specs
from dashboard import runtime

PAGES = Path(__file__).resolve().parents[1] / "dashboard" / "views"
TIMEOUT = 60
_created: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def _free_runs():
    yield
    reg = runtime.registry()
    for rid in _created:
        reg.remove(rid)


def page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def images(at: AppTest, startswith: str) -> list[str]:
    """URLs of the st.image elements whose caption starts with `startswith`."""
    return [url for el in at.image for url, cap in zip(el.value, el.captions) if cap.startswith(startswith)]


def captions(at: AppTest) -> list[str]:
    return [c for el in at.image for c in el.captions]


def charts(at: AppTest) -> list[dict]:
    return [spec for _, spec in chart_specs(at)]


def remember(at: AppTest, key: str) -> str:
    rid = at.session_state[f"{key}:run"]
    _created.append(rid)
    return rid


def frames_until(at: AppTest, cond, timeout: float = 15.0, pause: float = 0.4) -> bool:
    """Draw frames (as run_every would) until cond(at) holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(pause)
        at.run()
        if cond(at):
            return True
    return False


# ---- Autoencoder Lab ------------------------------------------------------------------------------------------
def test_ae_lab_reconstructions_sit_beside_inputs_and_change_while_training():
    at = ok(page("ae_lab.py").run())
    assert at.title[0].value == "Autoencoder Lab"
    assert at.latex, "the reconstruction loss is explained with a formula"
    assert images(at, "The fixed test batch: press Train")                 # the inputs before any run
    at.radio(key="ae:model.arch").set_value("mlp")
    at.button(key="ae:play").click()
    ok(at.run())
    rid = remember(at, "ae_lab")
    first = images(at, "The fixed test batch, input | reconstruction")
    assert first, captions(at)
    assert frames_until(at, lambda a: images(a, "The fixed test batch, input | reconstruction") not in ([], first))
    ok(at)
    runner = runtime.registry().get(rid)
    assert runner.status().step > 0
    spec = charts(at)
    titles = [c["layout"].get("title", {}).get("text", "") for c in spec]
    assert any("Reconstruction error" in t for t in titles)
    assert any("Codes of the test set" in t for t in titles)
    err = next(c for c in spec if "Reconstruction error" in c["layout"].get("title", {}).get("text", ""))
    assert {t["name"] for t in err["data"]} >= {"train batches", "test set"}
    at.button(key="ae:pause").click()
    ok(at.run())
    assert runner.wait_for(lambda s: s.state == "paused", timeout=5)


def test_ae_lab_vae_shows_kl_per_dimension_and_the_dae_its_noisy_inputs():
    at = ok(page("ae_lab.py").run())
    at.radio(key="ae:model.arch").set_value("mlp")
    at.radio(key="ae:variant").set_value("bvae")
    ok(at.run())
    assert at.select_slider(key="ae:model.beta").value == 4.0
    at.button(key="ae:step").click()                        # build the run and train 10 steps, synchronously
    ok(at.run())
    rid = remember(at, "ae_lab")
    assert runtime.registry().get(rid).cfg.model.beta == 4.0
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert any(t.startswith("KL per latent dimension · active units") for t in titles), titles
    assert any(t.startswith("ELBO terms") for t in titles)
    assert images(at, "Decodes of random codes")              # samples of the prior
    assert any("ELBO" in m.value or "evidence lower bound" in m.value for m in at.markdown)

    at.radio(key="ae:variant").set_value("dae")
    ok(at.run())
    assert any("press **Reset**" in i.value for i in at.info)
    at.button(key="ae:reset").click()
    ok(at.run())
    at.button(key="ae:step").click()
    ok(at.run())
    assert images(at, "The fixed test batch, clean | noisy | reconstructed"), captions(at)
    assert runtime.registry().get(rid).cfg.model.family == "dae"


def test_ae_lab_notes_posterior_collapse_under_a_heavy_beta():
    at = ok(page("ae_lab.py").run())
    at.radio(key="ae:model.arch").set_value("mlp")
    at.radio(key="ae:variant").set_value("bvae")
    ok(at.run())
    at.select_slider(key="ae:model.beta").set_value(32.0)
    at.button(key="ae:step").click()
    ok(at.run())
    rid = remember(at, "ae_lab")
    runtime.registry().get(rid).step(400, owner=at.session_state[runtime.OWNER_KEY])        # synchronous: the KL of every dimension is priced out
    ok(at.run())
    assert any(w.value.startswith("Posterior collapse") for w in at.warning), [w.value for w in at.warning]
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert any(t.endswith("active units 0 of 8") for t in titles), titles


def test_ae_lab_says_where_to_put_mnist_when_it_is_missing():
    from dashboard.image_controls import mnist_missing
    if mnist_missing("mnist") is None:
        pytest.skip("MNIST files are present on this machine")
    at = ok(page("ae_lab.py").run())
    at.selectbox(key="ae:data.name").set_value("mnist")
    ok(at.run())
    text = " ".join(i.value for i in at.info)
    assert "MNIST is not on this machine" in text and "train-images-idx3-ubyte" in text


# ---- Image GAN ------------------------------------------------------------------------------------------------
def test_image_gan_grid_evolves_and_the_scrubber_shows_earlier_grids():
    at = ok(page("image_gan.py").run())
    assert at.title[0].value == "Image GAN" and at.latex
    at.radio(key="ig:model.arch").set_value("mlp")
    at.button(key="ig:play").click()
    ok(at.run())
    rid = remember(at, "image_gan")
    assert frames_until(at, lambda a: len(images(a, "Samples of the fixed noise")) == 1
                        and len(a.get("slider")) > 0 and any(s.key == "ig_scrub" for s in a.slider))
    live = images(at, "Samples of the fixed noise")
    assert frames_until(at, lambda a: images(a, "Samples of the fixed noise") != live)
    side = " ".join(m.value for m in at.sidebar.markdown) + " ".join(c.value for c in at.sidebar.caption)
    assert f"This run** `{rid}`" in side and "Training slots: 1 of" in side     # the sidebar follows the run
    at.button(key="ig:pause").click()
    ok(at.run())
    runner = runtime.registry().get(rid)
    assert runner.wait_for(lambda s: s.state == "paused", timeout=5)
    at.slider(key="ig_scrub").set_value(0)
    ok(at.run())
    cap = [c for c in captions(at) if c.startswith("Samples of the fixed noise")][0]
    assert "(live: step" in cap and "step 0 " in cap                # the first grid, not the live one
    titles = [c["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert any(t.startswith("Losses") for t in titles) and any(t.startswith("Quality") for t in titles)


def test_image_gan_ac_gan_draws_one_row_per_class():
    at = ok(page("image_gan.py").run())
    at.radio(key="ig:model.arch").set_value("mlp")
    at.checkbox(key="ig:tricks.ac").check()
    ok(at.run())
    at.button(key="ig:step").click()
    ok(at.run())
    rid = remember(at, "image_gan")
    cfg = runtime.registry().get(rid).cfg
    assert cfg.tricks.ac and cfg.train.n_fixed == 80                 # 8 samples for each of the 10 digits
    assert images(at, "Samples of the fixed noise, one row per class (AC-GAN)")


# ---- Latent Explorer ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from ganae.config import RunConfig
    from ganae.trainer import Trainer
    folder = tmp_path_factory.mktemp("ckpt")
    base = {"data.name": "digits", "model.arch": "mlp", "model.g_hidden": 64, "model.d_hidden": 64,
            "train.batch_size": 64, "train.device": "cpu", "optim.g_lr": 2e-3}
    ae = Trainer(RunConfig().with_updates(**base, **{"model.family": "ae", "model.latent_dim": 4}))
    ae.step(150)
    ae.save(folder / "ae-digits.pt")
    ring = Trainer(RunConfig().with_updates(**{"train.device": "cpu", "data.n": 1000, "train.batch_size": 64}))
    ring.step(30)
    ring.save(folder / "gan-ring8.pt")
    return folder


def test_latent_interpolation_endpoints_decode_to_the_chosen_inputs_reconstructions(checkpoints, monkeypatch):
    from dashboard import latent_ops
    from ganae.trainer import Trainer
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(checkpoints))
    at = ok(page("latent.py").run())
    src = at.selectbox(key="lx_source")
    assert any("ae-digits.pt · autoencoder on digits · step 150" in src.format_func(o) for o in src.options)
    src.set_value("ckpt:" + str(checkpoints / "ae-digits.pt"))
    ok(at.run())
    assert at.radio(key="lx_int_mode1").value == "two test inputs"
    at.number_input(key="lx_int_a").set_value(3)
    at.number_input(key="lx_int_b").set_value(10)
    ok(at.run())
    res = at.session_state["lx_result"]
    t = Trainer.load(checkpoints / "ae-digits.pt", device="cpu")
    rec = latent_ops.reconstruct(t, t.data.x_test[[3, 10]])
    for method in ("lerp", "slerp"):
        d = res["decoded"][method]
        assert d.shape[0] == 9
        np.testing.assert_allclose(d[0], rec[0], atol=1e-4)
        np.testing.assert_allclose(d[-1], rec[1], atol=1e-4)
        assert not np.allclose(d[4], rec[0], atol=1e-2)                # the middle is somewhere else
    np.testing.assert_allclose(res["ends"][0], t.data.x_test[3].numpy())  # the inputs drawn at the ends
    assert any("lerp" in c or "A and B" in c for c in captions(at))

    # the latent map: moving a slider decodes that code by hand
    ok(at.run())
    z0 = np.asarray(at.session_state["lx_z"]).copy()
    at.slider(key="lx_dim0").set_value(1.5)
    ok(at.run())
    z = np.asarray(at.session_state["lx_z"])
    assert z[0] == pytest.approx(1.5) and np.allclose(z[1:], z0[1:], atol=0.006)
    assert any(c.startswith("Decoded: the sliders") for c in captions(at))
    np.testing.assert_allclose(at.session_state["lx_decoded"],
                               latent_ops.decode(t, z[None].astype(np.float32))[0], atol=1e-4)
    assert at.session_state["lx_traversal"]["decoded"].shape[0] == 4 * 9     # 4 dims x 9 values


def test_latent_explorer_reads_a_live_run_and_draws_2d_paths(checkpoints, monkeypatch):
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(checkpoints))
    lab = ok(page("ae_lab.py").run())
    lab.radio(key="ae:model.arch").set_value("mlp")
    lab.button(key="ae:step").click()
    ok(lab.run())
    rid = remember(lab, "ae_lab")
    at = ok(page("latent.py", run=rid).run())
    src = at.selectbox(key="lx_source")
    assert src.value == f"run:{rid}"                                        # the run named in the link
    assert f"run {rid}" in src.format_func(src.value)
    res = at.session_state["lx_result"]
    assert res["mode"] == "two test inputs" and res["decoded"]["slerp"].shape == (9, 1, 8, 8)

    src.set_value("ckpt:" + str(checkpoints / "gan-ring8.pt"))
    ok(at.run())
    assert at.radio(key="lx_int_mode0").value == "two random codes"
    paths = [c for c in charts(at) if c["layout"].get("title", {}).get("text", "") == "The paths in data space"]
    assert paths and {t["name"] for t in paths[0]["data"]} == {"real", "lerp", "slerp"}
    assert at.session_state["lx_result"]["decoded"]["lerp"].shape == (9, 2)


def test_latent_explorer_without_models_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GANAE_CHECKPOINT_DIR", str(tmp_path))
    at = ok(page("latent.py").run())
    assert any("No model to explore yet" in i.value for i in at.info)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
