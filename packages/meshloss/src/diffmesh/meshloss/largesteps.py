"""The Large Steps parameterization: vertices through ``u = M v`` with ``M = I + lambda L``.

Nicolet, Jacobson and Jakob, "Large Steps in Inverse Rendering of Geometry" (SIGGRAPH Asia
2021). A fit optimises ``u = M v`` instead of the vertices ``v``; the vertices are recovered
each iteration by solving ``M v = u``. A gradient step on ``u`` then moves ``v`` by
``M^-1`` times a step, a smoothed step (a Sobolev-preconditioned gradient descent): large
steps do not tangle the mesh and no smoothness penalty is needed.

``L = D - A`` is the combinatorial (uniform, graph) Laplacian of the mesh's unique edges
(``D`` the vertex degrees, ``A`` the adjacency), so ``M`` is symmetric positive definite
with eigenvalues in ``[1, 1 + 2 lambda max_degree]`` (alpha form: ``[1 - alpha, 1 - alpha
+ 2 alpha max_degree]``).

Solvers, all exact to the working precision (``method=``):

- ``"cholesky"``: a dense Cholesky factor (computed once, then two triangular solves per
  call), ``4 V^2`` bytes in float32; the default up to ``DENSE_MAX_VERTS`` vertices.
- ``"banded"``: a sparse direct solver (:mod:`._banded`): the vertices numbered level by
  level of a breadth-first search (Cuthill-McKee), which makes ``M`` block tridiagonal,
  and its block Cholesky factor, computed once; a solve is two sweeps of two small dense
  products per block. Storage ``sum_j s_j^2 + s_j s_{j-1}`` for blocks of ``s_j`` vertices
  (about ``2 V w`` for BFS levels of ``w`` vertices, ``V^1.5`` on a surface mesh:
  ico_sphere(5) 10 MB, ico_sphere(6) 83 MB in float32). The default above
  ``DENSE_MAX_VERTS`` vertices while the factor takes at most ``BANDED_MAX_BYTES``.
- ``"cg"``: Jacobi-preconditioned conjugate gradients on the sparse matrix, warm-started
  from the previous solution and stopped when every column's residual is below
  ``rtol |u|``; ``O(V)`` memory, the default beyond ``BANDED_MAX_BYTES`` (and for dtypes
  other than float32 and float64).

The banded and CG paths never form a dense ``V x V`` matrix.
"""

from __future__ import annotations

import math
import warnings

import torch
from diffmesh.meshcore import Meshes
from torch import Tensor

from ._banded import BlockOrdering, BlockTridiagonalCholesky, block_ordering

__all__ = [
    "BANDED_MAX_BYTES",
    "DENSE_MAX_VERTS",
    "LargeStepsMatrix",
    "from_differential",
    "largesteps_matrix",
    "to_differential",
]

#: Meshes with at most this many vertices (summed over the batch) are solved with a dense
#: Cholesky factor by default (``method="auto"``), larger ones with the banded factor: one
#: solve took 0.45 ms dense and 0.58 ms banded at ico_sphere(3) (642 vertices), 33 ms and
#: 2.1 ms at ico_sphere(4) (2562). The dense factor takes ``4 V^2`` bytes in float32 (4 MB
#: at this bound).
DENSE_MAX_VERTS = 1024

#: ``method="auto"`` uses the block-tridiagonal (banded) Cholesky factor when it takes at most
#: this many bytes, else CG (ico_sphere(6): 83 MB in float32; its growth is ``V^1.5``).
BANDED_MAX_BYTES = 256 * 2**20

_METHODS = ("auto", "banded", "cholesky", "cg")


