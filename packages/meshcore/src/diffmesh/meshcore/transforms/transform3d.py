"""Batched 4x4 homogeneous transforms in PyTorch3D's row-vector convention.

A point is a row vector: ``[X', w] = [X, 1] @ M``, so ``M[:3, :3]`` is the linear
part, ``M[3, :3]`` the translation and ``M[:, 3]`` produces the homogeneous
coordinate ``w`` that ``transform_points`` divides by. ``a.compose(b)`` applies
``a`` first, then ``b`` (matrix ``A @ B``).
"""

from __future__ import annotations

import torch

__all__ = ["Transform3d"]

IndexLike = int | slice | list[int] | torch.Tensor


def _broadcast_batch(n_a: int, n_b: int, name_a: str, name_b: str) -> int:
    """Common batch size of two batch sizes that are equal or 1."""
    if n_a != n_b and n_a != 1 and n_b != 1:
        raise ValueError(
            f"{name_a} has batch size {n_a} and {name_b} has batch size {n_b}; "
            "expected equal batch sizes or one of them 1"
        )
    return max(n_a, n_b)


def _check_matrix(matrix: object) -> torch.Tensor:
    if not isinstance(matrix, torch.Tensor) or not matrix.is_floating_point():
        raise TypeError(
            f"matrix must be a floating-point torch.Tensor, got {type(matrix).__name__}"
            + (f" of dtype {matrix.dtype}" if isinstance(matrix, torch.Tensor) else "")
        )
    if matrix.ndim == 2:
        matrix = matrix[None]
    if matrix.ndim != 3 or matrix.shape[1:] != (4, 4):
        raise ValueError(f"matrix must have shape (4, 4) or (N, 4, 4), got {tuple(matrix.shape)}")
    return matrix


