"""Datasets as tensors already on the device: 2D points (N, 2) or images (N, C, H, W) in [-1, 1], with labels.

`load(DataConfig(...), device)` returns a `Dataset`; `names()` lists the registry and `describe(name)` says what
a dataset is without loading it. Everything is deterministic given `cfg.seed` (private numpy generators, never
the global RNG). Expensive loads (digits, sprites, MNIST) are cached in-process as compact CPU tensors, so a
dashboard reload is instant. Anything a user can get wrong raises `DataError` with a sentence saying the fix.
"""
from __future__ import annotations

import array
import contextlib
import csv
import functools
import gzip
import io
import itertools
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, NamedTuple

import numpy as np
import torch
from PIL import Image, ImageOps

from .config import POINT_DATASETS, DataConfig

# ---- limits on user data ------------------------------------------------------------------------
MAX_CSV_ROWS = 200_000               # points read from a CSV
MIN_CSV_ROWS = 10
MAX_CSV_BYTES = 16 * 2**20           # 200k rows of two numbers fit in a quarter of this; refused unread
MAX_CSV_LINE = 256                   # characters of one row: two numbers never need more
F32_MAX = float(np.finfo(np.float32).max)  # points live as float32: a larger value (1e308) would become inf
MAX_IMAGES = 20_000                  # images in a folder / zip
MAX_IMAGE_BYTES = 5 * 2**20          # one image file
MAX_IMAGE_PIXELS = 40_000_000        # decoded size of one image (guards against decompression bombs)
MAX_ZIP_BYTES = 200 * 2**20          # total uncompressed size of a zip's images
MAX_ZIP_ENTRIES = 100_000            # entries listed in a zip
MAX_IDX_BYTES = 100 * 2**20          # one decompressed MNIST file (the largest is 47 MB)
MAX_SPRITES = 20_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

# ---- sprites: 32x32 dSprites-like shapes ----------------------------------------------------------
SPRITE_SIZE = 32
SPRITE_SHAPES = ("square", "ellipse", "heart")
SPRITE_FACTORS = ("shape", "scale", "rotation", "x", "y")  # scale in [0.5, 1], rotation in [0, 2pi), x/y in [0, 1]
_SPRITE_RADIUS = 6.0                 # half side of the square at scale 1, in pixels
_SPRITE_MARGIN = _SPRITE_RADIUS * math.sqrt(2) + 1  # centres stay this far from the border: a 1-pixel empty frame
_HEART_K, _HEART_B = 1.15, 0.2935    # heart curve scaled to |u| < 1 and shifted so its centroid is the origin

_SPLIT_STREAM = 1                    # second seed word of the generator that shuffles the train/test split