class LargeStepsMatrix:
    """``M = I + lambda L`` (or ``(1 - alpha) I + alpha L``) of a packed mesh batch, with its
    solver and the solver's warm starts.

    Made by :func:`largesteps_matrix`; used by :func:`to_differential` and
    :func:`from_differential`. The matrix is constant; the object keeps the Cholesky factor
    (dense and banded methods, computed on first use) or the last forward and backward
    solutions (CG method, the next solves' starting points), so make one per fit, before
    the loop. One solve at a time (the banded solver keeps its work buffers).

    Attributes:
        rows, cols: ``(nnz,)`` long, the entries' indices (sorted by row, then column).
        values: ``(nnz,)`` float, the entries' values.
        diagonal: ``(V,)`` float, ``M``'s diagonal (the CG's Jacobi preconditioner).
        method: ``"cholesky"``, ``"banded"`` or ``"cg"``.
        rtol: CG stops when ``|r_j| <= rtol |u_j|`` for every column ``j``.
        max_iter: CG iteration limit (RuntimeError beyond it).
        iterations: CG iterations of the last solve (0 for the direct methods).
    """

    def __init__(
        self,
        rows: Tensor,
        cols: Tensor,
        values: Tensor,
        size: int,
        *,
        method: str,
        rtol: float,
        max_iter: int,
        ordering: BlockOrdering | None = None,
    ) -> None:
        self.rows, self.cols, self.values, self.size = rows, cols, values, size
        self.method = method
        self.rtol = rtol
        self.max_iter = max_iter
        self.iterations = 0
        self.diagonal = values.new_zeros(size).index_add_(
            0, rows[rows == cols], values[rows == cols]
        )
        self._csr: Tensor | None = None
        if values.device.type in ("cpu", "cuda") and values.dtype in (torch.float32, torch.float64):
            with warnings.catch_warnings():  # torch flags sparse CSR as beta on construction
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                crow = torch.zeros(size + 1, dtype=torch.int64, device=rows.device)
                crow[1:] = torch.bincount(rows, minlength=size).cumsum(0)
                self._csr = torch.sparse_csr_tensor(
                    crow, cols, values, (size, size), check_invariants=False
                )
        self._factor: Tensor | None = None
        self._ordering = ordering
        self._banded: BlockTridiagonalCholesky | None = None
        self._guess: dict[str, Tensor] = {}

    @property
    def shape(self) -> tuple[int, int]:
        """``(V, V)``."""
        return (self.size, self.size)

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def device(self) -> torch.device:
        return self.values.device

    def to_dense(self) -> Tensor:
        """``(V, V)`` dense copy of ``M`` (for tests and small meshes)."""
        dense = self.values.new_zeros(self.size, self.size)
        return dense.index_put_((self.rows, self.cols), self.values, accumulate=True)

    def matmul(self, x: Tensor) -> Tensor:
        """``M @ x`` for ``(V, C)`` ``x``, without autograd bookkeeping of ``M``."""
        if self._csr is not None:
            return self._csr @ x.contiguous()
        return x.new_zeros(x.shape).index_add_(
            0, self.rows, self.values.unsqueeze(1) * x.index_select(0, self.cols)
        )

    def solve(self, b: Tensor, slot: str = "forward") -> Tensor:
        """``M^-1 b`` for ``(V, C)`` ``b`` (no autograd); ``slot`` names the warm start."""
        if self.size == 0 or b.shape[1] == 0:
            self.iterations = 0
            return torch.zeros_like(b)
        if self.method == "banded":
            if self._banded is None:
                if self._ordering is None:
                    self._ordering = block_ordering(self.rows, self.cols, self.size)
                self._banded = BlockTridiagonalCholesky(
                    self.rows, self.cols, self.values, self._ordering
                )
            self.iterations = 0
            return self._banded.solve(b)
        if self.method == "cholesky":
            if self._factor is None:
                self._factor = torch.linalg.cholesky(self.to_dense())
            self.iterations = 0
            return torch.cholesky_solve(b, self._factor)
        guess = self._guess.get(slot)
        if guess is None or guess.shape != b.shape:
            guess = torch.zeros_like(b)
        x = self._conjugate_gradients(b, guess)
        self._guess[slot] = x
        return x

    def _conjugate_gradients(self, b: Tensor, x0: Tensor) -> Tensor:
        """Jacobi-preconditioned CG on every column of ``b`` at once (each column with its
        own step sizes), until every column's residual is below ``rtol |b_j|``.

        Lean on purpose (about 12 small kernels per iteration, no masks): a column that
        converges early keeps iterating with the others, which only refines it; the clamps
        keep an exactly solved column (zero residual) at zero steps instead of 0 / 0."""
        inv_diag = (1.0 / self.diagonal).unsqueeze(1)
        threshold = (self.rtol * torch.linalg.vector_norm(b, dim=0)).square()
        if not bool(torch.isfinite(threshold).all()):  # NaN/inf in, NaN out (as a direct solve)
            self.iterations = 0
            return torch.full_like(b, math.nan)
        tiny = torch.finfo(b.dtype).tiny
        x = torch.where(threshold > 0, x0, 0.0)  # a zero column's solution is zero
        r = b - self.matmul(x)
        if not bool((torch.linalg.vecdot(r, r, dim=0) > threshold).any()):
            self.iterations = 0
            return x
        z = inv_diag * r
        p = z.clone()
        rz = torch.linalg.vecdot(r, z, dim=0)
        for iteration in range(1, self.max_iter + 1):
            mp = self.matmul(p)
            step = rz / torch.linalg.vecdot(p, mp, dim=0).clamp_min(tiny)
            x.addcmul_(p, step)
            r.addcmul_(mp, step, value=-1.0)
            if not bool((torch.linalg.vecdot(r, r, dim=0) > threshold).any()):
                self.iterations = iteration
                return x
            z = inv_diag * r
            rz_new = torch.linalg.vecdot(r, z, dim=0)
            p.mul_(rz_new / rz.clamp_min(tiny)).add_(z)
            rz = rz_new
        residual = (
            torch.linalg.vector_norm(r, dim=0) / torch.linalg.vector_norm(b, dim=0)
        ).tolist()
        raise RuntimeError(
            f"largesteps: conjugate gradients did not reach rtol={self.rtol:g} in "
            f"{self.max_iter} iterations (relative residuals {residual})"
        )


