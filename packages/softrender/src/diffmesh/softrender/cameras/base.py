"""What every camera shares: extrinsics, the world -> view -> NDC -> screen chain.

Conventions (PyTorch3D's): points are row vectors and ``X_view = X_world @ R + T``;
view space has +X left, +Y up, +Z into the screen. NDC has +X left, +Y up; on a
non-square image the shorter side spans [-1, 1] and the longer side
[-u, u] with u = long / short. Screen space is in pixels with (0, 0) at the image's
top-left corner, +x right and +y down, so NDC (+1, +1) maps to screen (0, 0) on a
square image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from diffmesh.meshcore.transforms import Transform3d

from .batched import BatchedParams, ParamSpec, _as_tensor, broadcast_batch

__all__ = [
    "CamerasBase",
    "get_ndc_to_screen_transform",
    "get_screen_to_ndc_transform",
    "get_world_to_view_transform",
]

ImageSize = int | Sequence[int] | Sequence[Sequence[int]] | torch.Tensor


def _image_size_tensor(
    image_size: ImageSize, batch: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``image_size`` as a ``(B, 2)`` float (height, width) tensor, B in {1, batch}."""
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    if isinstance(image_size, torch.Tensor):
        size = image_size.to(device=device)
    else:
        try:
            size = torch.as_tensor(image_size, device=device)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "image_size must be an int, an (H, W) pair, a (B, 2) sequence or tensor, "
                f"got {type(image_size).__name__}"
            ) from None
    if size.dtype == torch.bool or size.is_complex():
        raise TypeError(f"image_size must be real-valued, got dtype {size.dtype}")
    if size.ndim == 1 and size.shape[0] == 2:
        size = size[None]
    if size.ndim != 2 or size.shape[1] != 2:
        raise ValueError(
            f"image_size must be an int, an (H, W) pair or (B, 2), got shape {tuple(size.shape)}"
        )
    if len(size) not in (1, batch):
        raise ValueError(f"image_size has batch size {len(size)}; expected 1 or {batch}")
    if not bool(torch.isfinite(size).all()) or bool((size < 1).any()):
        raise ValueError(f"image_size must be >= 1 pixel, got {size.tolist()}")
    return size.to(dtype)


