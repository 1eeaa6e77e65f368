"""A module holding batched tensor parameters as buffers (cameras, lights, materials).

Every parameter is converted to a tensor on the requested device, given a leading
batch dimension and broadcast to the common batch size N (each parameter's batch
must be N or 1, as in PyTorch3D). Parameters are registered buffers, so
``module.to(device_or_dtype)`` moves and casts them, and tensors that require grad
keep their graph (a camera's R and T can be optimised).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["BatchedParams", "ParamSpec", "as_batched", "as_tensor", "broadcast_batch"]

#: ``(value, trailing_shape)``: a parameter and the shape of one batch element;
#: ``None`` in the trailing shape accepts any size along that axis.
ParamSpec = tuple[Any, tuple[int | None, ...]]

IndexLike = int | slice | Sequence[int] | torch.Tensor
_Self = TypeVar("_Self", bound="BatchedParams")


def _shape_matches(shape: tuple[int, ...], trailing: tuple[int | None, ...]) -> bool:
    return len(shape) == len(trailing) and all(
        t is None or s == t for s, t in zip(shape, trailing, strict=True)
    )


def _describe(trailing: tuple[int | None, ...]) -> str:
    dims = ", ".join("C" if t is None else str(t) for t in trailing)
    one = f"({dims})" if len(trailing) != 1 else f"({dims},)"
    return f"{one} or (N, {dims})" if dims else "a scalar or (N,)"


def as_tensor(name: str, value: Any, device: torch.device | str) -> torch.Tensor:
    """``value`` as a tensor on ``device``; TypeError for anything non-numeric."""
    if isinstance(value, torch.Tensor):
        tensor = value.to(device)
    else:
        try:
            tensor = torch.as_tensor(value, device=device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"{name} must be a number, a (nested) sequence of numbers or a tensor, "
                f"got {type(value).__name__}: {err}"
            ) from None
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {tensor.dtype}")
    return tensor


def as_batched(
    name: str, value: Any, trailing: tuple[int | None, ...], device: torch.device | str
) -> torch.Tensor:
    """``value`` of shape ``trailing`` (one element) or ``(B, *trailing)`` as a ``(B, *trailing)``
    tensor on ``device``; TypeError if non-numeric, ValueError naming the expected shapes."""
    tensor = as_tensor(name, value, device)
    if _shape_matches(tuple(tensor.shape), trailing):
        return tensor[None]
    if tensor.ndim >= 1 and _shape_matches(tuple(tensor.shape[1:]), trailing):
        return tensor
    raise ValueError(f"{name} must have shape {_describe(trailing)}, got {tuple(tensor.shape)}")


def broadcast_batch(named: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None) -> list[torch.Tensor]:
    """Expand tensors of batch B or 1 to the common batch B; the floating ones are promoted to
    one dtype (at least ``dtype`` when given), integer ones kept. ValueError naming two
    tensors of different batches."""
    batch, owner = 1, None
    for name, tensor in named.items():
        if len(tensor) != 1:
            if batch != 1 and len(tensor) != batch:
                raise ValueError(
                    f"{name} has batch size {len(tensor)} but {owner} has batch size "
                    f"{batch}; batch sizes must be equal or 1"
                )
            batch, owner = len(tensor), name
    dtypes = [t.dtype for t in named.values() if t.is_floating_point()]
    dtypes += [] if dtype is None else [dtype]
    common = functools.reduce(torch.promote_types, dtypes) if dtypes else None
    promoted = [t.to(common) if t.is_floating_point() else t for t in named.values()]
    return [t if len(t) == batch else t.expand(batch, *t.shape[1:]) for t in promoted]


class BatchedParams(nn.Module):
    """Base class: a batch of N parameter sets, stored as buffers of batch size N.

    Subclasses call ``_set_params`` once in ``__init__``; plain Python settings that
    indexing must carry over (e.g. ``degrees``) are listed in ``_STATIC_FIELDS``.
    Indexing (``obj[idx]``) gathers per-index parameters without re-running the
    subclass's validation, so it is cheap even for an index of millions of entries.
    """

    _STATIC_FIELDS: tuple[str, ...] = ()

    def _set_params(
        self, device: torch.device | str | None, params: Mapping[str, ParamSpec], *, integer: Sequence[str] = ()
    ) -> None:
        """Convert, broadcast and register ``params`` (name -> (value or None, trailing shape))
        as buffers on ``device`` (None: each tensor's own); ``integer`` names are int64, the
        rest share the promoted floating dtype (else float32). TypeError/ValueError if bad."""
        dev = None if device is None else torch.device(device)
        tensors = {}
        for name, (value, trailing) in params.items():
            if value is not None:
                own = value.device if isinstance(value, torch.Tensor) else torch.device("cpu")
                tensors[name] = as_batched(name, value, trailing, dev or own)
        given = [
            value.dtype
            for name, (value, _) in params.items()
            if name not in integer and isinstance(value, torch.Tensor) and value.is_floating_point()
        ]
        dtype = functools.reduce(torch.promote_types, given) if given else torch.float32
        typed = {n: t.to(torch.int64 if n in integer else dtype) for n, t in tensors.items()}
        batched = dict(zip(typed, broadcast_batch(typed), strict=True))
        for name in params:
            self.register_buffer(name, batched.get(name), persistent=False)
        self._batch_size = len(next(iter(batched.values())))
        self._param_names = tuple(params)

    # ---------------------------------------------------------------- batch
    def __len__(self) -> int:
        return self._batch_size

    def _reference(self) -> torch.Tensor:
        for name in self._param_names:
            tensor = getattr(self, name)
            if tensor is not None and tensor.is_floating_point():
                return tensor
        raise RuntimeError(f"{type(self).__name__} holds no floating-point parameter")

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return self._reference().device

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the parameters."""
        return self._reference().dtype

    def _index_tensor(self, index: IndexLike) -> torch.Tensor:
        """``index`` as 1-D int64 in-range batch positions (TypeError, IndexError otherwise)."""
        n = self._batch_size
        if isinstance(index, int) and not isinstance(index, bool):
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of range for a batch of {n}")
            return torch.tensor([index % n], device=self.device)
        if isinstance(index, slice):
            return torch.arange(n, device=self.device)[index]
        if isinstance(index, torch.Tensor):
            idx = index.to(self.device)
        elif isinstance(index, Sequence) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in index
        ):
            idx = torch.tensor(list(index), dtype=torch.int64, device=self.device)
        else:
            raise TypeError(
                "index must be an int, slice, list of ints, or a 1-D int64/bool tensor, "
                f"got {type(index).__name__}"
            )
        if idx.dtype == torch.bool:
            if idx.shape != (n,):
                raise IndexError(f"a bool index must have shape ({n},), got {tuple(idx.shape)}")
            return idx.nonzero()[:, 0]
        if idx.dtype not in (torch.int64, torch.int32) or idx.ndim != 1:
            raise TypeError(
                f"a tensor index must be 1-D int64 or bool, got dtype {idx.dtype} "
                f"and shape {tuple(idx.shape)}"
            )
        if n == 1:
            return idx  # a batch of 1 broadcasts: every entry selects it
        if bool(((idx < -n) | (idx >= n)).any()):
            raise IndexError(f"index out of range for a batch of {n}")
        return idx.long() % n

    def _new_like(self: _Self, buffers: Mapping[str, torch.Tensor | None], batch: int) -> _Self:
        """An instance of the same class holding ``buffers`` (no validation rerun)."""
        other = type(self).__new__(type(self))
        nn.Module.__init__(other)
        for field in self._STATIC_FIELDS:
            setattr(other, field, getattr(self, field))
        for name in self._param_names:
            other.register_buffer(name, buffers[name], persistent=False)
        other._batch_size = batch
        other._param_names = self._param_names
        return other

    def __getitem__(self: _Self, index: IndexLike) -> _Self:
        """The parameter sets at ``index`` (int, slice, ints, a 1-D int64 tensor of any length,
        or a bool mask), as an object of batch ``len(index)``; a batch of 1 broadcasts (any
        index selects it, as expanded views costing no memory)."""
        idx = self._index_tensor(index)
        count = int(idx.numel())
        gathered: dict[str, torch.Tensor | None] = {}
        for name in self._param_names:
            tensor = getattr(self, name)
            if tensor is None:
                gathered[name] = None
            elif len(tensor) == 1 or tensor.stride(0) == 0:
                gathered[name] = tensor[:1].expand(count, *tensor.shape[1:])
            else:
                gathered[name] = tensor[idx]
        return self._new_like(gathered, count)

    def clone(self: _Self) -> _Self:
        """A copy with its own parameter storage (differentiable, like Tensor.clone)."""
        buffers = {
            name: None if getattr(self, name) is None else getattr(self, name).clone()
            for name in self._param_names
        }
        return self._new_like(buffers, self._batch_size)

    def extra_repr(self) -> str:
        return f"N={self._batch_size}, dtype={self.dtype}, device={self.device}"
