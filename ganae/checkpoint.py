"""Checkpoint files: an atomic save and a safe load.

The Trainer builds the payload, a dict of plain data only:

    {"config": dict, "state": {name: state_dict}, "optim": {name: optimizer.state_dict()},
     "history": {key: list[float]}, "step": int, "rng": {name: ByteTensor}, "metrics": dict,
     "note": str, "created": str}

This module only moves such dicts to and from disk:
- `save` writes a temp file beside the target, fsyncs it and `os.replace`s it onto the target, so a crash or a
  kill mid-write leaves the previous checkpoint intact.
- `load` never unpickles arbitrary objects (`torch.load(weights_only=True)`), checks size and zip magic before
  reading, and turns every way a file can be wrong into a `CheckpointError` with one sentence a user can act on.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import re
import tempfile
import time
import zipfile
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

import torch

SCHEMA = 1                              # version of the payload layout; bump when keys change meaning
FORMAT = "ganae-checkpoint"             # value of payload["format"]; tells our files from other torch files
MAX_BYTES = 200 * 1024 * 1024           # refuse larger files before reading them
REQUIRED = ("config", "state", "step")  # keys every checkpoint must have
MAX_STEP = 10**12                       # a larger (or negative) step count is a damaged or crafted file
STALE_TMP_S = 120.0                     # a temp file untouched this long is left by a killed save (a save writes
                                        # continuously and renames within seconds)
_ZIP_MAGIC = b"PK\x03\x04"              # torch.save writes zip archives (since PyTorch 1.6)
_TMP_SUFFIX = ".tmp"                    # temp files are ".<name>.<random>.tmp" beside the target
_SCALARS = (bool, int, float, complex, str, bytes, torch.dtype, torch.device, torch.Size)  # weights_only-safe


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message says what is wrong and what to do."""


# ---- save ----------------------------------------------------------------------------------------
def save(path: str | Path, payload: dict) -> Path:
    """Write `payload` (plus "schema" and "format") to `path` atomically; returns the path.

    The payload is checked first: anything a safe load would refuse (numpy scalars, dataclasses, modules)
    raises TypeError naming the key, so a file that cannot be loaded back is never written. The caller's
    dict is not modified.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"a checkpoint payload is a dict, not {type(payload).__name__}")
    _check_plain(payload, "payload")
    data = {**payload, "schema": SCHEMA, "format": FORMAT}
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)

    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
            size = os.fstat(f.fileno()).st_size
        if size > MAX_BYTES:
            raise CheckpointError(f"The checkpoint would be {_mb(size)}, more than the {_mb(MAX_BYTES)} "
                                  "ganae loads back; it was not saved — use a smaller model.")
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return path


def _check_plain(obj: Any, where: str, depth: int = 0) -> None:
    """Raise TypeError if `obj` holds anything torch.load(weights_only=True) would refuse."""
    if depth > 64:
        raise TypeError(f"checkpoint {where} is nested too deeply (a cycle?)")
    if obj is None or type(obj) in _SCALARS:  # exact types: np.float64 subclasses float but is refused
        return
    if isinstance(obj, torch.Tensor):
        if type(obj) not in (torch.Tensor, torch.nn.Parameter):
            raise TypeError(f"checkpoint {where} is a {type(obj).__name__}; store a plain tensor (.detach())")
        return
    if type(obj) in (dict, OrderedDict):
        for k, v in obj.items():
            _check_plain(k, f"{where} key {k!r}", depth + 1)
            _check_plain(v, f"{where}[{k!r}]", depth + 1)
        return
    if type(obj) in (list, tuple, set):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]", depth + 1)
        return
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise TypeError(f"checkpoint {where} is a {kind}, which a safe load refuses; convert it to "
                    "int / float / str / list / dict or a tensor (e.g. float(x), dataclasses.asdict(cfg))")


def _file_mode(path: Path) -> int:
    """Keep the mode of the file being replaced; new files get rw-r--r-- (mkstemp would leave rw-------)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- load ----------------------------------------------------------------------------------------
def load(path_or_bytes: str | Path | bytes | BinaryIO, map_location: Any = "cpu",
         max_bytes: int = MAX_BYTES) -> dict:
    """Read and check a checkpoint; returns the payload dict or raises CheckpointError (never unpickles code)."""
    return _load(path_or_bytes, map_location, max_bytes, mmap=False)


