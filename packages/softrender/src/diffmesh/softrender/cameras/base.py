"""What every camera shares: extrinsics, the world -> view -> NDC -> screen chain.

Conventions (PyTorch3D's): points are row vectors and ``X_view = X_world @ R + T``;
view space has +X left, +Y up, +Z into the screen. NDC has +X left, +Y up; on a
non-square image the shorter side spans [-1, 1] and the longer side
[-u, u] with u = long / short. Screen space is in pixels with (0, 0) at the image's
top-left corner, +x right and +y down, so NDC (+1, +1) maps to screen (0, 0) on a
square image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffmesh.meshcore.transforms import Transform3d

from .batched import BatchedParams, as_batched, as_tensor, broadcast_batch

__all__ = [
    "CAMERA_FIELDS", "DEFAULT_R", "DEFAULT_T", "CamerasBase", "check_finite", "focal_length_n2",
    "get_ndc_to_screen_transform", "get_screen_to_ndc_transform", "get_world_to_view_transform",
    "require", "stack_rows",
]

ImageSize = int | Sequence[int] | Sequence[Sequence[int]] | torch.Tensor

#: Default extrinsics of every camera: one identity rotation, one zero translation.
DEFAULT_R = (((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),)
DEFAULT_T = ((0.0, 0.0, 0.0),)

#: The camera parameters a call may override, with the shape of one batch element.
CAMERA_FIELDS: dict[str, tuple[int, ...]] = {
    "R": (3, 3), "T": (3,), "K": (4, 4), "znear": (), "zfar": (), "aspect_ratio": (), "fov": (),
    "min_x": (), "max_x": (), "min_y": (), "max_y": (), "scale_xyz": (3,), "focal_length": (2,),
    "principal_point": (2,),
}


def stack_rows(*rows: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-camera scalars ``(N,)`` into ``(N, len(rows), len(row))`` matrices."""
    return torch.stack([torch.stack(row, dim=1) for row in rows], dim=1)


def check_finite(**tensors: torch.Tensor | None) -> None:
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


def require(ok: torch.Tensor, requirement: str, **shown: torch.Tensor) -> None:
    """ValueError ``"{requirement}, got name=values"`` (for ``shown``) unless ``ok`` is all True."""
    if not bool(ok.all()):
        got = ", ".join(f"{name}={t.detach().cpu().tolist()}" for name, t in shown.items())
        raise ValueError(f"{requirement}, got {got}")


def focal_length_n2(focal_length: object, device: torch.device | str) -> torch.Tensor:
    """Focal length as ``(N, 2)``: a scalar, ``(N,)``, ``(N, 1)`` or ``(N, 2)``."""
    focal = as_tensor("focal_length", focal_length, torch.device(device))
    if focal.ndim < 2:
        focal = focal.reshape(-1, 1)
    if focal.ndim != 2 or focal.shape[1] not in (1, 2):
        raise ValueError(
            f"focal_length must be a scalar, (N,), (N, 1) or (N, 2), got shape {tuple(focal.shape)}"
        )
    return focal.expand(-1, 2)


def _ndc_screen_transform(
    cameras: CamerasBase, with_xyflip: bool, image_size: ImageSize | None, inverse: bool
) -> Transform3d:
    """NDC -> screen for ``image_size`` (an int, (H, W) or (B, 2), B in {1, N}), or its closed-form
    inverse: ``x_s = flip (s x - W/2)``, ``y_s = flip (s y - H/2)``, ``s = min(H, W) / 2``."""
    if image_size is None:
        raise ValueError("image_size=(height, width) is needed for the NDC <-> screen conversion")
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    size = as_batched("image_size", image_size, (2,), cameras.device)
    if len(size) not in (1, len(cameras)):
        raise ValueError(f"image_size has batch size {len(size)}; expected 1 or {len(cameras)}")
    require(torch.isfinite(size) & (size >= 1), "image_size must be >= 1 pixel", image_size=size)
    size = size.to(cameras.dtype)
    height, width = size.unbind(1)
    flip = -1.0 if with_xyflip else 1.0
    if inverse:  # x = (flip x_s + W/2) / s
        inv_scale = 2.0 / size.min(dim=1).values
        scale, tx, ty = flip * inv_scale, width / 2.0 * inv_scale, height / 2.0 * inv_scale
    else:
        scale = flip * (size.min(dim=1).values / 2.0)
        tx, ty = -flip * width / 2.0, -flip * height / 2.0
    ones = torch.ones_like(scale)
    matrix = torch.diag_embed(torch.stack([scale, scale, ones, ones], dim=1))
    matrix[:, 3, :2] = torch.stack([tx, ty], dim=1)  # the row-vector translation
    return Transform3d(matrix)


def get_ndc_to_screen_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """PyTorch3D's NDC -> screen transform (batch N or 1) for ``image_size`` (H, W), an int,
    or (N, 2): ``x_s = W/2 - s x``, ``y_s = H/2 - s y``, ``s = min(H, W) / 2`` with
    ``with_xyflip``; without it ``x_s = s x - W/2`` (PyTorch3D's intermediate); z unchanged."""
    return _ndc_screen_transform(cameras, with_xyflip, image_size, inverse=False)