def _system_entries(
    meshes: Meshes, diag_weight: float, lap_weight: float, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, int]:
    """Entries of ``diag_weight I + lap_weight (D - A)``, sorted by (row, col)."""
    num_verts = meshes.verts_packed().shape[0]
    device = meshes.device
    edges = meshes.edges_packed()
    edges = edges[edges[:, 0] != edges[:, 1]]  # a face with a repeated index has no such edge
    directed_rows = torch.cat([edges[:, 0], edges[:, 1]])
    directed_cols = torch.cat([edges[:, 1], edges[:, 0]])
    degree = torch.bincount(directed_rows, minlength=num_verts).to(dtype)
    diagonal = torch.arange(num_verts, device=device)
    rows = torch.cat([directed_rows, diagonal])
    cols = torch.cat([directed_cols, diagonal])
    values = torch.cat(
        [
            torch.full((directed_rows.shape[0],), -lap_weight, dtype=dtype, device=device),
            diag_weight + lap_weight * degree,
        ]
    )
    order = torch.argsort(rows * max(num_verts, 1) + cols)
    return rows[order], cols[order], values[order], num_verts


def largesteps_matrix(
    meshes: Meshes,
    lambda_: float = 10.0,
    *,
    alpha: float | None = None,
    method: str = "auto",
    rtol: float | None = None,
    max_iter: int | None = None,
    dtype: torch.dtype | None = None,
) -> LargeStepsMatrix:
    """Build the Large Steps system matrix of a mesh batch (the reference's ``compute_matrix``).

    ``M = I + lambda_ L`` or, when ``alpha`` is given, ``M = (1 - alpha) I + alpha L``, with
    ``L = D - A`` the combinatorial Laplacian of ``meshes.edges_packed()`` (a batch gives a
    block-diagonal ``M`` over the packed vertices). Build it once per topology, before the
    fitting loop.

    Args:
        meshes: N meshes (their vertices' positions are not used, only their edges).
        lambda_: ``lambda >= 0``; larger is smoother (and slower to reach fine detail).
        alpha: instead of ``lambda_``, ``alpha in [0, 1)`` (the scale of ``M`` varies less).
        method: ``"cholesky"`` (dense factor, ``V^2`` memory), ``"banded"`` (block-
            tridiagonal Cholesky factor in a breadth-first level order, about ``V^1.5``
            memory on a surface mesh), ``"cg"`` (warm-started preconditioned conjugate
            gradients, ``O(V)`` memory) or ``"auto"`` (``"cholesky"`` up to
            ``DENSE_MAX_VERTS`` vertices, else ``"banded"`` while its factor takes at most
            ``BANDED_MAX_BYTES``, else ``"cg"``).
        rtol: CG's relative residual target per column; default ``16 eps`` of ``dtype``
            (1.9e-6 in float32), i.e. the solution is exact to working precision up to
            ``M``'s condition number, as a direct solve's is.
        max_iter: CG iteration limit; default four times the textbook bound
            ``0.5 sqrt(kappa) ln(2 / rtol)`` with ``kappa <= 1 + 2 lambda max_degree``.
        dtype: the matrix's dtype; default the vertices' dtype.

    Returns:
        The matrix with its solver; ``shape == (V, V)``, ``V = sum_n V_n``.

    Raises:
        TypeError: ``meshes`` is not a Meshes.
        ValueError: ``lambda_ < 0``, ``alpha`` outside ``[0, 1)``, an unknown ``method``, or
            ``rtol``/``max_iter`` not positive.

    Example:
        >>> from diffmesh.meshio import ico_sphere
        >>> sphere = ico_sphere(3)
        >>> matrix = largesteps_matrix(sphere, lambda_=10.0)
        >>> u = to_differential(matrix, sphere.verts_packed()).requires_grad_()
        >>> verts = from_differential(matrix, u)  # differentiable w.r.t. u
    """
    if not isinstance(meshes, Meshes):
        raise TypeError(f"meshes must be a Meshes, got {type(meshes).__name__}")
    if alpha is not None:
        if not (0.0 <= alpha < 1.0):
            raise ValueError(f"alpha must be in [0, 1), got {alpha}")
        diag_weight, lap_weight = 1.0 - alpha, float(alpha)
    else:
        if not (math.isfinite(lambda_) and lambda_ >= 0):
            raise ValueError(f"lambda_ must be a finite number >= 0, got {lambda_}")
        diag_weight, lap_weight = 1.0, float(lambda_)
    if method not in _METHODS:
        raise ValueError(f'method must be "auto", "banded", "cholesky" or "cg", got {method!r}')
    dtype = dtype or meshes.verts_packed().dtype
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    if rtol is None:
        rtol = 16.0 * torch.finfo(dtype).eps
    if not rtol > 0:
        raise ValueError(f"rtol must be positive, got {rtol}")
    rows, cols, values, size = _system_entries(meshes, diag_weight, lap_weight, dtype)
    if max_iter is None:
        degree = torch.bincount(rows, minlength=size)  # row lengths: degree + 1
        max_degree = int(degree.max()) - 1 if size else 0
        kappa = (diag_weight + 2.0 * lap_weight * max_degree) / diag_weight
        max_iter = 4 * math.ceil(0.5 * math.sqrt(kappa) * math.log(2.0 / rtol)) + 20
    if max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter}")
    ordering = None
    if method == "auto" and size <= DENSE_MAX_VERTS:
        method = "cholesky"
    elif method == "auto":
        method = "cg"
        if dtype in (torch.float32, torch.float64):
            ordering = block_ordering(rows, cols, size)
            if ordering.factor_numel() * values.element_size() <= BANDED_MAX_BYTES:
                method = "banded"
    return LargeStepsMatrix(
        rows, cols, values, size, method=method, rtol=rtol, max_iter=max_iter, ordering=ordering
    )


