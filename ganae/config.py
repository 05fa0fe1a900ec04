"""Typed, frozen configuration of one run.

A run is `RunConfig(data, model, objective, tricks, optim, train)`. Every knob has a default that trains
something sensible on the bundled 2D ring of Gaussians, and a comment saying what it does. `validate()` refuses
bad values and impossible combinations with a `ConfigError` naming the field, the value and what is allowed.
Configs round-trip through plain dicts / JSON (`to_dict`, `from_dict`) for URLs and checkpoints.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import textwrap
import typing
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any


@functools.lru_cache(maxsize=None)
def get_type_hints(cls: type) -> dict[str, Any]:
    """typing.get_type_hints, once per class: it re-evaluates every annotation string on each call, and pages build
    configs on every rerun (read-only use: callers never change the dict)."""
    return typing.get_type_hints(cls)


class ConfigError(ValueError):
    """A configuration value a user can fix; the message names the field and the fix."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


class ConfigWarning(UserWarning):
    """A combination that runs but is unusual (e.g. label smoothing with a Wasserstein critic)."""


POINT_DATASETS = ("ring8", "grid25", "spiral", "moons", "circles", "line", "csv")
IMAGE_DATASETS = ("digits", "sprites", "mnist", "fashion_mnist", "folder")
DATASETS = POINT_DATASETS + IMAGE_DATASETS
FAMILIES = ("gan", "ae", "dae", "vae", "aae", "vaegan")
GAN_FAMILIES = ("gan", "aae", "vaegan")
ARCHS = ("auto", "mlp", "conv")
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "gelu", "sigmoid")
NOISES = ("normal", "uniform")
LOSSES = ("minimax", "ns", "ls", "wgan", "hinge")
SPECTRAL = ("none", "d", "dg")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LR_DECAYS = ("none", "linear", "exp")
G_INITS = ("random", "ae")
RECON_LOSSES = ("mse", "bce")


@dataclass(frozen=True)
class DataConfig:
    name: str = "ring8"          # one of DATASETS
    n: int = 10_000              # samples drawn for synthetic 2D data (train + test)
    std: float = 0.0             # 2D mode std; 0 = the dataset's published default
    radius: float = 0.0          # ring radius / scale of 2D data; 0 = default
    noise: float = 0.0           # extra jitter for moons / circles / spiral; 0 = default
    root: str = "data"           # folder holding MNIST / Fashion-MNIST (torchvision layout)
    download: bool = False       # allow torchvision to download MNIST when missing
    path: str = ""               # own data: a CSV of 2D points or a folder / zip of images
    image_size: int = 28         # own image folders are resized to this square size
    limit: int = 0               # keep at most this many training examples (0 = all)
    test_fraction: float = 0.2   # share held out as the deterministic test split
    seed: int = 0                # seed of the dataset itself (synthetic data, split)


@dataclass(frozen=True)
class ModelConfig:
    family: str = "gan"          # gan | ae | dae | vae | aae | vaegan
    arch: str = "auto"           # mlp | conv | auto (mlp for points, conv for images)
    latent_dim: int = 2          # noise dimension of G / code size of an autoencoder
    noise: str = "normal"        # prior of z: normal N(0, I) or uniform U(-1, 1)
    g_layers: int = 2            # hidden layers of the generator / decoder (MLP)
    g_hidden: int = 64           # neurons per hidden layer of the generator / decoder
    d_layers: int = 2            # hidden layers of the discriminator / encoder (MLP)
    d_hidden: int = 64           # neurons per hidden layer of the discriminator / encoder
    channels: int = 32           # base width of conv nets
    activation: str = "relu"     # hidden activation of G / decoder (D uses it too unless leaky)
    d_activation: str = "leaky_relu"  # hidden activation of D / encoder
    beta: float = 1.0            # VAE: weight of the KL term (beta-VAE when > 1)
    denoise_std: float = 0.3     # DAE: std of the Gaussian noise added to inputs
    dropout: float = 0.0         # AE: dropout on hidden layers of encoder and decoder
    sparsity: float = 0.0        # AE: weight of the L1 penalty on the code
    recon_loss: str = "mse"      # autoencoders: mse or bce (bce on pixels mapped to [0, 1])
    gan_init: str = "random"     # GAN: random init, or "ae" = G initialised from a pretrained decoder
    pretrain_steps: int = 500    # GAN with gan_init="ae": autoencoder steps before adversarial training
    recon_weight: float = 1.0    # VAE-GAN / AAE: weight of the reconstruction term


