"""Nothing silently stays on the CPU.

On a GPU a tensor created without `device=` lands on the CPU: the step then either fails (mixed devices) or, worse,
works slowly through copies. This machine has no GPU, so the CPU tests check the discipline itself: while a Trainer
steps, evaluates and snapshots, every tensor factory called from ganae's own code (torch.randn, zeros, arange,
tensor, ...) must name its device (or copy one with *_like). A TorchFunctionMode sees every such call and the
frame that made it. On a machine with CUDA (or mps) the last test also trains each family there and checks where
every parameter, buffer, optimiser state and output lives.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from ganae.config import ConfigWarning, RunConfig
from ganae.trainer import Trainer

GANAE = str(Path(__file__).resolve().parents[1] / "ganae")
FACTORIES = {torch.randn, torch.rand, torch.randint, torch.randperm, torch.zeros, torch.ones, torch.empty,
             torch.full, torch.arange, torch.linspace, torch.eye, torch.tensor, torch.as_tensor, torch.from_numpy,
             torch.normal, torch.multinomial}


class DeviceAudit(TorchFunctionMode):
    """Records factory calls made from ganae's files that do not say on which device their tensor goes."""

    def __init__(self) -> None:
        super().__init__()
        self.unplaced: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs and not self._from_tensor(func, args, kwargs):
            where = self._caller()
            if where is not None:
                self.unplaced.append(f"{func.__name__} at {where}")
        return func(*args, **kwargs)

    @staticmethod
    def _from_tensor(func, args, kwargs) -> bool:
        # torch.normal(mean_tensor, std) and multinomial(probs) follow their tensor argument's device;
        # as_tensor / tensor of a tensor keeps its device.
        first = args[0] if args else None
        return isinstance(first, torch.Tensor) and func in (torch.normal, torch.multinomial, torch.as_tensor,
                                                             torch.tensor)

    @staticmethod
    def _caller() -> str | None:
        f = sys._getframe(2)
        while f is not None:
            fn = f.f_code.co_filename
            if fn.startswith(GANAE):
                if f.f_code.co_name == "__init__" and isinstance(f.f_locals.get("self"), torch.nn.Module):
                    return None          # a module's own buffers: built, then moved with .to(device)
                return f"{Path(fn).name}:{f.f_lineno}"
            if "torch" not in fn and "tests" not in fn:
                return None
            f = f.f_back
        return None


FAMILIES = {
    "gan-2d": {"data.name": "ring8", "objective.r1": 0.1, "tricks.ema": 0.99, "tricks.instance_noise": 0.1,
               "tricks.minibatch_std": True},
    "wgan-gp-2d": {"data.name": "grid25", "objective.loss": "wgan", "objective.gp": 10.0, "optim.n_critic": 2},
    "gan-digits": {"data.name": "digits", "model.arch": "conv", "model.channels": 8, "tricks.ac": True,
                   "tricks.label_smoothing": 0.1, "objective.spectral_norm": "d"},
    "ae": {"data.name": "digits", "model.family": "ae", "model.arch": "conv", "model.channels": 8},
    "dae": {"data.name": "digits", "model.family": "dae", "model.channels": 8},
    "vae": {"data.name": "sprites", "data.n": 300, "model.family": "vae", "model.arch": "conv",
            "model.channels": 8},
    "aae": {"data.name": "ring8", "model.family": "aae"},
    "vaegan": {"data.name": "digits", "model.family": "vaegan", "model.arch": "conv", "model.channels": 8},
}


def _cfg(updates: dict, device: str) -> RunConfig:
    base = {"train.batch_size": 16, "train.steps": 50, "train.device": device, "train.n_fixed": 16}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return RunConfig().with_updates(**{**base, **updates}).validate()


@pytest.mark.parametrize("name", FAMILIES)
def test_training_code_places_every_new_tensor(name):
    cfg = _cfg(FAMILIES[name], "cpu")
    audit = DeviceAudit()
    with audit, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        tr = Trainer(cfg)
        tr.step(3)
        tr.step(1, "d")
        tr.step(1, "g")
        tr.snapshot()
        tr.evaluate(record=False)
    assert audit.unplaced == [], f"tensors created without a device: {sorted(set(audit.unplaced))}"


def test_the_audit_catches_an_unplaced_tensor():
    """The audit is not vacuous: a ganae function that forgets the device is reported."""
    from ganae import metrics
    audit = DeviceAudit()
    code = compile("def leak():\n    import torch\n    return torch.zeros(3)\n", str(Path(GANAE) / "fake.py"), "exec")
    scope: dict = {}
    exec(code, scope)
    with audit:
        scope["leak"]()
        torch.zeros(2)                       # from a test file: not ganae's code
        metrics.__name__                     # (nothing else recorded)
    assert audit.unplaced == ["zeros at fake.py:3"]


def _accelerator() -> str | None:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


@pytest.mark.skipif(_accelerator() is None, reason="needs a CUDA or mps GPU")
@pytest.mark.parametrize("name", FAMILIES)
def test_everything_lives_on_the_gpu(name):
    dev = _accelerator()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        tr = Trainer(_cfg(FAMILIES[name], dev))
    tr.step(5)
    tensors = []
    for obj in vars(tr).values():
        if isinstance(obj, torch.nn.Module):
            tensors += list(obj.parameters()) + list(obj.buffers())
        elif isinstance(obj, torch.optim.Optimizer):
            tensors += [v for st in obj.state.values() for k, v in st.items()
                        if isinstance(v, torch.Tensor) and k != "step"]
    assert tensors, "found no parameters on the trainer"
    off = [tuple(t.shape) for t in tensors if t.device.type != dev]
    assert off == [], f"left on {off[0] if off else ''}: {len(off)} tensors not on {dev}"
    s = tr.samples()
    assert s is None or s.device.type == dev
    m = tr.evaluate(record=False)
    assert all(isinstance(v, float) for v in m.values())