class Transform3d:
    """A batch of N homogeneous 4x4 transforms, applied to row-vector points.

    Unlike PyTorch3D's lazily composed ``Transform3d``, the matrix is held already
    composed: ``compose`` multiplies at once (4x4 products are cheap) and every
    method reads one ``(N, 4, 4)`` tensor. Transforms built from ``Translate``,
    ``Rotate``, ``Scale`` and ``RotateAxisAngle`` (and compositions and stacks of
    them) also carry their closed-form inverse, so ``inverse()`` of a rigid chain is
    exact, as with PyTorch3D's ``invert_composed=False``. All operations are
    differentiable w.r.t. the matrices. Batch sizes combine as in PyTorch3D: equal,
    or one of them 1 (broadcast).

    Args:
        matrix: ``(4, 4)`` or ``(N, 4, 4)`` float, row-vector convention
            (``[X, 1] @ matrix``); its dtype and device are kept. ``None`` gives the
            identity, ``(1, 4, 4)``. (PyTorch3D's first positional argument is
            ``dtype``; pass ``dtype=``/``device=`` by keyword.)
        dtype: dtype of the identity when ``matrix`` is None.
        device: device of the identity when ``matrix`` is None.

    Raises:
        TypeError: ``matrix`` is not a floating-point tensor.
        ValueError: ``matrix`` is not ``(4, 4)`` or ``(N, 4, 4)``.
    """

    def __init__(
        self,
        matrix: torch.Tensor | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if matrix is None:
            matrix = torch.eye(4, dtype=dtype, device=device)[None]
            self._inverse: torch.Tensor | None = matrix
        else:
            self._inverse = None
        self._matrix = _check_matrix(matrix)

    @classmethod
    def _with_inverse(cls, matrix: torch.Tensor, inverse: torch.Tensor | None) -> Transform3d:
        """A Transform3d holding ``matrix`` and its known inverse (no validation)."""
        out = Transform3d.__new__(Transform3d)
        out._matrix = matrix
        out._inverse = inverse
        return out

    # ------------------------------------------------------------------ basics
    def get_matrix(self) -> torch.Tensor:
        """The composed transform.

        Returns:
            ``(N, 4, 4)`` float, row-vector convention.
        """
        return self._matrix

    def __len__(self) -> int:
        return self._matrix.shape[0]

    def __getitem__(self, index: IndexLike) -> Transform3d:
        """Transforms selected along the batch dimension (always kept batched).

        Args:
            index: int, slice, list of ints, or an int64 / bool tensor.
        """
        if isinstance(index, int):
            index = [index]
        inverse = None if self._inverse is None else self._inverse[index]
        return Transform3d._with_inverse(self._matrix[index], inverse)

    @property
    def device(self) -> torch.device:
        return self._matrix.device

    @property
    def dtype(self) -> torch.dtype:
        return self._matrix.dtype

    def to(
        self,
        device: torch.device | str | None = None,
        copy: bool = False,
        dtype: torch.dtype | None = None,
    ) -> Transform3d:
        """A transform on ``device`` with ``dtype`` (differentiable).

        Args:
            device: target device (None keeps it).
            copy: return a copy even when nothing changes (else ``self``).
            dtype: target floating dtype (None keeps it).
        """
        same_device = device is None or torch.device(device) == self.device
        if not copy and same_device and (dtype is None or dtype == self.dtype):
            return self
        inverse = None if self._inverse is None else self._inverse.to(device=device, dtype=dtype)
        return Transform3d._with_inverse(self._matrix.to(device=device, dtype=dtype), inverse)

    def cpu(self) -> Transform3d:
        return self.to("cpu")

    def cuda(self) -> Transform3d:
        return self.to("cuda")

    def clone(self) -> Transform3d:
        """A copy with its own matrix storage (gradients still flow to the original)."""
        inverse = None if self._inverse is None else self._inverse.clone()
        return Transform3d._with_inverse(self._matrix.clone(), inverse)

    # ------------------------------------------------------------- algebra
    def compose(self, *others: Transform3d) -> Transform3d:
        """The transform applying ``self`` first, then each of ``others`` in order.

        Batch sizes must be equal or 1 (a batch of 1 broadcasts).

        Args:
            *others: transforms to apply after this one.

        Returns:
            A Transform3d of batch ``max(N, N_other...)``.
        """
        matrix, inverse = self._matrix, self._inverse
        for i, other in enumerate(others):
            if not isinstance(other, Transform3d):
                raise TypeError(
                    f"compose expects Transform3d arguments, argument {i} is {type(other).__name__}"
                )
            _broadcast_batch(len(matrix), len(other), "this transform", f"argument {i}")
            dtype = torch.promote_types(matrix.dtype, other.dtype)
            other_matrix = other.get_matrix().to(device=matrix.device, dtype=dtype)
            matrix = matrix.to(dtype) @ other_matrix
            if inverse is not None and other._inverse is not None:
                other_inverse = other._inverse.to(device=matrix.device, dtype=dtype)
                inverse = other_inverse @ inverse.to(dtype)
            else:
                inverse = None
        return Transform3d._with_inverse(matrix, inverse)

    def inverse(self, invert_composed: bool = False) -> Transform3d:
        """The inverse transform.

        The closed-form inverse when the transform was built from ``Translate``,
        ``Rotate``, ``Scale``, ``RotateAxisAngle`` (composed or stacked), else
        ``torch.linalg.inv`` of each 4x4 matrix.

        Args:
            invert_composed: accepted for PyTorch3D compatibility; the matrix is
                always the composed one, so both choices give the same result.
        """
        if self._inverse is not None:
            return Transform3d._with_inverse(self._inverse, self._matrix)
        return Transform3d._with_inverse(torch.linalg.inv(self._matrix), self._matrix)

    def stack(self, *others: Transform3d) -> Transform3d:
        """Concatenate the batches of ``self`` and ``others`` (batch sum(N_i)).

        Args:
            *others: transforms to append (moved to this transform's device and
                promoted to a common dtype).
        """
        parts = [self]
        for i, other in enumerate(others):
            if not isinstance(other, Transform3d):
                raise TypeError(
                    f"stack expects Transform3d arguments, argument {i} is {type(other).__name__}"
                )
            parts.append(other)
        dtype = self.dtype
        for other in others:
            dtype = torch.promote_types(dtype, other.dtype)
        matrix = torch.cat([t.get_matrix().to(device=self.device, dtype=dtype) for t in parts])
        inverse = None
        if all(t._inverse is not None for t in parts):
            inverse = torch.cat([t._inverse.to(device=self.device, dtype=dtype) for t in parts])
        return Transform3d._with_inverse(matrix, inverse)

    # ------------------------------------------------------ chained builders
    def translate(self, *args: object, **kwargs: object) -> Transform3d:
        """``self.compose(Translate(*args, **kwargs))`` on this transform's device."""
        from .builders import Translate

        kwargs.setdefault("device", self.device)
        return self.compose(Translate(*args, **kwargs))  # type: ignore[arg-type]

    def scale(self, *args: object, **kwargs: object) -> Transform3d:
        """``self.compose(Scale(*args, **kwargs))`` on this transform's device."""
        from .builders import Scale

        kwargs.setdefault("device", self.device)
        return self.compose(Scale(*args, **kwargs))  # type: ignore[arg-type]

    def rotate(self, *args: object, **kwargs: object) -> Transform3d:
        """``self.compose(Rotate(*args, **kwargs))`` on this transform's device."""
        from .builders import Rotate

        kwargs.setdefault("device", self.device)
        return self.compose(Rotate(*args, **kwargs))  # type: ignore[arg-type]

    def rotate_axis_angle(self, *args: object, **kwargs: object) -> Transform3d:
        """``self.compose(RotateAxisAngle(*args, **kwargs))`` on this transform's device."""
        from .builders import RotateAxisAngle

        kwargs.setdefault("device", self.device)
        return self.compose(RotateAxisAngle(*args, **kwargs))  # type: ignore[arg-type]

    # ---------------------------------------------------------- application
    def _prepare(self, points: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``points`` and return (points as (B, P, 3), matrix), same dtype."""
        if not isinstance(points, torch.Tensor) or not points.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point torch.Tensor, got {type(points).__name__}"
                + (f" of dtype {points.dtype}" if isinstance(points, torch.Tensor) else "")
            )
        if points.ndim not in (2, 3) or points.shape[-1] != 3:
            raise ValueError(
                f"{name} must have shape (P, 3) or (N, P, 3), got {tuple(points.shape)}"
            )
        batched = points if points.ndim == 3 else points[None]
        _broadcast_batch(len(batched), len(self), name, "the transform")
        dtype = torch.promote_types(points.dtype, self.dtype)
        matrix = self._matrix.to(device=points.device, dtype=dtype)
        return batched.to(dtype), matrix

    def transform_points(self, points: torch.Tensor, eps: float | None = None) -> torch.Tensor:
        """Apply the transform, then divide by the homogeneous coordinate.

        ``out = ([X, 1] @ M)[:3] / w`` with ``w = ([X, 1] @ M)[3]``. With ``eps``,
        ``w`` is replaced by ``sign(w) * max(|w|, eps)`` where ``sign(0) = +1``
        (PyTorch3D's clamp), so points on the camera plane stay finite.

        Args:
            points: ``(P, 3)`` or ``(N, P, 3)`` float. A ``(P, 3)`` input is used for
                every transform of the batch.
            eps: optional lower bound on ``|w|``.

        Returns:
            ``(N, P, 3)`` float, or ``(P, 3)`` when the input is ``(P, 3)`` and the
            transform has batch 1.
        """
        batched, matrix = self._prepare(points, "points")
        out = torch.matmul(batched, matrix[:, :3, :]).add_(matrix[:, 3:, :])
        w = out[..., 3:]
        if eps is not None:
            sign = torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
            w = sign * w.abs().clamp_min(eps)
        out = out[..., :3] / w
        if points.ndim == 2 and out.shape[0] == 1:
            out = out[0]
        return out

    def transform_normals(self, normals: torch.Tensor) -> torch.Tensor:
        """Transform direction normals by the inverse-transpose of the linear part.

        ``out = n @ inv(M[:3, :3])^T`` (PyTorch3D's formula; translation and the
        projective column are ignored).

        Args:
            normals: ``(P, 3)`` or ``(N, P, 3)`` float.

        Returns:
            ``(N, P, 3)`` float (``(P, 3)`` for a ``(P, 3)`` input and batch 1); not
            renormalised.
        """
        batched, matrix = self._prepare(normals, "normals")
        if self._inverse is not None:
            linear_inv = self._inverse[:, :3, :3].to(device=matrix.device, dtype=matrix.dtype)
        else:
            linear_inv = torch.linalg.inv(matrix[:, :3, :3])
        out = batched @ linear_inv.transpose(1, 2)
        if normals.ndim == 2 and out.shape[0] == 1:
            out = out[0]
        return out

    def __repr__(self) -> str:
        return f"Transform3d(N={len(self)}, dtype={self.dtype}, device={self.device})"