@dataclass(frozen=True)
class ObjectiveConfig:
    loss: str = "ns"             # minimax | ns (non-saturating) | ls (least squares) | wgan | hinge
    gp: float = 0.0              # WGAN-GP lambda (0 = off); alpha drawn per example, target norm 1
    r1: float = 0.0              # R1 gamma: zero-centred penalty on real data (0 = off)
    r2: float = 0.0              # R2 gamma: zero-centred penalty on generated data (0 = off)
    clip: float = 0.0            # weight clipping of D to [-c, c] (0 = off), as in WGAN
    spectral_norm: str = "none"  # none | d | dg: spectral normalisation of D (and G)


@dataclass(frozen=True)
class TricksConfig:
    label_smoothing: float = 0.0     # one-sided: real target 1 - s for D (0 = off)
    instance_noise: float = 0.0      # sigma of Gaussian noise on D's inputs at step 0 (0 = off)
    instance_noise_steps: int = 1000  # sigma anneals linearly to 0 over this many steps
    ema: float = 0.0                 # generator EMA beta (0 = off), e.g. 0.999; used for samples / metrics
    minibatch_std: bool = False      # append the minibatch standard deviation as a feature in D
    feature_matching: bool = False   # G matches mean D features of real data instead of fooling D
    d_dropout: float = 0.0           # dropout in D's hidden layers
    ac: bool = False                 # AC-GAN: class-conditional G, D also predicts the class
    ac_weight: float = 1.0           # weight of the auxiliary classification terms


