"""Device selection: ``auto``, ``cpu``, ``cuda`` (or ``cuda:N``) and ``mps``.

torch is imported when a device is resolved, not with this module, so that the command
line's ``--help`` and ``--version`` never load it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_CHOICES", "resolve_device"]

#: What ``--device`` accepts (``cuda:N`` is accepted too).
DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """Turn a ``--device`` value into a torch device that exists on this machine.

    ``auto`` picks CUDA when available, then MPS, then the CPU.

    Args:
        name: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Returns:
        The device.

    Raises:
        ValueError: an unknown name, or an accelerator that this machine or this torch
            build does not have.
    """
    import torch

    if not isinstance(name, str):
        raise TypeError(f"device: expected a string such as 'auto' or 'cpu', got {type(name).__name__}")
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", key)
    if match:
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device: {name!r} was asked for but CUDA is not available here "
                "(no GPU or a CPU-only torch); use --device cpu or auto"
            )
        index = int(match.group(1) or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(f"--device: {name!r} was asked for but this machine has {count} CUDA device(s)")
        return torch.device("cuda", index)
    if key == "mps":
        if not _mps_available():
            raise ValueError("--device: 'mps' was asked for but MPS is not available here; use --device cpu or auto")
        return torch.device("mps")
    raise ValueError(f"--device: expected one of auto, cpu, cuda, cuda:N, mps, got {name!r}")