class DataError(ValueError):
    """Data a user can fix (a missing file, a bad value, too much data); the message says how."""


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str                         # registry key, e.g. "ring8"
    kind: str                         # "points" or "images"
    x_train: torch.Tensor             # (N, 2) float32 points or (N, C, H, W) float32 images in [-1, 1]
    y_train: torch.Tensor             # (N,) int64: mode / class / shape id; -1 where there is no label
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int                    # 0 when there are no labels
    class_names: tuple[str, ...]
    description: str                  # one sentence for the UI
    modes: torch.Tensor | None = None  # (K, 2) mode centres of ring8 / grid25
    mode_std: float = 0.0             # std of each mode
    factors_train: torch.Tensor | None = None  # sprites: (N, 5) shape, scale, rotation, x, y
    factors_test: torch.Tensor | None = None
    factor_names: tuple[str, ...] = ()
    bounds: tuple[float, float, float, float] | None = None  # points: (xmin, xmax, ymin, ymax) with a margin

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (2,) or (C, H, W)."""
        return tuple(self.x_train.shape[1:])

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def batch(self, n: int, generator: torch.Generator, labels: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """`n` training examples drawn uniformly with replacement; returns (x, y), y None when `labels` is False
        (the same draw: a run that never reads labels does not pay for gathering them)."""
        idx = self.indices(n, generator)
        return self.x_train[idx], (self.y_train[idx] if labels else None)

    def indices(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """The indices `batch` draws (an ensemble draws each member's so, then gathers them all at once)."""
        return torch.randint(0, self.x_train.shape[0], (n,), generator=generator, device=self.device)


class _Entry(NamedTuple):
    loader: Callable[[DataConfig, torch.device], Dataset]
    about: str


# ---- public API -----------------------------------------------------------------------------------
def load(cfg: DataConfig, device: torch.device | str = "cpu") -> Dataset:
    """Build the dataset `cfg.name` on `device`; raises DataError with a fix when it cannot."""
    if cfg.name not in _REGISTRY:
        raise DataError(f"There is no dataset '{cfg.name}'; choose one of: {', '.join(names())}.")
    if not 0.0 < cfg.test_fraction < 1.0:
        raise DataError(f"The test fraction {cfg.test_fraction} must lie between 0 and 1 (e.g. 0.2).")
    return _REGISTRY[cfg.name].loader(cfg, torch.device(device))


_IMAGE_SIDES = {"digits": 8, "sprites": SPRITE_SIZE, "mnist": 28, "fashion_mnist": 28}   # folder: cfg.image_size


def example_shape(cfg: DataConfig) -> tuple[int, ...]:
    """The shape of one example of `cfg`'s dataset without loading it: (2,) for points, (1, H, W) for images."""
    if cfg.name not in _REGISTRY:
        raise DataError(f"There is no dataset '{cfg.name}'; choose one of: {', '.join(names())}.")
    if cfg.name in POINT_DATASETS:
        return (2,)
    side = _IMAGE_SIDES.get(cfg.name, cfg.image_size)
    return (1, side, side)


def names() -> list[str]:
    """Registry keys, points first."""
    return list(_REGISTRY)


def describe(name: str) -> str:
    """One sentence about a dataset, without loading it."""
    if name not in _REGISTRY:
        raise DataError(f"There is no dataset '{name}'; choose one of: {', '.join(names())}.")
    return _REGISTRY[name].about


# ---- shared helpers -------------------------------------------------------------------------------
def _split(n: int, cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, test) indices of n examples; the training part capped by cfg.limit."""
    if n < 2:
        raise DataError(f"Only {n} example(s) were found; at least 2 are needed to hold one out for testing.")
    perm = np.random.default_rng([cfg.seed, _SPLIT_STREAM]).permutation(n)
    n_test = min(max(1, round(n * cfg.test_fraction)), n - 1)
    train = perm[n_test:]
    if cfg.limit > 0:
        train = train[: cfg.limit]
    return train, perm[:n_test]


def _points(cfg: DataConfig, device: torch.device, x: np.ndarray, y: np.ndarray, n_classes: int,
            class_names: tuple[str, ...], about: str, modes: np.ndarray | None = None,
            mode_std: float = 0.0) -> Dataset:
    """Split 2D points and wrap them with heatmap bounds (the data's box plus 15% of its larger side)."""
    tr, te = _split(len(x), cfg)
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = max(0.15 * float((hi - lo).max()), 0.1)
    bounds = (float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad))
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    return Dataset(
        name=cfg.name, kind="points",
        x_train=xt[tr].to(device), y_train=yt[tr].to(device), x_test=xt[te].to(device), y_test=yt[te].to(device),
        n_classes=n_classes, class_names=class_names,
        description=f"{about} {len(tr):,} train / {len(te):,} test points.",
        modes=None if modes is None else torch.from_numpy(modes.astype(np.float32)).to(device),
        mode_std=mode_std, bounds=bounds,
    )


def _images(cfg: DataConfig, device: torch.device, x: torch.Tensor, y: torch.Tensor, tr: np.ndarray,
            te: np.ndarray, class_names: tuple[str, ...], about: str, scale: float = 255.0,
            factors: torch.Tensor | None = None) -> Dataset:
    """Index integer pixel tensors (0..scale) into train/test, map them to [-1, 1] float32 on the device."""
    def pixels(idx: np.ndarray) -> torch.Tensor:
        return (x[torch.from_numpy(idx)].to(device=device, dtype=torch.float32) * (2.0 / scale) - 1.0)

    def pick(t: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        return t[torch.from_numpy(idx)].to(device)

    return Dataset(
        name=cfg.name, kind="images", x_train=pixels(tr), y_train=pick(y, tr), x_test=pixels(te), y_test=pick(y, te),
        n_classes=len(class_names), class_names=class_names,
        description=f"{about} {len(tr):,} train / {len(te):,} test images of {x.shape[-2]}x{x.shape[-1]}.",
        factors_train=None if factors is None else pick(factors, tr),
        factors_test=None if factors is None else pick(factors, te),
        factor_names=SPRITE_FACTORS if factors is not None else (),
    )


def _no_labels(n: int) -> np.ndarray:
    return np.full(n, -1, dtype=np.int64)


# ---- 2D points ------------------------------------------------------------------------------------
def _ring8(cfg: DataConfig, device: torch.device) -> Dataset:
    r, std = cfg.radius or 1.0, cfg.std or 0.01
    angles = 2 * np.pi * np.arange(8) / 8
    modes = r * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    rng = np.random.default_rng(cfg.seed)
    y = rng.integers(0, 8, cfg.n)
    x = modes[y] + rng.normal(0.0, std, (cfg.n, 2))
    return _points(cfg, device, x, y, 8, tuple(f"mode {k}" for k in range(8)),
                   f"8 Gaussians (std {std:g}) on a circle of radius {r:g};", modes, std)


def _grid25(cfg: DataConfig, device: torch.device) -> Dataset:
    step, std = cfg.radius or 2.0, cfg.std or 0.05
    ticks = step * np.arange(-2, 3)
    modes = np.array([(a, b) for a in ticks for b in ticks], dtype=np.float64)
    rng = np.random.default_rng(cfg.seed)
    y = rng.integers(0, 25, cfg.n)
    x = modes[y] + rng.normal(0.0, std, (cfg.n, 2))
    return _points(cfg, device, x, y, 25, tuple(f"mode {k}" for k in range(25)),
                   f"25 Gaussians (std {std:g}) on a 5x5 grid with spacing {step:g};", modes, std)


def _spiral(cfg: DataConfig, device: torch.device) -> Dataset:
    r, noise = cfg.radius or 1.0, cfg.noise or 0.02
    rng = np.random.default_rng(cfg.seed)
    turns = 3 * np.pi
    theta = np.sqrt(rng.uniform(0.0, 1.0, cfg.n)) * turns  # uniform density along the arc
    x = (r * theta / turns)[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    x += rng.normal(0.0, noise, x.shape)
    return _points(cfg, device, x, _no_labels(cfg.n), 0, (),
                   f"an Archimedean spiral of 1.5 turns and radius {r:g} (noise {noise:g});")


# Moons and circles are made exactly as scikit-learn's make_moons / make_circles make them (the same values for a
# seed: tests/test_data.py compares), written out here so that serving a page never imports scikit-learn (1-2 s on
# a fresh server, and one more package to import before any page may run: dashboard/runtime.py PRELOAD).
def _two_arcs(outer: np.ndarray, inner: np.ndarray, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """outer / inner: (2, n_out) / (2, n_in) points; labels 0 / 1; shuffled, then Gaussian noise (sklearn's order)."""
    rng = np.random.RandomState(seed)                       # sklearn's check_random_state(int)
    x = np.vstack([np.append(outer[0], inner[0]), np.append(outer[1], inner[1])]).T
    y = np.hstack([np.zeros(outer.shape[1], dtype=np.intp), np.ones(inner.shape[1], dtype=np.intp)])
    order = np.arange(len(x))                               # sklearn.utils.shuffle
    rng.shuffle(order)
    x, y = x[order], y[order]
    return x + rng.normal(scale=noise, size=x.shape), y


def _moons(cfg: DataConfig, device: torch.device) -> Dataset:
    r, noise = cfg.radius or 1.0, cfg.noise or 0.05
    n_out = cfg.n // 2
    a, b = np.linspace(0, np.pi, n_out), np.linspace(0, np.pi, cfg.n - n_out)
    x, y = _two_arcs(np.stack([np.cos(a), np.sin(a)]), np.stack([1 - np.cos(b), 1 - np.sin(b) - 0.5]), noise,
                     cfg.seed)
    x = r * (x - np.array([0.5, 0.25]))
    return _points(cfg, device, x, y, 2, ("upper moon", "lower moon"),
                   f"two interleaving half circles of radius {r:g} (noise {noise:g});")


def _circles(cfg: DataConfig, device: torch.device) -> Dataset:
    r, noise = cfg.radius or 1.0, cfg.noise or 0.03
    n_out = cfg.n // 2
    a = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    b = np.linspace(0, 2 * np.pi, cfg.n - n_out, endpoint=False)
    x, y = _two_arcs(np.stack([np.cos(a), np.sin(a)]), np.stack([np.cos(b) * 0.5, np.sin(b) * 0.5]), noise,
                     cfg.seed)
    return _points(cfg, device, r * x, y, 2, ("outer circle", "inner circle"),
                   f"two concentric circles of radius {r:g} and {r / 2:g} (noise {noise:g});")


def _line(cfg: DataConfig, device: torch.device) -> Dataset:
    r, noise = cfg.radius or 1.0, cfg.noise or 0.01
    rng = np.random.default_rng(cfg.seed)
    t = rng.uniform(-r, r, cfg.n)
    x = np.stack([t, 0.5 * t], axis=1) + rng.normal(0.0, noise, (cfg.n, 2))
    return _points(cfg, device, x, _no_labels(cfg.n), 0, (),
                   f"a straight segment from ({-r:g}, {-r / 2:g}) to ({r:g}, {r / 2:g}) (noise {noise:g});")


def _csv(cfg: DataConfig, device: torch.device) -> Dataset:
    x = _read_csv_points(Path(cfg.path))
    return _points(cfg, device, x, _no_labels(len(x)), 0, (), f"your points from {Path(cfg.path).name};")


def _read_csv_points(path: Path) -> np.ndarray:
    """Two numeric columns, comma / semicolon / tab / space separated, optional header row.

    The read is bounded before anything is parsed: the file's size, each line's length, and the rows kept (the
    file is read a line at a time and refused at row MAX_CSV_ROWS + 1, so a file of millions of rows costs no
    more memory than one of the most allowed)."""
    if not path.is_file():
        raise DataError(f"The CSV file '{path}' does not exist; check data.path.")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"The CSV file '{path.name}' is larger than {MAX_CSV_BYTES // 2**20} MB; "
                        f"keep at most {MAX_CSV_ROWS:,} rows of two numbers.")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return _parse_csv_points(_csv_lines(f, path.name), path.name)
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"The CSV file '{path.name}' cannot be read as UTF-8 text ({e}); "
                        f"save it as plain CSV.") from None


def _csv_lines(f: io.TextIOBase, name: str):
    """(line number, text) of the non-empty lines of an open file, read one at a time, each refused past
    MAX_CSV_LINE characters (a single 40 MB line was read whole, then refused by the csv module's field limit)."""
    for lineno, line in enumerate(iter(lambda: f.readline(MAX_CSV_LINE + 2), ""), 1):
        text = line.rstrip("\r\n")
        if len(text) > MAX_CSV_LINE:
            raise DataError(f"Line {lineno} of '{name}' is longer than {MAX_CSV_LINE} characters; every row must be "
                            f"two numbers (x, y).")
        if text.strip():
            yield lineno, text


def _parse_csv_points(lines, name: str) -> np.ndarray:
    head = list(itertools.islice(lines, 20))
    try:
        dialect = csv.Sniffer().sniff("\n".join(t for _, t in head), delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    at = [0]                                      # the line the reader is on, for the sentences

    def texts():
        for lineno, text in itertools.chain(head, lines):
            at[0] = lineno
            yield text

    rows = array.array("d")                      # x, y, x, y, ...: 16 bytes a point
    try:
        for k, fields in enumerate(csv.reader(texts(), dialect)):
            fields = [f.strip() for f in fields if f.strip()]
            try:
                values = [float(f) for f in fields]
            except ValueError:
                if k == 0:
                    continue  # a header row
                raise DataError(f"Line {at[0]} of '{name}' holds a non-number ({', '.join(fields)[:80]}); every "
                                f"row after an optional header must be two numbers, with a dot as the decimal "
                                f"point.") from None
            if len(values) != 2:
                raise DataError(f"Line {at[0]} of '{name}' has {len(values)} column(s); "
                                f"the file needs exactly two numeric columns (x, y).")
            if not all(math.isfinite(v) and abs(v) <= F32_MAX for v in values):
                raise DataError(f"Line {at[0]} of '{name}' holds a missing, infinite or too large value (points "
                                f"are float32: at most ±{F32_MAX:.1e}); remove or fix that row.")
            rows.extend(values)
            if len(rows) > 2 * MAX_CSV_ROWS:
                raise DataError(f"'{name}' has more than {MAX_CSV_ROWS:,} rows; keep at most that many points.")
    except csv.Error as e:                        # a row the csv module refuses in the dialect it sniffed
        raise DataError(f"Line {at[0]} of '{name}' cannot be read as CSV ({e}); save it as plain CSV with "
                        f"two numbers a row.") from None
    if len(rows) < 2 * MIN_CSV_ROWS:
        raise DataError(f"'{name}' has {len(rows) // 2} point(s); give at least {MIN_CSV_ROWS} rows of two "
                        f"numbers.")
    return np.frombuffer(rows, dtype=np.float64).reshape(-1, 2).copy()


# ---- scikit-learn digits --------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """The 1,797 8×8 digits scikit-learn ships (datasets/data/digits.csv.gz: 64 pixel values 0..16 and the class
    per row), read as its load_digits reads them, without importing scikit-learn (see _two_arcs)."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")             # finds the package without running it
    roots = list(spec.submodule_search_locations or ()) if spec is not None else []
    path = Path(roots[0], "datasets", "data", "digits.csv.gz") if roots else None
    if path is None or not path.is_file():
        raise DataError("The 8×8 digits come with scikit-learn, which is not installed here: "
                        "pip install -r requirements.txt.")
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",")
    images = rows[:, :-1].reshape(-1, 1, 8, 8).astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(rows[:, -1].astype(np.int64))


