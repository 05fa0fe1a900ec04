"""Guided lessons for class: each a sequence of steps, each step a page to open with a setup, what to do there
and what to notice.

Content only (no streamlit): the Lessons page walks these, and a test checks that every preset exists and
validates, every page exists, and every setup fits the page it opens.

    lesson = lessons.get("gan-2d")
    step = lesson.steps[0]
    step.config()          # the RunConfig the step opens its page with (None: the page keeps its own setup)

A step opens its page in one of four ways:
- `preset` (+ `updates`): a fresh run of that config, not yet training ("press Train" is the student's part);
- `pretrained` (Latent Explorer): the shipped checkpoint made from `preset` when checkpoints/ has one, else the
  student's latest run (the one the previous step trained);
- `state`: settings of a page that has no RunConfig (the Dirac-GAN's methods and update mode);
- nothing: the page as the student left it (e.g. the run of the previous step, or the Latent Explorer on it).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from . import presets
from .config import ConfigError, RunConfig

# page name -> what the page trains or shows; the dashboard maps names to files (dashboard/views/<name>.py)
PAGES = {
    "playground": "GAN Playground",
    "ae_lab": "Autoencoder Lab",
    "image_gan": "Image GAN",
    "latent": "Latent Explorer",
    "arena": "Stabilization Arena",
    "dirac": "Dirac-GAN",
    "checkpoints": "Checkpoints",
}
RUN_PAGES = ("playground", "ae_lab", "image_gan", "latent")      # pages that open a run from a config
AE_FAMILIES = ("ae", "dae", "vae", "aae", "vaegan")
DIRAC_METHODS = ("gan", "ns-gan", "wgan", "wgan-gp", "instance-noise", "gp-zero", "gp-zero-critical", "consensus")
DIRAC_MODES = ("simultaneous", "alternating", "continuous")


def fits(page: str, cfg: RunConfig) -> bool:
    """Whether `page` can show a run of `cfg` (the same rule each page applies to a run in its URL)."""
    if page == "playground":
        return cfg.is_points and cfg.model.family == "gan"
    if page == "image_gan":
        return not cfg.is_points and cfg.model.family == "gan"
    if page == "ae_lab":
        return not cfg.is_points and cfg.model.family in AE_FAMILIES
    if page == "latent":
        return True
    return False


def page_for(cfg: RunConfig) -> str:
    """The training page of a config (2D GAN, image GAN, autoencoder); the Latent Explorer for the rest."""
    for page in ("playground", "image_gan", "ae_lab"):
        if fits(page, cfg):
            return page
    return "latent"


@dataclass(frozen=True)
class Step:
    title: str
    do: str                                   # what to do on the page (markdown)
    notice: str                               # what to notice (markdown)
    page: str                                 # a key of PAGES
    preset: str | None = None                 # a name in ganae.presets
    updates: Mapping[str, Any] = field(default_factory=dict)   # dotted fields changed on top of the preset
    pretrained: bool = False                  # Latent Explorer: the shipped checkpoint made from `preset`, if any
                                              # (else the page opens on the student's latest run)
    state: Mapping[str, Any] = field(default_factory=dict)     # Dirac-GAN: {"methods": [...], "mode": ...}

    def config(self) -> RunConfig | None:
        """The step's setup as a validated config, or None when the step keeps the page's own setup."""
        if self.preset is None and not self.updates:
            return None
        base = presets.get(self.preset) if self.preset else RunConfig()
        return base.with_updates(**dict(self.updates)).validate()

    @property
    def page_title(self) -> str:
        return PAGES.get(self.page, self.page)


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    goal: str                                 # one sentence: what the student understands afterwards
    minutes: int                              # rough length in class
    steps: tuple[Step, ...]


def _dirac(*methods: str, mode: str = "simultaneous") -> dict[str, Any]:
    return {"methods": list(methods), "mode": mode}


LESSONS: dict[str, Lesson] = {lesson.name: lesson for lesson in [
    Lesson(
        "gan-2d", "What a GAN does (in 2D)",
        "A generator G learns to turn noise into samples that a discriminator D cannot tell from real data; "
        "D's verdict is what moves G.",
        15,
        (
            Step("Watch a GAN learn a ring",
                 "Press **Train** and watch for a minute. Leave all the layers on the plane switched on.",
                 "The purple points (G's samples) start as a blob and spread out onto the 8 green clusters. The "
                 "background is D's opinion of each spot: it marks where real data is *more likely* than G's "
                 "samples, and G's points flow towards the spots D calls real. The **quality** chart counts the "
                 "modes covered.",
                 "playground", preset="ring8-recommended"),
            Step("One player at a time",
                 "**Pause**, then press **Step D** five times and look at the heatmap; then press **Step G** five "
                 "times and look at the points.",
                 "Stepping D changes only the background (D sharpens its verdict); the points do not move. Stepping "
                 "G moves the points along the arrows (−∇ₓ of G's loss) and leaves the heatmap alone. Training "
                 "alternates the two, and each player's target moves whenever the other one learns.",
                 "playground"),
            Step("What G does with its noise",
                 "This run draws its 2-dimensional noise z uniformly from the square [-1, 1]², so the **G manifold** "
                 "layer shows G's whole input space: a square grid, mapped by G into the plane. Press **Train** and "
                 "watch the grid lines.",
                 "G is one continuous map from the noise square to the data plane. To cover 8 separate clusters it "
                 "has to stretch the grid thin between them: the few points that land on these bridges are the "
                 "'in-between' samples every GAN on separated modes produces.",
                 "playground", preset="ring8-recommended", updates={"model.noise": "uniform"}),
        )),
    Lesson(
        "mode-collapse", "Mode collapse",
        "A plain GAN often covers only some of the data's modes, or hops from mode to mode: G finds a few "
        "samples that fool D instead of learning the whole distribution.",
        15,
        (
            Step("The original GAN on a ring",
                 "Press **Train** and let it run to the end (3,000 steps); watch the points between frames.",
                 "The samples bunch onto a few clusters and jump to others when D catches up: the **modes** "
                 "curve stays below 8, and the losses keep oscillating instead of settling.",
                 "playground", preset="ring8-vanilla"),
            Step("More modes, more missed",
                 "Press **Train** on the 5×5 grid and compare the mode count at the end with the ring's.",
                 "With 25 modes the vanilla GAN misses many of them; the **high-quality share** (samples near a "
                 "mode) can look fine while whole regions are empty. Quality and coverage are different numbers.",
                 "playground", preset="grid25-vanilla"),
            Step("Collapse on images",
                 "Press **Train** and watch the grid of 64 samples (the same noise vectors at every step).",
                 "Some digits appear much more often than others and some never; the **classes** curve of the "
                 "quality chart counts the digits the metric classifier recognises confidently. Different noise vectors giving "
                 "the same image is collapse you can see.",
                 "image_gan", preset="digits-vanilla"),
        )),
    Lesson(
        "tricks", "Fixing it with tricks",
        "Penalties on D's gradient, other losses and an average of G's weights make GAN training far more "
        "stable; comparing them fairly needs the same seeds and several runs.",
        20,
        (
            Step("One switch: the R1 penalty",
                 "This is the vanilla GAN of the mode-collapse lesson with one change: **R1 γ = 0.1** (a penalty on "
                 "D's gradient at real data). Press **Train**.",
                 "D's heatmap becomes smooth instead of a sharp wall, the points spread over all clusters, and the "
                 "loss curves calm down. The change is in the *Objective and tricks* box on the left.",
                 "playground", preset="ring8-vanilla", updates={"objective.r1": 0.1}),
            Step("A Wasserstein critic",
                 "Press **Train**: WGAN-GP with 5 critic steps per generator step.",
                 "The critic's score is not a probability: the heatmap shows a slope rather than real/fake "
                 "regions, and its loss estimates how far apart the two distributions are — it falls as G "
                 "improves, a curve you can actually read.",
                 "playground", preset="ring8-wgan-gp"),
            Step("A fair comparison",
                 "Press **Start**: the vanilla GAN and the recommended recipe train side by side with the same "
                 "seeds. Then set **Seeds per variant (K)** to 3 and press **Start** again.",
                 "One run can be lucky; the table's mean ± sd over seeds is what a claim like 'this trick helps' "
                 "needs. Try other comparisons under **Reproduce** (e.g. *generator ema*, then **Load**).",
                 "arena"),
        )),
    Lesson(
        "ae-latent", "Autoencoders and the latent space",
        "An autoencoder squeezes each input through a small code and rebuilds it; the codes form a latent "
        "space whose layout we can look at and walk through.",
        20,
        (
            Step("Squeeze and rebuild",
                 "Press **Train** and watch the right column for a minute.",
                 "Each test digit sits beside its reconstruction: first blurry averages, then sharper digits. "
                 "The error curve falls fast, then slowly. With 8 numbers per image the network must keep what "
                 "matters (the shape) and drop the rest.",
                 "ae_lab", preset="digits-ae"),
            Step("A 2-dimensional code",
                 "This run has a code of only **2** numbers. Press **Train**.",
                 "The code map *is* the latent space now: each test digit is a dot, coloured by its class. Similar "
                 "digits end up near each other although the autoencoder never saw a label. Reconstructions are "
                 "blurrier: 2 numbers cannot say everything about an image.",
                 "ae_lab", preset="digits-ae", updates={"model.latent_dim": 2}),
            Step("Walk through the latent space",
                 "Open the **Interpolation** tab: pick two test digits and look at the path between their codes; "
                 "then click around the **Latent map**.",
                 "Halfway between two codes the decoder often draws something that is no digit at all: a plain "
                 "autoencoder leaves holes between its clusters. (This uses the shipped digits autoencoder if "
                 "checkpoints/ has one, else your run from the previous step.)",
                 "latent", preset="digits-ae", pretrained=True),
        )),
    Lesson(
        "vae-beta", "VAEs and β",
        "A variational autoencoder encodes a distribution and pulls it towards N(0, I); its weight β trades "
        "sharp reconstructions against a smooth, sample-able latent space.",
        20,
        (
            Step("A VAE on digits",
                 "Press **Train**; look at the **ELBO** chart, the **KL per dimension** bars and the decoded "
                 "random codes.",
                 "The loss has two parts, reconstruction and KL. Random codes z ~ N(0, I) decode to digit-like "
                 "images — unlike the plain autoencoder's — because the KL term makes N(0, I) a map of the data.",
                 "ae_lab", preset="digits-vae"),
            Step("Turn β up",
                 "The same VAE with **β = 8**. Press **Train** and compare with the previous step.",
                 "Reconstructions get blurrier and several KL bars drop to zero (grey): those code dimensions "
                 "switched off, the encoder ignores them (posterior collapse of those units). A heavier pull "
                 "towards the prior buys a smoother latent space with less information in it.",
                 "ae_lab", preset="digits-vae", updates={"model.beta": 8.0}),
            Step("β-VAE on sprites",
                 "Sprites are made from five known factors (shape, scale, rotation, x, y). Press **Train**.",
                 "With β = 4 the active code dimensions tend to follow single factors. Watch how many dimensions "
                 "stay active out of 6.",
                 "ae_lab", preset="sprites-vae"),
            Step("One dimension at a time",
                 "Open the **Traversal** tab: each row changes one code dimension and keeps the others fixed.",
                 "In a good β-VAE a row moves the sprite, or scales it, or turns it — one factor per row. (This "
                 "uses the shipped sprites β-VAE if checkpoints/ has one, else your run from the previous step.)",
                 "latent", preset="sprites-vae", pretrained=True),
        )),
    Lesson(
        "dirac", "Why GAN training oscillates",
        "Even the smallest GAN does not converge with plain gradient steps: the game's vector field rotates "
        "around the equilibrium. Damping terms (penalties, instance noise) make it converge.",
        15,
        (
            Step("The smallest GAN",
                 "Look at the **gan** panel: one generator parameter θ, one discriminator parameter ψ, and the "
                 "path plain gradient steps take from (1, 1).",
                 "The arrows circle the equilibrium (0, 0) and the path spirals *outwards*: with simultaneous "
                 "steps of any size the distance never shrinks. Nothing is wrong with the code — it is the game.",
                 "dirac", state=_dirac("gan")),
            Step("Other losses, same story",
                 "Compare **gan**, **ns-gan**, **wgan** and **wgan-gp**; switch **Updates** to *alternating*.",
                 "None of them converges: the non-saturating loss has the same rotation at the equilibrium, the "
                 "clipped WGAN critic bounces off its clip, WGAN-GP aims at a non-zero slope. Alternating steps "
                 "circle rather than spiral out — still no convergence.",
                 "dirac", state=_dirac("gan", "ns-gan", "wgan", "wgan-gp")),
            Step("Damping makes it converge",
                 "Compare **gp-zero**, **gp-zero-critical**, **instance-noise** and **consensus**.",
                 "Each adds a term that pulls the discriminator towards ψ = 0, turning the circles into a spiral "
                 "inwards: the eigenvalues in the table get a negative real part. The critical penalty converges "
                 "fastest.",
                 "dirac", state=_dirac("gp-zero", "gp-zero-critical", "instance-noise", "consensus")),
            Step("The same fix in a real GAN",
                 "Back to the ring: the non-saturating loss with the R1 penalty (zero-centred, like *gp-zero*). "
                 "Press **Train** and watch the loss curves.",
                 "The losses settle instead of swinging, and the oscillation reading under the loss chart says so. "
                 "Set R1 γ to 0 and press **Reset** then **Train** to see the swings come back.",
                 "playground", preset="ring8-recommended"),
        )),
    Lesson(
        "ae-in-gan", "Autoencoders inside GANs",
        "Autoencoders and GANs combine: a discriminator can shape an autoencoder's codes (AAE) or sharpen a VAE's "
        "images (VAE-GAN), and a pretrained decoder can give a GAN's generator a head start.",
        20,
        (
            Step("An adversarial autoencoder",
                 "Press **Train**: an autoencoder with a 2-d code and a discriminator *in code space*.",
                 "Instead of a KL term, D_z tells samples of N(0, I) from the encoder's codes and the encoder learns "
                 "to fool it: the code map fills a round Gaussian blob, so random codes decode to digits.",
                 "ae_lab", preset="digits-aae"),
            Step("VAE-GAN",
                 "Press **Train**: a VAE whose decoder is also a GAN generator against an image discriminator.",
                 "Compare the reconstructions with the VAE's of the β lesson: the adversarial term punishes blur, "
                 "which the squared error alone tolerates.",
                 "ae_lab", preset="digits-vaegan"),
            Step("A generator that starts as a decoder",
                 "Press **Train**: first an autoencoder trains for 500 steps, then its decoder becomes G and the GAN "
                 "game starts.",
                 "The first sample grids already look like blurry digits instead of noise; the GAN then sharpens "
                 "them. A head start, not a different game: D still has to be beaten.",
                 "image_gan", preset="digits-gan-pretrained"),
            Step("Does the head start pay off?",
                 "Under **Reproduce** choose *ae pretrained generator*, press **Load**, then **Start**.",
                 "The two variants train with the same seeds: look at the quality columns at the end, not only at "
                 "the first frames.",
                 "arena"),
        )),
]}


def pretrained_entry(step: Step, entries: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The checkpoint (a `checkpoint.list_checkpoints` entry) made from the step's preset: the one named after the
    preset, else one whose config equals the preset's apart from the training section (steps, seed, ...)."""
    if not step.pretrained or step.preset is None:
        return None
    want = step.config()
    good = [e for e in entries if "error" not in e and e.get("kind", "run") != "classifier"]
    for e in good:
        if e.get("name") == step.preset:
            return e
    for e in good:
        try:
            cfg = RunConfig.from_dict(e.get("config"))
        except (ConfigError, TypeError, ValueError):
            continue
        if replace(cfg, train=want.train) == want:
            return e
    return None


def names() -> list[str]:
    return list(LESSONS)


def get(name: str) -> Lesson:
    if name not in LESSONS:
        raise KeyError(f"'{name}' is not a lesson; choose one of: {', '.join(LESSONS)}")
    return LESSONS[name]


__all__ = ["Lesson", "Step", "LESSONS", "PAGES", "RUN_PAGES", "fits", "page_for", "pretrained_entry", "names",
           "get"]