def _check(matrix: LargeStepsMatrix, x: Tensor, name: str) -> tuple[Tensor, bool]:
    """``x`` as ``(V, C)`` (and whether it was ``(V,)``), after checking it."""
    if not isinstance(matrix, LargeStepsMatrix):
        raise TypeError(
            f"matrix must be a LargeStepsMatrix (from largesteps_matrix), got "
            f"{type(matrix).__name__}"
        )
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
    if x.dim() not in (1, 2) or x.shape[0] != matrix.size:
        raise ValueError(
            f"{name} must have shape ({matrix.size},) or ({matrix.size}, C), got {tuple(x.shape)}"
        )
    if x.dtype != matrix.dtype or x.device != matrix.device:
        raise ValueError(
            f"{name} must be {matrix.dtype} on {matrix.device} like the matrix, got "
            f"{x.dtype} on {x.device}"
        )
    return (x.unsqueeze(1), True) if x.dim() == 1 else (x, False)


class _Product(torch.autograd.Function):
    """``M @ x``; ``M`` is symmetric, so the backward is ``M @ grad``."""

    @staticmethod
    def forward(ctx, matrix: LargeStepsMatrix, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.matrix = matrix
        return matrix.matmul(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, _Product.apply(ctx.matrix, grad)


class _Solve(torch.autograd.Function):
    """``M^-1 u``; ``M`` is symmetric, so the backward is another solve, ``M^-1 grad``
    (itself differentiable: second derivatives are solves too)."""

    @staticmethod
    def forward(ctx, matrix: LargeStepsMatrix, u: Tensor, slot: str) -> Tensor:  # type: ignore[override]
        ctx.matrix = matrix
        ctx.slot = slot
        return matrix.solve(u, slot)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor, None]:  # type: ignore[override]
        slot = "backward" if ctx.slot == "forward" else ctx.slot + "'"
        return None, _Solve.apply(ctx.matrix, grad.contiguous(), slot), None


def to_differential(matrix: LargeStepsMatrix, verts: Tensor) -> Tensor:
    """Differential coordinates ``u = M v`` (differentiable w.r.t. ``verts``).

    Args:
        matrix: from :func:`largesteps_matrix`.
        verts: ``(V, C)`` or ``(V,)`` float, e.g. ``meshes.verts_packed()``.

    Returns:
        ``u``, the shape of ``verts``.

    Raises:
        TypeError, ValueError: a wrong type, shape, dtype or device.
    """
    x, vector = _check(matrix, verts, "verts")
    out = _Product.apply(matrix, x)
    return out.squeeze(1) if vector else out


def from_differential(matrix: LargeStepsMatrix, u: Tensor) -> Tensor:
    """Vertices from differential coordinates: the solution ``v`` of ``M v = u``.

    Differentiable w.r.t. ``u``: the backward pass solves ``M g_u = g_v`` (``M`` is
    symmetric) with the same solver, its CG warm-started from the previous backward solve.

    Args:
        matrix: from :func:`largesteps_matrix`.
        u: ``(V, C)`` or ``(V,)`` float, e.g. from :func:`to_differential`.

    Returns:
        ``v``, the shape of ``u``.

    Raises:
        TypeError, ValueError: a wrong type, shape, dtype or device.
        RuntimeError: CG did not converge within ``matrix.max_iter`` iterations. A
            non-finite ``u`` gives NaN vertices, as a direct solve would.
    """
    x, vector = _check(matrix, u, "u")
    out = _Solve.apply(matrix, x.contiguous(), "forward")
    return out.squeeze(1) if vector else out