@dataclass(frozen=True)
class OptimConfig:
    g_opt: str = "adam"          # optimiser of G / the autoencoder: adam | sgd | rmsprop
    d_opt: str = "adam"          # optimiser of D
    g_lr: float = 1e-3           # learning rate of G / the autoencoder
    d_lr: float = 1e-3           # learning rate of D (TTUR: differ from g_lr)
    beta1: float = 0.5           # Adam beta1 (or SGD momentum / RMSprop alpha is separate)
    beta2: float = 0.999         # Adam beta2
    momentum: float = 0.0        # SGD / RMSprop momentum
    weight_decay: float = 0.0    # L2 weight decay (for autoencoders a regulariser from the lectures)
    n_critic: int = 1            # D steps per iteration
    n_gen: int = 1               # G steps per iteration
    lr_decay: str = "none"       # none | linear (to 0 at train.steps) | exp
    lr_gamma: float = 0.999      # per-step factor for exp decay


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 128        # examples per step
    seed: int = 0                # seed of weights, noise and batches
    device: str = "auto"         # auto (cuda > mps > cpu) | cpu | cuda | cuda:N | mps
    steps: int = 2000            # planned length of the run (lr decay, CLI, 'finished' state)
    threads: int = 0             # torch intra-op threads for this run (0 = leave as is)
    history: int = 2000          # points kept per curve; older ones are decimated
    n_fixed: int = 64            # fixed noise vectors / test examples shown as samples


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ---- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RunConfig":
        """Build from a (possibly partial) nested dict; unknown sections or keys are a ConfigError."""
        d = d or {}
        if not isinstance(d, dict):
            raise ConfigError("config", f"expected a mapping of sections, got {type(d).__name__}")
        parts = {}
        hints = get_type_hints(cls)
        for key, value in d.items():
            if key not in hints:
                raise ConfigError(key, f"unknown section; allowed: {', '.join(hints)}")
            if not isinstance(value, dict):
                raise ConfigError(key, f"expected a mapping of fields, got {type(value).__name__}")
            parts[key] = _section_from_dict(hints[key], key, value)
        return cls(**parts)

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ConfigError("config", f"not valid JSON ({e.msg} at line {e.lineno})") from None

    def with_updates(self, **dotted: Any) -> "RunConfig":
        """`cfg.with_updates(**{"objective.loss": "wgan", "train.seed": 3})` -> a new config."""
        sections: dict[str, dict[str, Any]] = {}
        for key, value in dotted.items():
            sec, _, name = key.partition(".")
            sections.setdefault(sec, {})[name] = value
        d = self.to_dict()
        for sec, upd in sections.items():
            if sec not in d:
                raise ConfigError(sec, f"unknown section; allowed: {', '.join(d)}")
            d[sec].update(upd)
        return RunConfig.from_dict(d)

    def set(self, dotted: str, text: str) -> "RunConfig":
        """Apply one `section.field=value` given as text (CLI flags, URL parameters)."""
        sec, _, name = dotted.partition(".")
        hints = get_type_hints(RunConfig)
        if sec not in hints or not name:
            raise ConfigError(dotted, "expected section.field, e.g. objective.loss")
        ftypes = get_type_hints(hints[sec])
        if name not in ftypes:
            raise ConfigError(dotted, f"unknown field; {sec} has: {', '.join(ftypes)}")
        return self.with_updates(**{dotted: _parse_text(dotted, text, ftypes[name])})

    def to_query(self) -> dict[str, str]:
        """The fields that differ from the defaults as URL parameters: {"objective.loss": "wgan", ...}."""
        default, mine = RunConfig().to_dict(), self.to_dict()
        return {f"{sec}.{k}": _to_text(v) for sec in mine for k, v in mine[sec].items() if default[sec][k] != v}

    @classmethod
    def from_query(cls, params: dict[str, str], base: "RunConfig | None" = None) -> "RunConfig":
        """Inverse of `to_query` over `base` (default: the defaults). Keys without a dot are not config fields
        (e.g. the run id) and are ignored; an unknown section.field is a ConfigError."""
        cfg = base or cls()
        for key, value in params.items():
            if "." in key:
                cfg = cfg.set(key, value)
        return cfg

    # ---- derived ----------------------------------------------------------------------------
    @property
    def is_points(self) -> bool:
        return self.data.name in POINT_DATASETS

    @property
    def is_gan(self) -> bool:
        return self.model.family in GAN_FAMILIES

    @property
    def arch(self) -> str:
        if self.model.arch != "auto":
            return self.model.arch
        return "mlp" if self.is_points else "conv"

    # ---- validation -------------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Raise ConfigError for values a run cannot use; warn (ConfigWarning) about odd but legal ones."""
        d, m, o, t, p, tr = self.data, self.model, self.objective, self.tricks, self.optim, self.train
        _choice("data.name", d.name, DATASETS)
        _int_range("data.n", d.n, 100, 1_000_000)
        _float_range("data.std", d.std, 0.0, 10.0)
        _float_range("data.radius", d.radius, 0.0, 100.0)
        _float_range("data.noise", d.noise, 0.0, 10.0)
        _int_range("data.image_size", d.image_size, 8, 64)
        _int_range("data.limit", d.limit, 0, 10_000_000)
        _float_range("data.test_fraction", d.test_fraction, 0.05, 0.5)
        _int_range("data.seed", d.seed, 0, 2**31 - 1)
        if d.name in ("csv", "folder") and not d.path:
            raise ConfigError("data.path", f"dataset '{d.name}' needs a path to your file or folder")

        _choice("model.family", m.family, FAMILIES)
        _choice("model.arch", m.arch, ARCHS)
        _int_range("model.latent_dim", m.latent_dim, 1, 512)
        _choice("model.noise", m.noise, NOISES)
        for name in ("g_layers", "d_layers"):
            _int_range(f"model.{name}", getattr(m, name), 0, 8)
        for name in ("g_hidden", "d_hidden"):
            _int_range(f"model.{name}", getattr(m, name), 1, 2048)
        _int_range("model.channels", m.channels, 4, 256)
        _choice("model.activation", m.activation, ACTIVATIONS)
        _choice("model.d_activation", m.d_activation, ACTIVATIONS)
        _float_range("model.beta", m.beta, 0.0, 1000.0)
        _float_range("model.denoise_std", m.denoise_std, 0.0, 5.0)
        _float_range("model.dropout", m.dropout, 0.0, 0.9)
        _float_range("model.sparsity", m.sparsity, 0.0, 100.0)
        _choice("model.recon_loss", m.recon_loss, RECON_LOSSES)
        _choice("model.gan_init", m.gan_init, G_INITS)
        _int_range("model.pretrain_steps", m.pretrain_steps, 1, 100_000)
        _float_range("model.recon_weight", m.recon_weight, 0.0, 1000.0)
        if m.recon_loss == "bce" and self.is_points:
            raise ConfigError("model.recon_loss", "bce needs images in [0, 1]; use mse for 2D points")
        if m.gan_init == "ae" and m.family != "gan":
            raise ConfigError("model.gan_init", f"'ae' initialises a GAN generator; family is '{m.family}'")
        if self.arch == "conv" and self.is_points:
            raise ConfigError("model.arch", "conv nets need images; 2D points use mlp (or auto)")

        _choice("objective.loss", o.loss, LOSSES)
        for name in ("gp", "r1", "r2"):
            _float_range(f"objective.{name}", getattr(o, name), 0.0, 1e4)
        _float_range("objective.clip", o.clip, 0.0, 10.0)
        _choice("objective.spectral_norm", o.spectral_norm, SPECTRAL)
        if o.gp and (o.r1 or o.r2):
            raise ConfigError("objective.gp", "choose one gradient penalty: WGAN-GP (gp) or zero-centred (r1/r2)")
        if o.clip and o.gp:
            raise ConfigError("objective.clip", "weight clipping and WGAN-GP are alternatives; set one to 0")

        _float_range("tricks.label_smoothing", t.label_smoothing, 0.0, 0.5)
        _float_range("tricks.instance_noise", t.instance_noise, 0.0, 10.0)
        _int_range("tricks.instance_noise_steps", t.instance_noise_steps, 1, 10_000_000)
        _float_range("tricks.ema", t.ema, 0.0, 0.99999)
        if 0 < t.ema < 0.5:
            raise ConfigError("tricks.ema", f"{t.ema} averages almost nothing; use 0 (off) or 0.9 to 0.9999")
        _float_range("tricks.d_dropout", t.d_dropout, 0.0, 0.9)
        _float_range("tricks.ac_weight", t.ac_weight, 0.0, 100.0)
        if t.ac and self.is_points:
            raise ConfigError("tricks.ac", "AC-GAN needs class labels; use an image dataset (digits, sprites, mnist)")
        if t.ac and m.family != "gan":
            raise ConfigError("tricks.ac", f"the auxiliary classifier belongs to family 'gan', not '{m.family}'")
        if t.label_smoothing and o.loss in ("wgan", "hinge"):
            raise ConfigError("tricks.label_smoothing",
                              f"'{o.loss}' has no labels to smooth; use minimax, ns or ls")
        if t.feature_matching and m.family != "gan":
            raise ConfigError("tricks.feature_matching", "feature matching is a generator loss of family 'gan'")

        _choice("optim.g_opt", p.g_opt, OPTIMIZERS)
        _choice("optim.d_opt", p.d_opt, OPTIMIZERS)
        for name in ("g_lr", "d_lr"):
            v = getattr(p, name)
            _float_range(f"optim.{name}", v, 0.0, 10.0)
            if v <= 0:
                raise ConfigError(f"optim.{name}", f"{v} must be > 0 (typical: 1e-4 to 1e-2)")
        _float_range("optim.beta1", p.beta1, 0.0, 0.9999)
        _float_range("optim.beta2", p.beta2, 0.0, 0.99999)
        _float_range("optim.momentum", p.momentum, 0.0, 0.999)
        _float_range("optim.weight_decay", p.weight_decay, 0.0, 1.0)
        _int_range("optim.n_critic", p.n_critic, 1, 100)
        _int_range("optim.n_gen", p.n_gen, 1, 100)
        _choice("optim.lr_decay", p.lr_decay, LR_DECAYS)
        _float_range("optim.lr_gamma", p.lr_gamma, 0.5, 1.0)

        _int_range("train.batch_size", tr.batch_size, 2, 4096)
        _int_range("train.seed", tr.seed, 0, 2**31 - 1)
        if not (tr.device in ("auto", "cpu", "cuda", "mps") or tr.device.startswith("cuda:")):
            raise ConfigError("train.device", f"{shown(tr.device)} is not a device; allowed: auto, cpu, cuda, cuda:N, mps")
        _int_range("train.steps", tr.steps, 1, 10_000_000)
        _int_range("train.threads", tr.threads, 0, 256)
        _int_range("train.history", tr.history, 16, 100_000)
        _int_range("train.n_fixed", tr.n_fixed, 1, 1024)

        if o.clip and o.loss != "wgan":
            warnings.warn(f"weight clipping is usually paired with the wgan loss, not '{o.loss}'", ConfigWarning,
                          stacklevel=2)
        if o.loss == "wgan" and not (o.gp or o.clip or o.spectral_norm != "none" or o.r1):
            warnings.warn("a Wasserstein critic needs a Lipschitz constraint (gp, clip or spectral norm)",
                          ConfigWarning, stacklevel=2)
        if not self.is_gan and (o.gp or o.r1 or o.r2 or o.clip or t.ema or t.minibatch_std):
            warnings.warn(f"GAN penalties and tricks do nothing for family '{m.family}'", ConfigWarning, stacklevel=2)
        return self