def _digits(cfg: DataConfig, device: torch.device) -> Dataset:
    x, y = _digits_raw()
    tr, te = _split(len(x), cfg)
    return _images(cfg, device, x, y, tr, te, tuple(str(i) for i in range(10)),
                   "scikit-learn's handwritten digits, 10 classes;", scale=16.0)


# ---- procedural sprites ---------------------------------------------------------------------------
def _render_sprites(shape: torch.Tensor, scale: torch.Tensor, rotation: torch.Tensor, x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """Rasterise sprites from their factors with coordinate grids, vectorised over the batch: (N, 32, 32) bool.

    shape: 0 square, 1 ellipse, 2 heart; scale in [0.5, 1]; rotation in radians, counter-clockwise on screen;
    x, y in [0, 1] place the centre of mass left to right and top to bottom.
    """
    c = torch.arange(SPRITE_SIZE, dtype=torch.float32, device=x.device) + 0.5  # pixel centres
    span = SPRITE_SIZE - 2 * _SPRITE_MARGIN
    du = c.view(1, 1, -1) - (_SPRITE_MARGIN + x * span).view(-1, 1, 1)
    dv = (_SPRITE_MARGIN + y * span).view(-1, 1, 1) - c.view(1, -1, 1)  # v points up on screen
    unit = _SPRITE_RADIUS * scale
    cos, sin = (torch.cos(rotation) / unit).view(-1, 1, 1), (torch.sin(rotation) / unit).view(-1, 1, 1)
    u, v = cos * du + sin * dv, cos * dv - sin * du  # sprite frame: every shape fits in |u|, |v| <= 1
    out = torch.empty(u.shape, dtype=torch.bool, device=u.device)
    for k in range(len(SPRITE_SHAPES)):
        m = shape == k
        uk, vk = u[m], v[m]
        if k == 0:    # square
            out[m] = torch.maximum(uk.abs(), vk.abs()) <= 1
        elif k == 1:  # ellipse, axes 1 and 1/2
            out[m] = uk * uk + 4 * vk * vk <= 1
        else:         # heart: (a^2 + b^2 - 1)^3 <= a^2 b^3
            a2, b = (_HEART_K * uk) ** 2, _HEART_K * vk + _HEART_B
            q = a2 + b * b - 1
            out[m] = q * q * q <= a2 * b * b * b
    return out


@functools.lru_cache(maxsize=4)
def _sprites_raw(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, 32, 32) uint8 in {0, 1} and (n, 5) float32 factors."""
    rng = np.random.default_rng(seed)
    f = torch.from_numpy(np.stack([
        rng.integers(0, len(SPRITE_SHAPES), n).astype(np.float64),
        rng.uniform(0.5, 1.0, n),
        rng.uniform(0.0, 2 * np.pi, n),
        rng.uniform(0.0, 1.0, n),
        rng.uniform(0.0, 1.0, n),
    ], axis=1).astype(np.float32))
    chunks = [_render_sprites(c[:, 0].long(), c[:, 1], c[:, 2], c[:, 3], c[:, 4])
              for c in f.split(1024)]  # chunks small enough to stay in the CPU cache
    return torch.cat(chunks).unsqueeze(1).to(torch.uint8), f


def _sprites(cfg: DataConfig, device: torch.device) -> Dataset:
    x, f = _sprites_raw(min(cfg.n, MAX_SPRITES), cfg.seed)
    tr, te = _split(len(x), cfg)
    return _images(cfg, device, x, f[:, 0].long(), tr, te, SPRITE_SHAPES,
                   "procedural sprites (square, ellipse, heart) with known scale, rotation and position;",
                   scale=1.0, factors=f)


# ---- MNIST / Fashion-MNIST through torchvision ----------------------------------------------------
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")
_FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                    "Ankle boot")


def _gunzip_placed_files(raw: Path) -> None:
    """Decompress `X.gz` files a user placed in the raw folder when torchvision's `X` is missing."""
    for name in _MNIST_FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if target.exists() or not packed.is_file():
            continue
        tmp = raw / f".{name}.part"
        try:
            with gzip.open(packed, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(2**20):
                    if dst.tell() + len(chunk) > MAX_IDX_BYTES:
                        raise DataError(f"'{packed}' unpacks to more than {MAX_IDX_BYTES // 2**20} MB, so it is "
                                        f"not an MNIST file; replace it.")
                    dst.write(chunk)
            os.replace(tmp, target)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"'{packed}' is not a valid gzip file ({e}); download it again or place "
                            f"the unpacked '{name}' there.") from None
        finally:
            tmp.unlink(missing_ok=True)


@functools.lru_cache(maxsize=4)
def _mnist_raw(name: str, root: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Train then test images as uint8 (N, 1, 28, 28), their labels, and the number of training images."""
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    raw = Path(root) / cls.__name__ / "raw"
    if raw.is_dir():
        _gunzip_placed_files(raw)
    title = "MNIST" if name == "mnist" else "Fashion-MNIST"
    try:
        train, test = cls(root, train=True, download=download), cls(root, train=False, download=download)
    except RuntimeError as e:
        where = f"place {', '.join(_MNIST_FILES)} (or the same names ending in .gz) in the folder '{raw}'"
        if download and "not found" not in str(e):
            raise DataError(f"Downloading {title} failed (is there no network?); {where}, "
                            f"or choose a dataset that works offline such as digits or sprites.") from None
        raise DataError(f"The {title} files were not found; {where}, or set data.download to true "
                        f"to fetch them (needs internet).") from None
    except (AssertionError, TypeError, ValueError, IndexError, OSError) as e:
        raise DataError(f"The {title} files in '{raw}' could not be read ({type(e).__name__}: {e}); "
                        f"they look corrupt: delete them and place fresh copies.") from None
    for part in (train, test):
        if tuple(part.data.shape[1:]) != (28, 28) or len(part.data) != len(part.targets) or len(part.data) == 0:
            raise DataError(f"The {title} files in '{raw}' do not hold matching 28x28 images and labels; "
                            f"delete them and place fresh copies.")
    x = torch.cat([train.data, test.data]).unsqueeze(1)
    return x, torch.cat([train.targets, test.targets]).long(), len(train.data)


def _mnist_like(cfg: DataConfig, device: torch.device) -> Dataset:
    x, y, n_train = _mnist_raw(cfg.name, str(Path(cfg.root).expanduser().resolve()), cfg.download)
    n = n_train if cfg.limit <= 0 else min(cfg.limit, n_train)
    tr, te = np.arange(n), np.arange(n_train, len(x))  # torchvision's own split
    if cfg.name == "mnist":
        return _images(cfg, device, x, y, tr, te, tuple(str(i) for i in range(10)), "MNIST handwritten digits;")
    return _images(cfg, device, x, y, tr, te, _FASHION_CLASSES, "Fashion-MNIST clothing, 10 classes;")


# ---- own image folder / zip -----------------------------------------------------------------------
def _folder(cfg: DataConfig, device: torch.device) -> Dataset:
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"The image folder or zip '{path}' does not exist; check data.path.")
    with contextlib.ExitStack() as stack:
        if path.is_dir():
            files = _list_folder(path)
        elif zipfile.is_zipfile(path):
            try:
                zf = stack.enter_context(zipfile.ZipFile(path))
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(f"The zip '{path.name}' cannot be opened ({e}); re-create it.") from None
            files = _list_zip(zf, path.name)
        else:
            raise DataError(f"'{path.name}' is neither a folder nor a .zip file; point data.path to one of those.")
        rels = _strip_common_folder([rel for rel, _ in files])
        if not rels:
            raise DataError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) were found in '{path.name}'; "
                            f"add some or point data.path elsewhere.")
        if len(rels) > MAX_IMAGES:
            raise DataError(f"'{path.name}' holds {len(rels):,} images; use at most {MAX_IMAGES:,}.")
        nested = [len(r.parts) > 1 for r in rels]
        if any(nested) and not all(nested):
            raise DataError(f"'{path.name}' has images both at its top level and in sub-folders; put all of "
                            f"them in sub-folders (one per class) or all at the top level.")
        x = np.stack([_decode(read(), str(rel), cfg.image_size) for rel, read in files])
    class_names = tuple(sorted({r.parts[0] for r in rels})) if all(nested) else ()
    y = np.array([class_names.index(r.parts[0]) for r in rels]) if class_names else _no_labels(len(rels))
    tr, te = _split(len(x), cfg)
    return _images(cfg, device, torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y.astype(np.int64)), tr, te,
                   class_names, f"your images from {path.name}, {len(class_names) or 'no'} classes;")


_Reader = Callable[[], bytes]


def _is_image(parts: tuple[str, ...]) -> bool:
    return (not any(p.startswith(".") or p == "__MACOSX" for p in parts)
            and parts[-1].lower().endswith(IMAGE_EXTENSIONS))


def _too_big(rel: str, size: int) -> DataError:
    return DataError(f"The image '{rel}' is {size / 2**20:.1f} MB; each file may be at most "
                     f"{MAX_IMAGE_BYTES // 2**20} MB, so shrink or remove it.")


def _list_folder(root: Path) -> list[tuple[PurePosixPath, _Reader]]:
    """Image files under root in sorted order, hidden files and folders skipped, with a reader each."""
    out: list[tuple[PurePosixPath, _Reader]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for fn in sorted(filenames):
            full = Path(dirpath) / fn
            rel = PurePosixPath(*full.relative_to(root).parts)
            if not _is_image(rel.parts):
                continue
            if full.stat().st_size > MAX_IMAGE_BYTES:
                raise _too_big(str(rel), full.stat().st_size)
            out.append((rel, full.read_bytes))
            if len(out) > MAX_IMAGES:
                raise DataError(f"'{root.name}' holds more than {MAX_IMAGES:,} images; use at most {MAX_IMAGES:,}.")
    return sorted(out, key=lambda t: t[0].parts)


def _list_zip(zf: zipfile.ZipFile, zip_name: str) -> list[tuple[PurePosixPath, _Reader]]:
    """Image members of a zip (read in memory, never extracted), refusing unsafe names and zip bombs."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DataError(f"'{zip_name}' lists {len(infos):,} entries; a zip may hold at most {MAX_ZIP_ENTRIES:,}.")
    out: list[tuple[PurePosixPath, _Reader]] = []
    total = 0
    for info in infos:
        name = info.filename
        rel = PurePosixPath(name)
        if (name.startswith(("/", "\\")) or "\\" in name or ":" in name or ".." in rel.parts
                or stat.S_ISLNK(info.external_attr >> 16)):
            raise DataError(f"The zip '{zip_name}' contains an unsafe entry '{name}' (absolute path, '..', or "
                            f"a link); re-create the zip from a plain folder.")
        if info.is_dir() or not _is_image(rel.parts):
            continue
        if info.file_size > MAX_IMAGE_BYTES:
            raise _too_big(name, info.file_size)
        total += info.file_size
        if total > MAX_ZIP_BYTES:
            raise DataError(f"The images in '{zip_name}' unpack to more than {MAX_ZIP_BYTES // 2**20} MB; "
                            f"use a smaller zip or a folder.")
        out.append((rel, functools.partial(_read_member, zf, info)))
    return sorted(out, key=lambda t: t[0].parts)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read one member in memory, never trusting its declared size beyond the per-file limit."""
    try:
        with zf.open(info) as f:
            data = f.read(MAX_IMAGE_BYTES + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:  # RuntimeError: encrypted member
        raise DataError(f"The zip entry '{info.filename}' cannot be read ({e}); re-create the zip.") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _too_big(info.filename, len(data))
    return data


def _strip_common_folder(rels: list[PurePosixPath]) -> list[PurePosixPath]:
    """Drop leading folders shared by every file (a zip of 'photos/...' is the same as the folder 'photos')."""
    while rels and all(len(r.parts) > 1 for r in rels) and len({r.parts[0] for r in rels}) == 1:
        rels = [PurePosixPath(*r.parts[1:]) for r in rels]
    return rels


def _decode(data: bytes, rel: str, size: int) -> np.ndarray:
    """Bytes of one image -> (size, size) uint8 grayscale, centre-cropped to a square and resized."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"The image '{rel}' is {img.width}x{img.height} pixels; "
                                f"shrink it below {MAX_IMAGE_PIXELS // 1_000_000} megapixels.")
            img.draft("L", (size, size))
            gray = ImageOps.fit(img.convert("L"), (size, size), Image.Resampling.LANCZOS)
            return np.asarray(gray, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:  # PIL raises many types for broken files
        raise DataError(f"The image '{rel}' cannot be read ({type(e).__name__}); remove or replace it.") from None


# ---- registry -------------------------------------------------------------------------------------
_REGISTRY: dict[str, _Entry] = {
    "ring8": _Entry(_ring8, "8 Gaussians on a circle of radius 1 with std 0.01, the mode-collapse benchmark "
                            "of PacGAN and VEEGAN."),
    "grid25": _Entry(_grid25, "25 Gaussians with std 0.05 on a 5x5 grid with means in {-4, -2, 0, 2, 4}."),
    "spiral": _Entry(_spiral, "A noisy Archimedean spiral of 1.5 turns and radius 1: one thin curved manifold."),
    "moons": _Entry(_moons, "Two interleaving half circles (scikit-learn's make_moons), labelled by moon."),
    "circles": _Entry(_circles, "Two concentric noisy circles (scikit-learn's make_circles), labelled by circle."),
    "line": _Entry(_line, "Points on a straight segment: the simplest one-dimensional manifold in the plane."),
    "csv": _Entry(_csv, "Your own 2D points from a CSV file with two numeric columns (10 to 200,000 rows)."),
    "digits": _Entry(_digits, "scikit-learn's bundled 8x8 handwritten digits: 1,797 grayscale images, 10 classes."),
    "sprites": _Entry(_sprites, "Procedural 32x32 sprites (square, ellipse, heart) with known shape, scale, "
                                "rotation and position, up to 20,000 images."),
    "mnist": _Entry(_mnist_like, "MNIST: 70,000 28x28 handwritten digits in 10 classes (files or a download "
                                 "needed)."),
    "fashion_mnist": _Entry(_mnist_like, "Fashion-MNIST: 70,000 28x28 clothing images in 10 classes (files or a "
                                         "download needed)."),
    "folder": _Entry(_folder, "Your own images from a folder or .zip, grayscale and square, labelled by "
                              "sub-folder."),
}

__all__ = ["DataError", "Dataset", "load", "names", "describe", "example_shape"]