def _load(src: str | Path | bytes | BinaryIO, map_location: Any, max_bytes: int, mmap: bool) -> dict:
    name, source = _open_checked(src, max_bytes)
    try:
        payload = torch.load(source, map_location=map_location, weights_only=True,
                             mmap=mmap and isinstance(source, str))
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unsafe_sentence(name, str(e))) from None
    except Exception as e:  # miniz / EOF / storage errors: a damaged file, or a device that is missing
        raise CheckpointError(_damaged_sentence(name, e)) from None
    return _check_payload(name, payload)


def _open_checked(src: str | Path | bytes | BinaryIO, max_bytes: int) -> tuple[str, str | IO[bytes]]:
    """Size, magic and zip-directory checks before torch sees the file; returns (display name, source)."""
    if isinstance(src, (str, Path)):
        p = Path(src)
        name = f"'{p.name}'"
        if not p.exists():
            raise CheckpointError(f"There is no checkpoint file at '{p}'; check the path or save one first.")
        if not p.is_file():
            raise CheckpointError(f"'{p}' is a folder, not a checkpoint file; pick a .pt file inside it.")
        size = p.stat().st_size
        _check_size(name, size, max_bytes)
        with open(p, "rb") as f:
            _check_archive(name, f, max_bytes)
        return name, str(p)
    if isinstance(src, (bytes, bytearray, memoryview)):
        name = "The uploaded file"
        _check_size(name, len(src), max_bytes)
        buf = io.BytesIO(bytes(src))
    elif hasattr(src, "read"):
        name = f"'{Path(src.name).name}'" if isinstance(getattr(src, "name", None), str) else "The uploaded file"
        buf = _read_stream(name, src, max_bytes)
    else:
        raise TypeError(f"load() takes a path, bytes or a binary file, not {type(src).__name__}")
    _check_archive(name, buf, max_bytes)
    buf.seek(0)
    return name, buf


def _read_stream(name: str, f: BinaryIO, max_bytes: int) -> io.BytesIO:
    """Read a binary stream into memory, refusing it before reading when it is seekable and too large."""
    try:
        if f.seekable():
            start = f.tell()
            size = f.seek(0, os.SEEK_END) - start
            f.seek(start)
            _check_size(name, size, max_bytes)
        data = f.read(max_bytes + 1)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{name} could not be read ({e}); try opening or uploading it again.") from None
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("load() needs a file opened in binary mode ('rb')")
    _check_size(name, len(data), max_bytes)
    return io.BytesIO(data)