def _xy_affine(scale: torch.Tensor, tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """Row-vector matrices ``(B, 4, 4)``: x, y times ``scale`` (B,) plus (tx, ty) (B,); z kept."""
    zeros, ones = torch.zeros_like(scale), torch.ones_like(scale)
    rows = [
        torch.stack([scale, zeros, zeros, zeros], dim=1),
        torch.stack([zeros, scale, zeros, zeros], dim=1),
        torch.stack([zeros, zeros, ones, zeros], dim=1),
        torch.stack([tx, ty, zeros, ones], dim=1),
    ]
    return torch.stack(rows, dim=1)


def _ndc_to_screen_matrix(size: torch.Tensor, with_xyflip: bool) -> torch.Tensor:
    """Row-vector matrices NDC -> screen, ``(B, 4, 4)``, for ``size`` (B, 2) = (H, W)."""
    height, width = size.unbind(1)
    scale = size.min(dim=1).values / 2.0
    flip = -1.0 if with_xyflip else 1.0
    # x_s = flip * (scale * x - W / 2); y_s likewise; z unchanged.
    return _xy_affine(flip * scale, -flip * width / 2.0, -flip * height / 2.0)


def _screen_to_ndc_matrix(size: torch.Tensor, with_xyflip: bool) -> torch.Tensor:
    """Closed-form inverse of ``_ndc_to_screen_matrix``, ``(B, 4, 4)``."""
    height, width = size.unbind(1)
    inv_scale = 2.0 / size.min(dim=1).values
    flip = -1.0 if with_xyflip else 1.0
    # x = (flip * x_s + W / 2) / scale
    return _xy_affine(flip * inv_scale, width / 2.0 * inv_scale, height / 2.0 * inv_scale)


def get_ndc_to_screen_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """PyTorch3D's NDC -> screen transform (batch N or 1) for ``image_size`` (H, W), an int,
    or (N, 2): ``x_s = W/2 - s x``, ``y_s = H/2 - s y``, ``s = min(H, W) / 2`` with
    ``with_xyflip``; without it ``x_s = s x - W/2`` (PyTorch3D's intermediate); z unchanged."""
    if image_size is None:
        raise ValueError("image_size=(height, width) is needed for the NDC <-> screen conversion")
    size = _image_size_tensor(image_size, len(cameras), cameras.device, cameras.dtype)
    return Transform3d(_ndc_to_screen_matrix(size, with_xyflip))


def get_screen_to_ndc_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """Inverse of ``get_ndc_to_screen_transform`` (same arguments)."""
    if image_size is None:
        raise ValueError("image_size=(height, width) is needed for the NDC <-> screen conversion")
    size = _image_size_tensor(image_size, len(cameras), cameras.device, cameras.dtype)
    return Transform3d(_screen_to_ndc_matrix(size, with_xyflip))


def _world_to_view_matrix(R: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """``(N, 4, 4)`` row-vector matrix [[R, 0], [T, 1]] (differentiable)."""
    top = torch.cat([R, torch.zeros_like(R[:, :, :1])], dim=2)
    bottom = torch.cat([T, torch.ones_like(T[:, :1])], dim=1)[:, None]
    return torch.cat([top, bottom], dim=1)


def _check_batched(name: str, value: object, trailing: tuple[int, ...]) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    if value.ndim != len(trailing) + 1 or tuple(value.shape[1:]) != trailing:
        dims = ", ".join(str(d) for d in trailing)
        raise ValueError(f"{name} must have shape (N, {dims}), got {tuple(value.shape)}")
    return value


def _check_extrinsics(R: object, T: object) -> tuple[torch.Tensor, torch.Tensor]:
    """``R`` (N, 3, 3) and ``T`` (N, 3), batch sizes equal or 1, broadcast."""
    R = _check_batched("R", R, (3, 3))
    T = _check_batched("T", T, (3,))
    if len(R) != len(T) and len(R) != 1 and len(T) != 1:
        raise ValueError(f"R has batch size {len(R)} but T has batch size {len(T)}")
    n = len(T) if len(R) == 1 else len(R)
    dtype = torch.promote_types(R.dtype, T.dtype)
    return R.to(dtype).expand(n, 3, 3), T.to(device=R.device, dtype=dtype).expand(n, 3)


def get_world_to_view_transform(
    R: torch.Tensor | None = None, T: torch.Tensor | None = None
) -> Transform3d:
    """World -> view ``X_view = X_world @ R + T``, matrix ``[[R, 0], [T, 1]]``, for ``R`` (N, 3, 3)
    (default identity) and ``T`` (N, 3) (default zero), batch sizes equal or 1."""
    if R is None:
        like = T if isinstance(T, torch.Tensor) else torch.zeros(())
        R = torch.eye(3, dtype=like.dtype, device=like.device)[None]
    if T is None:
        T = torch.zeros(1, 3, dtype=R.dtype, device=R.device)
    R, T = _check_extrinsics(R, T)
    _check_finite_extrinsics(R=R, T=T)
    return Transform3d(_world_to_view_matrix(R, T))


def _check_finite_extrinsics(**tensors: torch.Tensor | None) -> None:
    """ValueError naming the parameter and camera of the first NaN or inf (else: an empty image)."""
    for name, tensor in tensors.items():
        if tensor is None:
            continue
        finite = torch.isfinite(tensor.detach()).reshape(len(tensor), -1).all(1)
        if not bool(finite.all()):
            camera = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"{name} must be finite, got NaN or inf in camera {camera}: "
                f"{tensor[camera].detach().cpu().tolist()}"
            )


class CamerasBase(BatchedParams):
    """Base of the cameras: R (N, 3, 3), T (N, 3) buffers and the transform chain.

    Subclasses provide ``get_projection_transform`` (view -> NDC, or -> screen for
    ``PerspectiveCameras(in_ndc=False)``), ``is_perspective`` and, if needed,
    ``get_znear`` / ``in_ndc`` / ``get_ndc_camera_transform``.
    """

    R: torch.Tensor
    T: torch.Tensor
    K: torch.Tensor | None
    image_size: torch.Tensor | None

    _R_SPEC = (3, 3)
    _T_SPEC = (3,)
    _K_SPEC = (4, 4)

    def _set_params(
        self,
        device: torch.device | str | None,
        params: Mapping[str, ParamSpec],
        *,
        integer: Sequence[str] = (),
    ) -> None:
        """As :meth:`BatchedParams._set_params`, then refuse NaN or inf in R, T and K."""
        super()._set_params(device, params, integer=integer)
        _check_finite_extrinsics(R=self.R, T=self.T, K=getattr(self, "K", None))

    def _per_camera(self, value: float | torch.Tensor) -> torch.Tensor:
        """A number or a (1,)/(N,) tensor as ``(N,)`` in the cameras' dtype and device."""
        return torch.as_tensor(value, dtype=self.dtype, device=self.device).expand(len(self))

    def _override(self, name: str, value: object, trailing: tuple[int, ...] = ()) -> torch.Tensor:
        """A per-call override of shape ``trailing`` or ``(B, *trailing)`` as ``(B, *trailing)``."""
        tensor = _as_tensor(name, value, self.device)
        dtype = (
            torch.promote_types(tensor.dtype, self.dtype)
            if tensor.is_floating_point()
            else self.dtype
        )
        tensor = tensor.to(dtype)
        if tuple(tensor.shape) == trailing:
            tensor = tensor[None]
        if tensor.ndim != len(trailing) + 1 or tuple(tensor.shape[1:]) != trailing:
            dims = ", ".join(str(d) for d in trailing)
            expected = f"({dims}) or (N, {dims})" if dims else "a scalar or (N,)"
            raise ValueError(f"{name} must have shape {expected}, got {tuple(tensor.shape)}")
        return tensor

    def _projection_params(
        self, overrides: dict[str, object], trailing: dict[str, tuple[int, ...]]
    ) -> list[torch.Tensor]:
        """Stored parameters with ``overrides`` substituted, broadcast to one batch."""
        named = {
            name: getattr(self, name)
            if overrides.get(name) is None
            else self._override(name, overrides[name], shape)
            for name, shape in trailing.items()
        }
        return broadcast_batch(named)

    def _override_K(self, K: object) -> Transform3d | None:
        """The projection from a ``K`` override or the stored ``K``; None if neither."""
        if K is None:
            K = self.K
            if K is None:
                return None
            return Transform3d(K.transpose(1, 2))
        return Transform3d(self._override("K", K, (4, 4)).transpose(1, 2))

    # ------------------------------------------------------------ transforms
    def get_world_to_view_transform(
        self, *, R: torch.Tensor | None = None, T: torch.Tensor | None = None
    ) -> Transform3d:
        """World -> view ``X_view = X_world @ R + T``; ``R`` (N, 3, 3) / ``T`` (N, 3) override the
        stored ones for this call (PyTorch3D overwrites them). ValueError on NaN or inf."""
        R = self.R if R is None else self._override("R", R, (3, 3))
        T = self.T if T is None else self._override("T", T, (3,))
        return get_world_to_view_transform(R, T)

    def get_projection_transform(self, **overrides: object) -> Transform3d:
        """View -> NDC (or screen units); subclasses take their parameters as keyword overrides."""
        raise NotImplementedError

    def get_full_projection_transform(
        self, *, R: torch.Tensor | None = None, T: torch.Tensor | None = None, **overrides: object
    ) -> Transform3d:
        """World -> projection space; ``overrides`` go to ``get_projection_transform``."""
        return self.get_world_to_view_transform(R=R, T=T).compose(
            self.get_projection_transform(**overrides)
        )

    def transform_points(
        self, points: torch.Tensor, eps: float | None = None, **overrides: object
    ) -> torch.Tensor:
        """World ``points`` (P, 3) or (N, P, 3) -> projection space with the divide (NDC, or
        screen units for ``in_ndc=False``): (N, P, 3) ((P, 3) for batch-1 cameras and input).
        ``eps`` bounds ``|w|``; ``overrides``: ``R``, ``T`` and projection parameters."""
        return self.get_full_projection_transform(**overrides).transform_points(points, eps=eps)

    def get_ndc_camera_transform(
        self, *, image_size: ImageSize | None = None, **overrides: object
    ) -> Transform3d:
        """Projection space -> NDC (identity in NDC; ``image_size`` defaults to the camera's)."""
        if self.in_ndc():
            return Transform3d(dtype=self.dtype, device=self.device)
        size = image_size if image_size is not None else self.get_image_size()
        return get_screen_to_ndc_transform(self, with_xyflip=False, image_size=size)

    def transform_points_ndc(
        self, points: torch.Tensor, eps: float | None = None, *, image_size: ImageSize | None = None,
        **overrides: object,
    ) -> torch.Tensor:
        """World -> NDC (+X left, +Y up, short side [-1, 1]; z the projection's depth), as
        ``transform_points``; ``image_size`` for screen-space cameras."""
        transform = self.get_full_projection_transform(**overrides)
        if not self.in_ndc():
            projection_only = {k: v for k, v in overrides.items() if k not in ("R", "T")}
            to_ndc = self.get_ndc_camera_transform(image_size=image_size, **projection_only)
            transform = transform.compose(to_ndc)
        return transform.transform_points(points, eps=eps)

    def transform_points_screen(
        self, points: torch.Tensor, eps: float | None = None, with_xyflip: bool = True, *,
        image_size: ImageSize | None = None, **overrides: object,
    ) -> torch.Tensor:
        """World -> screen pixels ((0, 0) top-left, +y down; see ``get_ndc_to_screen_transform``),
        as ``transform_points``; ``image_size`` defaults to the camera's."""
        size = image_size if image_size is not None else self.get_image_size()
        points_ndc = self.transform_points_ndc(points, eps=eps, image_size=size, **overrides)
        to_screen = get_ndc_to_screen_transform(self, with_xyflip=with_xyflip, image_size=size)
        return to_screen.transform_points(points_ndc, eps=eps)

    def unproject_points(
        self, xy_depth: torch.Tensor, world_coordinates: bool = True, scaled_depth_input: bool = False, *,
        from_ndc: bool = False, **overrides: object,
    ) -> torch.Tensor:
        """Inverse of ``transform_points`` for ``xy_depth`` (P, 3) or (N, P, 3): projection-space
        x, y (NDC with ``from_ndc``) and view depth (the projected one with
        ``scaled_depth_input``); world points, or view ones without ``world_coordinates``."""
        extrinsics = {k: overrides.pop(k) for k in ("R", "T") if k in overrides}
        projection = self.get_projection_transform(**overrides)
        if scaled_depth_input:
            xy_sdepth = xy_depth
        else:
            if xy_depth.ndim not in (2, 3) or xy_depth.shape[-1] != 3:
                raise ValueError(
                    f"xy_depth must have shape (P, 3) or (N, P, 3), got {tuple(xy_depth.shape)}"
                )
            batched = xy_depth if xy_depth.ndim == 3 else xy_depth[None]
            # projected depth = (M22 z + M32) / (M23 z + M33) for row-vector M.
            m = projection.get_matrix().to(batched.dtype)[:, None]
            z = batched[..., 2:3]
            depth = (m[..., 2, 2:3] * z + m[..., 3, 2:3]) / (m[..., 2, 3:4] * z + m[..., 3, 3:4])
            xy = batched[..., :2].expand(len(depth), -1, -1)
            xy_sdepth = torch.cat([xy, depth], dim=-1)
            if xy_depth.ndim == 2 and len(xy_sdepth) == 1:
                xy_sdepth = xy_sdepth[0]
        transform = projection
        if world_coordinates:
            transform = self.get_world_to_view_transform(**extrinsics).compose(projection)
        if from_ndc:
            transform = transform.compose(self.get_ndc_camera_transform(**overrides))
        return transform.inverse().transform_points(xy_sdepth)

    # --------------------------------------------------------------- queries
    def get_camera_center(
        self, *, R: torch.Tensor | None = None, T: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, 3) camera positions ``C = -T @ R^T`` (``R``, ``T`` overrides are not stored)."""
        R = self.R if R is None else self._override("R", R, (3, 3))
        T = self.T if T is None else self._override("T", T, (3,))
        R, T = _check_extrinsics(R, T)
        return -(T[:, None, :] @ R.transpose(1, 2))[:, 0, :]

    def is_perspective(self) -> bool:
        """Whether the projection divides by depth."""
        raise NotImplementedError

    def in_ndc(self) -> bool:
        """Whether the projection maps to NDC (True) or to screen pixels."""
        return True

    def get_znear(self) -> torch.Tensor | None:
        """Near clipping distance ``(N,)``, or None for cameras without one."""
        return None

    def get_image_size(self) -> torch.Tensor | None:
        """The ``(N, 2)`` (height, width) the camera was made with, or None."""
        return getattr(self, "image_size", None)
