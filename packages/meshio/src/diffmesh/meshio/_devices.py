"""Checking the ``device`` arguments of the meshio functions."""

from __future__ import annotations

import torch

__all__ = ["as_device"]


def as_device(device: str | torch.device | None) -> torch.device:
    """``torch.device(device)``, CPU for None, with errors that name the argument.

    Raises:
        TypeError: ``device`` is not a str, int or torch.device.
        ValueError: the string names no torch device type.
    """
    if device is None:
        return torch.device("cpu")
    if isinstance(device, torch.device):
        return device
    if isinstance(device, bool) or not isinstance(device, (str, int)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(
            f"device must name a torch device such as 'cpu' or 'cuda:0', got {device!r}"
        ) from err
