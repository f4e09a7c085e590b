"""A float64 audit for code meant to run on an accelerator, run on a CPU-only machine.

Apple's mps has no float64, and float64 on a GPU is slow, so no float64 tensor may live on
the model's device. The audit pretends the device is an accelerator: the parameters and
buffers of the given modules, every tensor a torch call computes from them, every tensor
created with an explicit `device=`, and every `.to(<device>)` result count as on the
device. `.cpu()`, `.to("cpu")`, `.tolist()`, `.item()` and `.numpy()` leave it. Each float64
tensor on the device is recorded with the line of saesteer code that made it.

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


def _to_result_on_device(args, kwargs) -> bool | None:
    """For `Tensor.to`: True if it moves to a device, False if to the host, None if it only
    changes the dtype (the result stays where its input was)."""
    targets = [*args[1:], kwargs.get("device")]
    for target in targets:
        if isinstance(target, str):
            return target != "cpu"
        if isinstance(target, torch.device):
            return True  # the model's device; code that means the host says .cpu()
        if isinstance(target, torch.Tensor):
            return _on_device(target)
    return None


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
        if func is torch.Tensor.to and (moved := _to_result_on_device(args, kwargs)) is not None:
            on_device = moved
            if not moved and out is args[0]:
                out = out.view_as(out)
        else:
            inputs = tree_flatten((args, kwargs))[0]
            on_device = kwargs.get("device") is not None or any(map(_on_device, inputs))
        if on_device:
            for tensor in tree_flatten(out)[0]:
                if isinstance(tensor, torch.Tensor):
                    _mark(tensor)
                    if tensor.dtype == torch.float64:
                        self.violations.append(f"{func.__name__}: {_caller()}")
        return out