def _check_size(name: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise CheckpointError(f"{name} is empty (0 bytes), so it holds no checkpoint; save the model again "
                              "or pick another file.")
    if size > max_bytes:
        raise CheckpointError(f"{name} is {_mb(size)}, more than the {_mb(max_bytes)} ganae accepts; "
                              "pick a smaller checkpoint.")


def _check_archive(name: str, f: IO[bytes], max_bytes: int) -> None:
    """A torch file is a zip with an <archive>/data.pkl; check magic, directory and unpacked size."""
    if f.read(4) != _ZIP_MAGIC:
        raise CheckpointError(f"{name} is not a PyTorch checkpoint (it does not start like a torch.save "
                              "file); pick a .pt file saved by ganae.")
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise CheckpointError(f"{name} is damaged or incomplete (its archive ends early); it was probably cut "
                              "off while saving or copying — save or copy it again.") from None
    if not any(i.filename.endswith("data.pkl") and i.filename.count("/") == 1 for i in infos):
        raise CheckpointError(f"{name} is a zip archive but not a PyTorch checkpoint; pick a .pt file saved "
                              "by ganae.")
    unpacked = sum(i.file_size for i in infos)
    if unpacked > max_bytes:
        raise CheckpointError(f"{name} unpacks to {_mb(unpacked)}, more than the {_mb(max_bytes)} ganae "
                              "accepts; pick a smaller checkpoint.")


def _unsafe_sentence(name: str, message: str) -> str:
    found = re.findall(r"GLOBAL ([\w.]+)", message)
    what = f" ({', '.join(dict.fromkeys(found))})" if found else ""
    return (f"{name} was refused: it asks Python to import or run code{what}, which a checkpoint never needs "
            "and ganae never does; it may be malicious or from another program — use a checkpoint saved by "
            "ganae.")


def _damaged_sentence(name: str, e: Exception) -> str:
    text = str(e)
    if "CUDA" in text or "device" in text.lower():
        first = text.strip().splitlines()[0][:160] if text.strip() else type(e).__name__
        return f"{name} could not be placed on the requested device ({first}); load it with map_location='cpu'."
    return (f"{name} is damaged or incomplete ({type(e).__name__} while reading it); save or copy it again, "
            "or pick another file.")


def _check_payload(name: str, payload: Any) -> dict:
    """Foreign files, newer schemas and missing keys -> CheckpointError."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = ""
        if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
            hint = " (it looks like a plain state_dict)"
        raise CheckpointError(f"{name} is a PyTorch file but not a ganae checkpoint{hint}; open it with the "
                              "program that made it, or pick a checkpoint saved by ganae.")
    schema = payload.get("schema")
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise CheckpointError(f"{name} has an invalid schema number ({schema!r}); the file is damaged — save it "
                              "again.")
    if schema > SCHEMA:
        raise CheckpointError(f"{name} was made by a newer ganae (checkpoint schema {schema}, this version reads "
                              f"up to {SCHEMA}); upgrade ganae to open it.")
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise CheckpointError(f"{name} is missing {', '.join(repr(k) for k in missing)}; it is incomplete — "
                              "save the run again.")
    step = payload["step"]
    if not isinstance(payload["config"], dict) or not isinstance(payload["state"], dict) \
            or isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise CheckpointError(f"{name} has 'config', 'state' or 'step' of the wrong type; it is damaged — "
                              "save the run again.")
    return payload


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


# ---- gallery -------------------------------------------------------------------------------------
def inspect(path: str | Path) -> dict:
    """Cheap summary of one checkpoint for a gallery (tensors are memory-mapped, not read)."""
    p = Path(path)
    payload = _load(p, "cpu", MAX_BYTES, mmap=True)
    st = p.stat()
    metrics = payload.get("metrics", {})
    note = payload.get("note", "")
    metrics = {str(k): v for k, v in metrics.items() if _finite(v)} if isinstance(metrics, dict) else {}
    return {
        "path": str(p),
        "name": p.stem,
        "size_bytes": st.st_size,
        "modified": _iso(st.st_mtime),
        "config": payload["config"],
        "step": payload["step"],
        "metrics": metrics,
        "note": note if isinstance(note, str) else "",
        "kind": payload.get("kind", "run") if isinstance(payload.get("kind", "run"), str) else "run",
    }


def _finite(v: Any) -> bool:
    """A metric a gallery can print: a real number within float range (not bool, NaN, inf or 10**400)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def list_checkpoints(folder: str | Path) -> list[dict]:
    """`inspect()` of every *.pt in `folder` (not recursive), sorted by name; broken files carry an 'error'."""
    d = Path(folder)
    if not d.is_dir():
        return []
    out = []
    for p in sorted((q for q in d.glob("*.pt") if q.is_file()), key=lambda q: q.name):
        try:
            out.append(inspect(p))
        except OSError:               # unreadable (permissions, gone meanwhile): one file, not the listing
            out.append({"path": str(p), "name": p.stem, "size_bytes": 0, "modified": "",
                        "error": f"'{p.name}' could not be read; check its permissions or save it again."})
        except CheckpointError as e:
            try:
                st = p.stat()
                size, modified = st.st_size, _iso(st.st_mtime)
            except OSError:
                size, modified = 0, ""
            out.append({"path": str(p), "name": p.stem, "size_bytes": size, "modified": modified,
                        "error": str(e)})
    return out


def remove_stale_temp(folder: str | Path, older_than_s: float = STALE_TMP_S) -> list[Path]:
    """Delete the temp files of saves that were killed mid-write (".<name>.<random>.tmp", untouched for
    `older_than_s`) in `folder`; returns what was removed. A save in progress keeps writing, so it is spared."""
    removed: list[Path] = []
    now = time.time()
    for p in Path(folder).glob(f".*{_TMP_SUFFIX}"):
        try:
            if p.is_file() and now - p.stat().st_mtime > older_than_s:
                p.unlink()
                removed.append(p)
        except OSError:               # gone meanwhile, or not ours to delete
            pass
    return removed


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


__all__ = ["SCHEMA", "FORMAT", "MAX_BYTES", "CheckpointError", "save", "load", "inspect", "list_checkpoints",
           "remove_stale_temp"]
