"""Home: what each page teaches, and one click to a GAN training on the ring of 8 Gaussians."""
from __future__ import annotations

import streamlit as st

PAGES = [  # (page file, title with icon, what it teaches)
    ("playground.py", ":material/scatter_plot: GAN Playground",
     "Watch a generator chase a 2D distribution live: D's opinion of the plane as a heatmap, G's manifold, the "
     "gradient arrows that move every sample, and the two losses fighting. Change the loss, add a penalty or "
     "a trick and see training calm down, or step D and G by hand."),
    ("ae_lab.py", ":material/compress: Autoencoder Lab",
     "Autoencoders, denoising and variational: reconstructions beside inputs, the latent space, and what the "
     "KL term does to it."),
    ("image_gan.py", ":material/grid_view: Image GAN",
     "DCGAN-style training on digits and sprites, with fixed-noise sample grids over time."),
    ("latent.py", ":material/explore: Latent Explorer",
     "Interpolate, traverse and click a 2D map of a trained model's latent space."),
    ("arena.py", ":material/compare: Stabilization Arena",
     "Stabilisation tricks side by side, live, with seeds: which one really helps?"),
    ("dirac.py", ":material/cyclone: Dirac-GAN",
     "The two-parameter game of Mescheder et al. (2018): why plain GAN training circles instead of converging."),
    ("checkpoints.py", ":material/save: Checkpoints",
     "Shipped pre-trained models and your own saves, to load, compare and share."),
    ("lessons.py", ":material/school: Lessons", "Guided tours through the pages for a lecture or a lab session."),
]


def run() -> None:
    st.title("ganae studio")
    st.markdown("Learn **GANs** and **autoencoders** by training them in the browser and watching what happens. "
                "Every run is seeded: the same settings give the same curves.")
    if st.button("Start the default run", icon=":material/play_arrow:", type="primary", key="home_start",
                 help="A GAN on 8 Gaussians arranged in a ring, training in the Playground"):
        from dashboard import startup
        startup.wait()                             # (a fresh server may still be loading torch: see startup.py)
        from dashboard import runtime, settings    # (torch: Home itself is drawn without it, at once)
        try:
            runner = runtime.create_run("playground", settings.default_config(), in_url=False)
            runner.play(owner=runtime.owner_token())
        except Exception as e:   # a sentence, never a traceback
            runtime.show_error(e)
        else:
            st.switch_page("views/playground.py", query_params={runtime.QUERY_KEY: runner.run_id})
    st.caption("Opens the GAN Playground with a generator learning a ring of 8 Gaussians (non-saturating loss, "
               "Adam). Press Pause there at any time.")
    st.divider()
    cols = st.columns(2)
    for i, (fname, title, text) in enumerate(PAGES):
        with cols[i % 2].container(border=True):
            st.page_link(f"views/{fname}", label=f"**{title.split(' ', 1)[1]}**", icon=title.split(" ")[0])
            st.write(text)

run()
