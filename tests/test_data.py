"""Dataset registry: shapes, ranges, labels, determinism, splits, and refusals of bad user data."""
from __future__ import annotations

import gzip
import io
import math
import struct
import tracemalloc
import zipfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from ganae import data
from ganae.config import DATASETS, DataConfig
from ganae.data import DataError, Dataset

POINTS = ("ring8", "grid25", "spiral", "moons", "circles", "line")


# ---- registry -------------------------------------------------------------------------------------
def test_registry_matches_config_and_describes_every_dataset():
    assert sorted(data.names()) == sorted(DATASETS)
    for name in data.names():
        text = data.describe(name)
        assert text.endswith(".") and len(text) > 20
    with pytest.raises(DataError, match="choose one of"):
        data.describe("nope")
    with pytest.raises(DataError, match="no dataset 'nope'"):
        data.load(DataConfig(name="nope"))


# ---- 2D points ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POINTS)
def test_points_shape_split_bounds_and_determinism(name):
    d = data.load(DataConfig(name=name, n=1000, test_fraction=0.2, seed=3))
    assert d.kind == "points" and d.name == name and d.shape == (2,)
    assert d.x_train.shape == (800, 2) and d.x_test.shape == (200, 2)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.y_train.shape == (800,) and d.y_test.shape == (200,)
    assert torch.isfinite(d.x_train).all()
    xmin, xmax, ymin, ymax = d.bounds
    allx = torch.cat([d.x_train, d.x_test])
    assert xmin < allx[:, 0].min() and allx[:, 0].max() < xmax
    assert ymin < allx[:, 1].min() and allx[:, 1].max() < ymax
    if d.n_classes:
        assert d.y_train.min() >= 0 and d.y_train.max() < d.n_classes == len(d.class_names)
    else:
        assert (d.y_train == -1).all() and d.class_names == ()
    again = data.load(DataConfig(name=name, n=1000, test_fraction=0.2, seed=3))
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_test, again.y_test)
    other = data.load(DataConfig(name=name, n=1000, test_fraction=0.2, seed=4))
    assert not torch.equal(d.x_train, other.x_train)
    assert d.description.endswith("800 train / 200 test points.")


def test_ring8_points_sit_on_their_modes():
    d = data.load(DataConfig(name="ring8", n=2000))
    assert d.n_classes == 8 and d.mode_std == 0.01
    assert torch.allclose(d.modes.norm(dim=1), torch.ones(8))
    x, y = torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])
    dist = (x - d.modes[y]).norm(dim=1)
    assert dist.max() < 5 * d.mode_std
    nearest = torch.cdist(x, d.modes).argmin(dim=1)
    assert torch.equal(nearest, y)
    assert set(y.tolist()) == set(range(8))


def test_ring8_std_and_radius_override_the_defaults():
    d = data.load(DataConfig(name="ring8", n=2000, std=0.1, radius=3.0))
    assert d.mode_std == 0.1
    assert torch.allclose(d.modes.norm(dim=1), torch.full((8,), 3.0))
    spread = (d.x_train - d.modes[d.y_train]).std()
    assert 0.08 < spread < 0.12