# ---- helpers ---------------------------------------------------------------------------------
def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, f"{shown(value)} is not one of: {', '.join(allowed)}")


def shorten(text: str, width: int) -> str:
    """`text` cut to at most `width` characters at a word boundary, with "…" when something was cut."""
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut.strip() else cut
    return head.rstrip(" ,;:") + "…"


def shown(value: Any, width: int = 120) -> str:
    """`value` as an error message quotes it: its repr, shortened; a huge whole number by its size (a 5,000-digit
    int has no repr in Python 3.11, and a sentence should not print a pasted page back)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    return shorten(repr(value), width)


def _int_range(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(name, f"{shown(value)} is not a whole number (allowed {lo} to {hi})")
    if not lo <= value <= hi:
        raise ConfigError(name, f"{shown(value)} is out of range (allowed {lo} to {hi})")


def _float_range(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"{shown(value)} is not a number (allowed {lo:g} to {hi:g})")
    if (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:   # (an int: no float())
        raise ConfigError(name, f"{shown(value)} is out of range (allowed {lo:g} to {hi:g})")


def _coerce(name: str, value: Any, typ: Any) -> Any:
    """Accept JSON-ish values: ints for floats, strings of numbers; refuse the rest with a sentence."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(name, f"{shown(value)} is not true/false")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(name, f"{shown(value)} is not a whole number")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(name, f"{shown(value)} is not a whole number")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(name, f"{shown(value)} is not a number")
        if isinstance(value, (int, float)):
            try:
                return float(value)
            except OverflowError:           # an int beyond float range, e.g. 10**400 from JSON
                raise ConfigError(name, f"{shown(value)} is too large to be a number (at most about 1.8e308)") from None
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ConfigError(name, f"{shown(value)} is not a number")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(name, f"{shown(value)} is not text")
    return value


def _section_from_dict(cls: type, section: str, d: dict[str, Any]) -> Any:
    types = get_type_hints(cls)
    kwargs = {}
    for key, value in d.items():
        if key not in types:
            raise ConfigError(f"{section}.{key}", f"unknown field; {section} has: {', '.join(types)}")
        kwargs[key] = _coerce(f"{section}.{key}", value, types[key])
    return cls(**kwargs)


def _to_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _parse_text(name: str, text: str, typ: Any) -> Any:
    return _coerce(name, text, typ)


def section_fields(section: str) -> list[str]:
    """Field names of one section, in order (for forms and docs)."""
    return [f.name for f in fields(get_type_hints(RunConfig)[section])]


__all__ = ["RunConfig", "DataConfig", "ModelConfig", "ObjectiveConfig", "TricksConfig", "OptimConfig",
           "TrainConfig", "ConfigError", "ConfigWarning", "replace", "section_fields"]


def validation_notes(cfg: RunConfig) -> list[str]:
    """Validate `cfg` (ConfigError when it cannot run) and return its ConfigWarnings as sentences (unusual but
    allowed combinations), for a page to show beside the form."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigWarning)
        cfg.validate()
    return [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)]
