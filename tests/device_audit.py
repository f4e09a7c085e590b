"""A float64 audit for code meant to run on an accelerator, run on a CPU-only machine.

Apple's mps has no float64, and float64 on a GPU is slow, so no float64 tensor may live on
the model's device. The audit pretends the device is an accelerator: the parameters and
buffers of the given modules, every tensor a torch call computes from them, every tensor
created with an explicit `device=`, and every `.to(<device>)` result count as on the
device. `.cpu()`, `.to("cpu")`, `.tolist()`, `.item()` and `.numpy()` leave it; writing into
a host tensor in place keeps it on the host. Each float64 tensor on the device, and each
host float64 tensor fed to a device operation, is recorded with the line of saesteer code
that made it. Tensors made under a default-device context (`with torch.device(...)`) are
not seen; saesteer makes none.

A torch function mode sees every torch call, including `Tensor` methods that are no-ops on
a CPU (`.cpu()` of a CPU tensor), which is what lets a CPU run tell host from device."""

from __future__ import annotations

import contextlib
import traceback

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

_MARK = "_saesteer_on_device"
_LEAVE = {torch.Tensor.cpu, torch.Tensor.tolist, torch.Tensor.item, torch.Tensor.numpy}


def _on_device(value) -> bool:
    return isinstance(value, torch.Tensor) and getattr(value, _MARK, False)


def _mark(value) -> None:
    with contextlib.suppress(AttributeError, RuntimeError):  # a tensor without a __dict__
        setattr(value, _MARK, True)


def _points_to_device(target) -> bool | None:
    """Where a `device` argument points. The string "cpu" is the host; a `torch.device`
    is read as the model's device, since code gets it from the model's parameters (on this
    CPU-only machine it is `cpu` too); code that means the host writes "cpu" or `.cpu()`."""
    if isinstance(target, str):
        return target != "cpu"
    if isinstance(target, torch.device):
        return True
    if isinstance(target, torch.Tensor):  # `.to(other)`: where `other` is
        return _on_device(target)
    return None


def _in_place(func) -> bool:
    name = getattr(func, "__name__", "")
    return (
        name == "__setitem__"
        or (name.endswith("_") and not name.endswith("__"))
        or (name.startswith("__i") and name.endswith("__"))
    )


def _caller() -> str:
    frames = [f for f in traceback.extract_stack() if "/saesteer/" in f.filename]
    where = frames[-1] if frames else traceback.extract_stack()[-4]
    return f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno} {where.line}"


class Float64OnDevice(TorchFunctionMode):
    """`with Float64OnDevice(model, sae) as audit: ...`, then `audit.violations`."""

    def __init__(self, *modules: torch.nn.Module):
        super().__init__()
        self.modules = modules
        self.violations: list[str] = []
        self._marked: list[torch.Tensor] = []

    def __enter__(self):
        for module in self.modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                if not _on_device(tensor):
                    _mark(tensor)
                    self._marked.append(tensor)
        return super().__enter__()

    def __exit__(self, *exc):
        for tensor in self._marked:
            delattr(tensor, _MARK)
        self._marked.clear()
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in _LEAVE:
            # On a CPU `.cpu()` returns the tensor itself; the host copy is a new object.
            return out.view_as(out) if out is args[0] else out
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        if func is torch.Tensor.to:
            targets = [_points_to_device(t) for t in [*args[1:], kwargs.get("device")]]
            moved = next((t for t in targets if t is not None), None)
            on_device = _on_device(args[0]) if moved is None else moved
            if not on_device and out is args[0]:
                out = out.view_as(out)
        elif _in_place(func):
            # writing into a tensor leaves it where it is (a host buffer filled from the
            # device is a transfer)
            on_device = _on_device(args[0])
        elif kwargs.get("device") is not None:
            on_device = _points_to_device(kwargs["device"])
        else:
            on_device = any(map(_on_device, inputs))
        if not on_device:
            return out
        name = getattr(func, "__name__", str(func))
        for tensor in inputs if func is not torch.Tensor.to else []:  # `.to`: its output
            if tensor.dtype == torch.float64 and not _on_device(tensor):
                self.violations.append(f"{name}: a host float64 operand: {_caller()}")
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                _mark(tensor)
                if tensor.dtype == torch.float64:
                    self.violations.append(f"{name}: {_caller()}")
        return out