def test_grid25_has_25_modes_on_the_published_grid():
    d = data.load(DataConfig(name="grid25", n=5000))
    ticks = {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert d.modes.shape == (25, 2) and d.mode_std == 0.05
    assert {(a, b) for a, b in d.modes.tolist()} == {(a, b) for a in ticks for b in ticks}
    assert set(d.y_train.tolist()) == set(range(25))
    assert (d.x_train - d.modes[d.y_train]).norm(dim=1).max() < 5 * 0.05 * math.sqrt(2)


@pytest.mark.parametrize("name", ("moons", "circles"))
def test_two_class_sets_carry_balanced_labels(name):
    d = data.load(DataConfig(name=name, n=1000))
    assert d.n_classes == 2 and len(d.class_names) == 2
    counts = torch.bincount(torch.cat([d.y_train, d.y_test]))
    assert counts.tolist() == [500, 500]


@pytest.mark.parametrize("name", ("moons", "circles"))
@pytest.mark.parametrize("n, seed, noise", [(200, 0, 0.0), (1001, 3, 0.2)])
def test_moons_and_circles_are_scikit_learns_points(name, n, seed, noise):
    """ganae writes make_moons / make_circles out (serving a page must not import scikit-learn): same points and
    labels for a seed as scikit-learn's own functions."""
    from sklearn.datasets import make_circles, make_moons

    d = data.load(DataConfig(name=name, n=n, seed=seed, noise=noise))
    sigma = noise or (0.05 if name == "moons" else 0.03)
    if name == "moons":
        x, y = make_moons(n_samples=n, noise=sigma, random_state=seed)
        x = x - np.array([0.5, 0.25])
    else:
        x, y = make_circles(n_samples=n, noise=sigma, factor=0.5, random_state=seed)
    ours = torch.cat([torch.cat([d.x_train, d.y_train[:, None].float()], 1),
                      torch.cat([d.x_test, d.y_test[:, None].float()], 1)])
    ref = torch.from_numpy(np.hstack([x, y[:, None]])).float()
    key = lambda t: t[torch.argsort(t[:, 0] * 1e4 + t[:, 1])]  # noqa: E731  (the split reorders the rows)
    assert torch.equal(key(ours), key(ref))


def test_loading_the_bundled_sets_never_imports_scikit_learn():
    import subprocess
    import sys
    probe = ("import sys; from ganae import data; from ganae.config import DataConfig\n"
             "for n in ('moons', 'circles', 'digits'): data.load(DataConfig(name=n))\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_circles_labels_match_the_radius():
    d = data.load(DataConfig(name="circles", n=1000))
    r = d.x_train.norm(dim=1)
    assert r[d.y_train == 0].min() > r[d.y_train == 1].max()  # 0 = outer circle


def test_limit_caps_training_examples_only():
    d = data.load(DataConfig(name="ring8", n=1000, limit=50))
    assert len(d.x_train) == 50 and len(d.x_test) == 200


def test_points_move_to_the_requested_device():
    d = data.load(DataConfig(name="moons", n=200), device=torch.device("cpu"))
    assert d.device == torch.device("cpu") and d.modes is None and d.factors_train is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_load_and_batch():
    d = data.load(DataConfig(name="sprites", n=500), device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    x, y = d.batch(16, g)
    assert x.is_cuda and y.is_cuda and d.factors_train.is_cuda and x.shape == (16, 1, 32, 32)


# ---- batches --------------------------------------------------------------------------------------
def test_batch_shapes_and_seeded_determinism():
    d = data.load(DataConfig(name="digits"))
    x, y = d.batch(32, torch.Generator().manual_seed(1))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == torch.int64
    x2, y2 = d.batch(32, torch.Generator().manual_seed(1))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = d.batch(32, torch.Generator().manual_seed(2))
    assert not torch.equal(x, x3)


def test_batch_draws_rows_uniformly_and_keeps_x_with_y():
    n = 10
    d = Dataset(name="t", kind="points", x_train=torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2),
                y_train=torch.arange(n), x_test=torch.zeros(1, 2), y_test=torch.zeros(1, dtype=torch.int64),
                n_classes=0, class_names=(), description="")
    x, y = d.batch(50_000, torch.Generator().manual_seed(0))
    assert torch.equal(x[:, 0].long(), y)
    counts = torch.bincount(y, minlength=n)
    assert counts.min() > 4700 and counts.max() < 5300  # expected 5000, sd about 67


# ---- digits ---------------------------------------------------------------------------------------
def test_digits_shape_range_classes_and_split():
    from sklearn.datasets import load_digits

    d = data.load(DataConfig(name="digits", test_fraction=0.2, seed=0))
    assert d.kind == "images" and d.shape == (1, 8, 8) and d.x_train.dtype == torch.float32
    assert len(d.x_train) + len(d.x_test) == 1797 and len(d.x_test) == round(1797 * 0.2)
    assert d.n_classes == 10 and d.class_names == tuple("0123456789")
    allx = torch.cat([d.x_train, d.x_test])
    assert allx.min() == -1.0 and allx.max() == 1.0
    levels = (allx + 1) * 8  # back to 0..16
    assert torch.equal(levels, levels.round())
    ref = load_digits()
    sums = sorted(((allx + 1) * 8).sum(dim=(1, 2, 3)).round().long().tolist())
    assert sums == sorted(ref.images.sum(axis=(1, 2)).astype(int).tolist())
    assert set(torch.cat([d.y_train, d.y_test]).tolist()) == set(range(10))
    other = data.load(DataConfig(name="digits", test_fraction=0.2, seed=1))
    assert not torch.equal(d.y_test, other.y_test)
    assert torch.equal(d.y_test, data.load(DataConfig(name="digits", test_fraction=0.2, seed=0)).y_test)


def test_cached_loads_hand_out_independent_tensors():
    d = data.load(DataConfig(name="digits"))
    d.x_train.fill_(0.5)
    assert data.load(DataConfig(name="digits")).x_train.min() == -1.0


# ---- sprites --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sprites() -> Dataset:
    return data.load(DataConfig(name="sprites", n=3000, seed=7))


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lit-pixel count, centre of mass (col, row) in pixel units, and the lit mask."""
    lit = (x[:, 0] > 0).float()
    c = torch.arange(32, dtype=torch.float32) + 0.5
    area = lit.sum(dim=(1, 2))
    cx = (lit * c.view(1, 1, -1)).sum(dim=(1, 2)) / area
    cy = (lit * c.view(1, -1, 1)).sum(dim=(1, 2)) / area
    return area, torch.stack([cx, cy], dim=1), lit


def test_sprites_shape_values_labels_and_factors(sprites):
    d = sprites
    assert d.shape == (1, 32, 32) and len(d.x_train) == 2400 and len(d.x_test) == 600
    assert set(torch.unique(d.x_train).tolist()) == {-1.0, 1.0}
    assert d.class_names == ("square", "ellipse", "heart") and d.n_classes == 3
    assert d.factor_names == ("shape", "scale", "rotation", "x", "y")
    f = d.factors_train
    assert f.shape == (2400, 5) and torch.equal(f[:, 0].long(), d.y_train)
    assert set(d.y_train.tolist()) == {0, 1, 2}
    assert f[:, 1].min() >= 0.5 and f[:, 1].max() <= 1.0
    assert f[:, 2].min() >= 0 and f[:, 2].max() < 2 * math.pi
    assert f[:, 3:].min() >= 0 and f[:, 3:].max() <= 1
    area, _, lit = _moments(d.x_train)
    assert area.min() > 5
    border = lit[:, 0].sum() + lit[:, -1].sum() + lit[:, :, 0].sum() + lit[:, :, -1].sum()
    assert border == 0  # every sprite fits inside the frame


def test_sprites_are_deterministic_and_capped():
    a = data.load(DataConfig(name="sprites", n=500, seed=1))
    b = data.load(DataConfig(name="sprites", n=500, seed=1))
    c = data.load(DataConfig(name="sprites", n=500, seed=2))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.factors_test, b.factors_test)
    assert not torch.equal(a.x_train, c.x_train)
    big = data.load(DataConfig(name="sprites", n=25_000, limit=10))
    assert len(big.x_train) == 10 and len(big.x_test) == 4000  # 20,000 images, 20% held out


def test_sprite_position_factors_match_the_centre_of_mass(sprites):
    _, com, _ = _moments(sprites.x_train)
    for axis, col in ((0, 3), (1, 4)):
        f = sprites.factors_train[:, col]
        slope, icpt = np.polyfit(f.numpy(), com[:, axis].numpy(), 1)
        resid = com[:, axis] - (slope * f + icpt)
        assert 10 < slope < 16  # x and y sweep most of the 32 pixels, left->right and top->bottom
        assert resid.abs().median() < 0.5


def test_sprite_scale_factor_sets_the_area(sprites):
    area, _, _ = _moments(sprites.x_train)
    f = sprites.factors_train
    for k in range(3):
        m = f[:, 0] == k
        corr = np.corrcoef(f[m, 1].numpy() ** 2, area[m].numpy())[0, 1]
        assert corr > 0.95
    same_scale = (f[:, 1] - 0.9).abs() < 0.05
    sq, el = same_scale & (f[:, 0] == 0), same_scale & (f[:, 0] == 1)
    assert area[sq].mean() > 2 * area[el].mean()  # a square covers 4/pi times more than its inscribed half ellipse


def test_sprite_rotation_factor_turns_the_ellipse(sprites):
    f = sprites.factors_train
    m = (f[:, 0] == 1) & (f[:, 1] > 0.8)
    _, com, lit = _moments(sprites.x_train[m])
    c = torch.arange(32, dtype=torch.float32) + 0.5
    dx = c.view(1, 1, -1) - com[:, 0].view(-1, 1, 1)
    dy = com[:, 1].view(-1, 1, 1) - c.view(1, -1, 1)  # up is positive
    mxx, myy, mxy = [(lit * t).sum(dim=(1, 2)) for t in (dx * dx, dy * dy, dx * dy)]
    angle = 0.5 * torch.atan2(2 * mxy, mxx - myy)  # major axis, counter-clockwise
    err = torch.remainder(angle - f[m, 2] + math.pi / 2, math.pi) - math.pi / 2
    assert err.abs().median() < math.radians(8)


# ---- MNIST through torchvision --------------------------------------------------------------------
def _idx_images(images: np.ndarray) -> bytes:
    return struct.pack(">iiii", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">ii", 2049, len(labels)) + labels.astype(np.uint8).tobytes()


def _write_mnist(root: Path, folder: str, gz: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tiny MNIST-layout files under root/folder/raw: 5 train and 3 test images."""
    rng = np.random.default_rng(0)
    xtr, xte = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (3, 28, 28))
    ytr, yte = np.array([3, 1, 4, 1, 5]), np.array([9, 2, 6])
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    files = {"train-images-idx3-ubyte": _idx_images(xtr), "train-labels-idx1-ubyte": _idx_labels(ytr),
             "t10k-images-idx3-ubyte": _idx_images(xte), "t10k-labels-idx1-ubyte": _idx_labels(yte)}
    for name, blob in files.items():
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (raw / name).write_bytes(blob)
    return xtr, ytr, xte


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_files_round_trip_through_torchvision(tmp_path, name, folder):
    xtr, ytr, xte = _write_mnist(tmp_path, folder)
    d = data.load(DataConfig(name=name, root=str(tmp_path)))
    assert d.shape == (1, 28, 28) and len(d.x_train) == 5 and len(d.x_test) == 3
    assert d.n_classes == 10 and d.y_train.tolist() == ytr.tolist()
    back = ((d.x_train[:, 0] + 1) * 127.5).round().numpy()
    assert np.array_equal(back, xtr)
    assert np.array_equal(((d.x_test[:, 0] + 1) * 127.5).round().numpy(), xte)
    assert d.x_train.min() >= -1 and d.x_train.max() <= 1
    assert len(data.load(DataConfig(name=name, root=str(tmp_path), limit=2)).x_train) == 2


def test_mnist_gz_files_are_unpacked(tmp_path):
    xtr, _, _ = _write_mnist(tmp_path, "MNIST", gz=True)
    d = data.load(DataConfig(name="mnist", root=str(tmp_path)))
    assert np.array_equal(((d.x_train[:, 0] + 1) * 127.5).round().numpy(), xtr)
    assert (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_mnist_missing_offline_says_where_to_put_the_files(tmp_path):
    with pytest.raises(DataError) as e:
        data.load(DataConfig(name="mnist", root=str(tmp_path)))
    msg = str(e.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte" in msg and "download" in msg


def test_failed_download_is_a_data_error(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match="Downloading Fashion-MNIST failed.*FashionMNIST"):
        data.load(DataConfig(name="fashion_mnist", root=str(tmp_path), download=True))


def test_corrupt_mnist_file_is_a_data_error(tmp_path):
    _write_mnist(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"garbage!")
    with pytest.raises(DataError, match="corrupt"):
        data.load(DataConfig(name="mnist", root=str(tmp_path)))


# ---- CSV ------------------------------------------------------------------------------------------
def _csv(tmp_path: Path, text: str) -> DataConfig:
    p = tmp_path / "pts.csv"
    p.write_text(text)
    return DataConfig(name="csv", path=str(p), test_fraction=0.2)


@pytest.mark.parametrize("header, sep", [("x,y\n", ","), ("", ","), ("a;b\n", ";"), ("", "\t"), ("", " ")])
def test_csv_points_load_with_or_without_header(tmp_path, header, sep):
    rows = [(i * 0.5, -i) for i in range(20)]
    d = data.load(_csv(tmp_path, header + "".join(f"{a}{sep}{b}\n" for a, b in rows)))
    assert d.kind == "points" and len(d.x_train) == 16 and len(d.x_test) == 4
    got = sorted(map(tuple, torch.cat([d.x_train, d.x_test]).tolist()))
    assert got == sorted((float(a), float(b)) for a, b in rows)
    assert (d.y_train == -1).all() and d.n_classes == 0


@pytest.mark.parametrize("text, fragment", [
    ("x,y\n" + "1,2\n" * 10 + "3,oops\n", "Line 12.*non-number"),
    ("x,y,z\n" + "1,2,3\n" * 12, "Line 2 .*3 column"),
    ("1,2\n" * 10 + "1,nan\n", "Line 11.*missing"),
    ("1,2\n" * 9, "at least 10"),
    ("1,2\n" * (data.MAX_CSV_ROWS + 1), "more than 200,000"),
])
def test_csv_errors_name_the_problem(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment):
        data.load(_csv(tmp_path, text))


@pytest.mark.parametrize("text, fragment", [
    ("1,2\n" * 10 + "1e308,2\n", "Line 11.*too large value"),             # finite in float64, inf in float32
    ("1,2\n" * 10 + "-3.5e38,2\n", "Line 11.*too large value"),
    ("1," + "2" * 1_000_000 + "\n" + "1,2\n" * 10, "Line 1 .*longer than 256 characters"),   # was _csv.Error
    ("1,2\n" * 10 + "1,\x002\n", "Line 11 .*non-number"),                                # a NUL byte
])
def test_csv_edge_cases_are_data_errors(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment):
        data.load(_csv(tmp_path, text))


def test_float32_limits_themselves_are_accepted(tmp_path):
    big = float(np.finfo(np.float32).max)
    d = data.load(_csv(tmp_path, f"{big!r},{-big!r}\n" + "1,2\n" * 12))
    assert torch.isfinite(torch.cat([d.x_train, d.x_test])).all()


def test_a_csv_past_the_byte_limit_is_refused_unread(tmp_path, monkeypatch):
    p = tmp_path / "one-line.csv"
    with open(p, "wb") as f:                     # a 40 MB single line (sparse: nothing is written but its end)
        f.seek(40 * 2**20)
        f.write(b"1")
    opened = []
    monkeypatch.setattr(data, "open", lambda *a, **k: opened.append(a), raising=False)   # data.py's open()
    with pytest.raises(DataError, match="larger than 16 MB"):
        data.load(DataConfig(name="csv", path=str(p)))
    assert opened == []


def test_a_csv_of_a_million_rows_is_refused_with_bounded_memory(tmp_path):
    """Refused at row 200,001 after reading a line at a time: the whole text and a list of every line made a
    5-million-row file cost ~800 MB before its refusal."""
    p = tmp_path / "many.csv"
    p.write_text("1,2\n" * 1_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than 200,000 rows"):
            data.load(DataConfig(name="csv", path=str(p)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB"


def test_missing_csv_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        data.load(DataConfig(name="csv", path=str(tmp_path / "nope.csv")))


# ---- own image folders and zips -------------------------------------------------------------------
def _png(value: int, size: tuple[int, int] = (20, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()


def _class_tree(root: Path) -> Path:
    """cats/ (white) and dogs/ (black), three images each, plus a hidden broken file that must be skipped."""
    for cls, value in (("cats", 255), ("dogs", 0)):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            (root / cls / f"{i}.png").write_bytes(_png(value))
    (root / "cats" / ".junk.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")
    return root


def _check_classes(d: Dataset, size: int) -> None:
    assert d.class_names == ("cats", "dogs") and d.n_classes == 2
    assert d.shape == (1, size, size) and len(d.x_train) + len(d.x_test) == 6
    x, y = torch.cat([d.x_train, d.x_test]), torch.cat([d.y_train, d.y_test])
    assert torch.equal(x.mean(dim=(1, 2, 3)), torch.where(y == 0, 1.0, -1.0))


def test_folder_labels_come_from_sub_folders(tmp_path):
    d = data.load(DataConfig(name="folder", path=str(_class_tree(tmp_path / "pets")), image_size=16))
    _check_classes(d, 16)
    assert len(d.x_test) == 1


def test_zip_reads_the_same_images_in_memory(tmp_path):
    tree = _class_tree(tmp_path / "pets")
    z = tmp_path / "pets.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                zf.write(f, f"pets/{f.relative_to(tree).as_posix()}")  # one wrapping folder is stripped
    _check_classes(data.load(DataConfig(name="folder", path=str(z), image_size=12)), 12)


def test_flat_folder_has_no_labels_and_keeps_gray_levels(tmp_path):
    for i, v in enumerate((0, 100, 200, 255)):
        (tmp_path / f"img{i}.png").write_bytes(_png(v, size=(30 + i, 10)))
    Image.new("L", (9, 9), 100).save(tmp_path / "extra.jpg", quality=100)
    d = data.load(DataConfig(name="folder", path=str(tmp_path), image_size=8, seed=0))
    assert (torch.cat([d.y_train, d.y_test]) == -1).all() and d.n_classes == 0 and d.class_names == ()
    levels = sorted(((torch.cat([d.x_train, d.x_test]) + 1) * 127.5).round().mean(dim=(1, 2, 3)).tolist())
    assert levels == [0.0, 100.0, 100.0, 200.0, 255.0]


def test_folder_refusals(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        data.load(DataConfig(name="folder", path=str(tmp_path / "missing")))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="No images"):
        data.load(DataConfig(name="folder", path=str(empty)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "good.png").write_bytes(_png(10))
    (broken / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="'bad.png' cannot be read"):
        data.load(DataConfig(name="folder", path=str(broken)))
    mixed = _class_tree(tmp_path / "mixed")
    (mixed / "loose.png").write_bytes(_png(1))
    with pytest.raises(DataError, match="both at its top level and in sub-folders"):
        data.load(DataConfig(name="folder", path=str(mixed)))
    monkeypatch.setattr(data, "MAX_IMAGES", 3)
    with pytest.raises(DataError, match="at most 3"):
        data.load(DataConfig(name="folder", path=str(_class_tree(tmp_path / "many"))))


def test_oversized_image_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_IMAGE_BYTES", 100)
    (tmp_path / "a.png").write_bytes(_png(5, size=(64, 64)) + bytes(200))
    (tmp_path / "b.png").write_bytes(_png(5))
    with pytest.raises(DataError, match="'a.png' is .* MB"):
        data.load(DataConfig(name="folder", path=str(tmp_path)))


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_zip_with_path_traversal_is_refused(tmp_path, member):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok/1.png", _png(1))
        zf.writestr(zipfile.ZipInfo(member), _png(2))
    with pytest.raises(DataError, match="unsafe entry"):
        data.load(DataConfig(name="folder", path=str(z)))


def test_zip_bomb_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_ZIP_BYTES", 50_000)
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"{i}.png", bytes(30_000))  # compresses to almost nothing
    assert z.stat().st_size < 5_000
    with pytest.raises(DataError, match="unpack to more than"):
        data.load(DataConfig(name="folder", path=str(z)))


def test_not_a_folder_or_zip_is_refused(tmp_path):
    f = tmp_path / "photo.png"
    f.write_bytes(_png(1))
    with pytest.raises(DataError, match="neither a folder nor a .zip"):
        data.load(DataConfig(name="folder", path=str(f)))