def get_screen_to_ndc_transform(
    cameras: CamerasBase, with_xyflip: bool = False, image_size: ImageSize | None = None
) -> Transform3d:
    """Inverse of ``get_ndc_to_screen_transform`` (same arguments)."""
    return _ndc_screen_transform(cameras, with_xyflip, image_size, inverse=True)


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
    for name, value, trailing in (("R", R, (3, 3)), ("T", T, (3,))):
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            raise TypeError(
                f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}"
            )
        if value.shape[1:] != trailing or value.ndim != len(trailing) + 1:
            dims = ", ".join(str(d) for d in trailing)
            raise ValueError(f"{name} must have shape (N, {dims}), got {tuple(value.shape)}")
    R, T = broadcast_batch({"R": R, "T": T.to(R.device)})
    check_finite(R=R, T=T)
    top = torch.cat([R, torch.zeros_like(R[:, :, :1])], dim=2)
    bottom = torch.cat([T, torch.ones_like(T[:, :1])], dim=1)[:, None]
    return Transform3d(torch.cat([top, bottom], dim=1))


class CamerasBase(BatchedParams):
    """Base of the cameras: R (N, 3, 3), T (N, 3) buffers and the transform chain.

    Subclasses register their parameters with ``_register``, and provide
    ``get_projection_transform`` (view -> NDC, or -> screen for ``in_ndc=False``),
    ``is_perspective`` and, if needed, ``get_ndc_camera_transform``.
    """

    R: torch.Tensor
    T: torch.Tensor
    K: torch.Tensor | None
    image_size: torch.Tensor | None
    _in_ndc = True

    def _register(self, device: torch.device | str, **values: object) -> None:
        """Register ``values`` as buffers (shapes from :data:`CAMERA_FIELDS`, an ``image_size``
        (2,) int64; see ``BatchedParams._set_params``), then refuse NaN or inf in any."""
        shapes = {**CAMERA_FIELDS, "image_size": (2,)}
        params = {name: (value, shapes[name]) for name, value in values.items()}
        self._set_params(device, params, integer=("image_size",))
        check_finite(**{name: getattr(self, name) for name in values})

    def _override(self, name: str, value: object) -> torch.Tensor:
        """A per-call override of parameter ``name`` (one element's shape or ``(B, ...)``) as
        ``(B, ...)``, in the cameras' dtype or a wider given one."""
        if name == "focal_length":
            value = focal_length_n2(value, self.device)
        tensor = as_batched(name, value, CAMERA_FIELDS[name], self.device)
        floating = tensor.is_floating_point()
        return tensor.to(torch.promote_types(tensor.dtype, self.dtype) if floating else self.dtype)

    def _extrinsics(self, R: object, T: object) -> list[torch.Tensor]:
        """``R`` (N, 3, 3) and ``T`` (N, 3), overridden when given, broadcast to one batch."""
        R = self.R if R is None else self._override("R", R)
        T = self.T if T is None else self._override("T", T)
        return broadcast_batch({"R": R, "T": T})

    def _projection(
        self, K: object, given: dict[str, object], build: Callable[..., torch.Tensor]
    ) -> Transform3d:
        """The projection of matrix ``K`` (this call's, else the stored one) if there is one, else
        ``build(*parameters)``, the ``given`` parameters (None: the stored one, else a number or
        batch N or 1 for this call) broadcast to one batch. ValueError for any ``given`` override
        (also of a setting such as ``degrees``) besides a ``K`` (PyTorch3D ignores it)."""
        if K is not None or self.K is not None:
            ignored = sorted(name for name, value in given.items() if value is not None)
            if ignored:
                raise ValueError(
                    f"{', '.join(ignored)} cannot be overridden for cameras whose projection is "
                    "given by K; pass K alone"
                )
            return Transform3d((self.K if K is None else self._override("K", K)).transpose(1, 2))
        params = {
            name: getattr(self, name) if value is None else self._override(name, value)
            for name, value in given.items()
            if name in CAMERA_FIELDS
        }
        return Transform3d(build(*broadcast_batch(params)))

    # ------------------------------------------------------------ transforms
    def get_world_to_view_transform(
        self, *, R: torch.Tensor | None = None, T: torch.Tensor | None = None
    ) -> Transform3d:
        """World -> view ``X_view = X_world @ R + T``; ``R`` (N, 3, 3) / ``T`` (N, 3) override the
        stored ones for this call (PyTorch3D overwrites them). ValueError on NaN or inf."""
        return get_world_to_view_transform(*self._extrinsics(R, T))

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
        R, T = self._extrinsics(R, T)
        return -(T[:, None, :] @ R.transpose(1, 2))[:, 0, :]

    def is_perspective(self) -> bool:
        """Whether the projection divides by depth."""
        raise NotImplementedError

    def in_ndc(self) -> bool:
        """Whether the projection maps to NDC (True) or to screen pixels."""
        return self._in_ndc

    def get_znear(self) -> torch.Tensor | None:
        """Near clipping distance ``(N,)``, or None for cameras without one."""
        return getattr(self, "znear", None)

    def get_image_size(self) -> torch.Tensor | None:
        """The ``(N, 2)`` (height, width) the camera was made with, or None."""
        return getattr(self, "image_size", None)
