"""Lights (PyTorch3D's classes) and the Phong formula they evaluate, written once.

For unit normal n, direction to the light l and direction to the camera v::

    diffuse  = max(n . l, 0)
    specular = max(v . r, 0) ** shininess where n . l > 0, else 0 ** shininess
    r        = 2 (n . l) n - l

Vectors are renormalised as PyTorch3D does (``x / max(|x|, 1e-6)``); gradients are finite
everywhere. A light of batch B broadcasts against inputs ``(B, ..., 3)`` (parameters viewed
as ``(B, 1, ..., 1, 3)``); ``lights[idx]`` gives per-point lights for ``(P, 3)`` inputs.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx

from .cameras.batched import BatchedParams
from .fragments import first_order_only

__all__ = [
    "AmbientLights", "DirectionalLights", "PointLights", "broadcast_shape", "diffuse", "phong_terms",
    "power_of_two_exponent", "safe_pow", "specular",
]

_EPS = 1e-6  # PyTorch3D normalises with F.normalize(eps=1e-6)
_INV_EPS = 1.0 / _EPS

# Vectors are tuples of their three components: element-wise work on component arrays is
# several times faster on a CPU than reductions or broadcasts over a last dimension of 3.
Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def broadcast_shape(*shapes: tuple[int, ...]) -> torch.Size | None:
    """The broadcast shape of ``shapes``, None if none (``torch.broadcast_shapes`` loads
    ``torch._refs``, ~30 MB resident, on first use)."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape):
            j = ndim - len(shape) + i
            if size != 1:
                if out[j] not in (1, size):
                    return None
                out[j] = size
    return torch.Size(out)


def _vec(t: torch.Tensor) -> Vec:
    x, y, z = t.unbind(-1)
    return x, y, z


def _sub(a: Vec, b: Vec) -> Vec:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _dot(a: Vec, b: Vec) -> torch.Tensor:
    return (a[0] * b[0]).addcmul_(a[1], b[1]).addcmul_(a[2], b[2])


def _inv_norm_(squared: torch.Tensor) -> torch.Tensor:
    """In place: ``|x|^2 -> 1 / max(|x|, eps)``."""
    return squared.clamp_min_(_EPS * _EPS).rsqrt_()


def _unclamped(coef: torch.Tensor, inv_len: torch.Tensor) -> torch.Tensor:
    """In place: zero ``coef`` where the vector was shorter than eps (its length clamped)."""
    return coef.masked_fill_(inv_len >= _INV_EPS, 0.0)


def _combine(like: torch.Tensor, *terms: tuple[torch.Tensor, Vec, float]) -> torch.Tensor:
    """``sum_i sign_i k_i v_i`` as an (..., 3) tensor shaped like ``like`` (..., 3); each
    component is accumulated in its own contiguous plane, then summed to ``like``'s shape."""
    shape = broadcast_shape(*(k.shape for k, _, _ in terms), *(x.shape for _, v, _ in terms for x in v))
    out = torch.zeros(3, *shape, dtype=terms[0][0].dtype, device=terms[0][0].device)  # type: ignore[misc]
    for axis in range(3):
        for k, v, sign in terms:
            out[axis].addcmul_(k, v[axis], value=sign)
    out = out.movedim(0, -1)
    return out if out.shape == like.shape else out.sum_to_size(like.shape)


def power_of_two_exponent(shininess: float | torch.Tensor) -> int | None:
    """k if ``shininess`` is the same 2**k (0 <= k <= 30) everywhere and needs no grad, else None."""
    if isinstance(shininess, torch.Tensor):
        if shininess.requires_grad or shininess.numel() == 0:
            return None
        expanded = all(s == 0 for s in shininess.stride())  # a single value, expanded
        flat = shininess[(0,) * shininess.ndim].reshape(1) if expanded else shininess.reshape(-1)
        value = float(flat[0])
        if flat.numel() > 1 and not bool((flat == value).all()):
            return None
    elif isinstance(shininess, (int, float)) and not isinstance(shininess, bool):
        value = float(shininess)
    else:
        return None
    if value < 1 or value > 2**30 or not value.is_integer():
        return None
    k = int(value).bit_length() - 1
    return k if 2**k == int(value) else None


def safe_pow(base: torch.Tensor, exponent: float | torch.Tensor) -> torch.Tensor:
    """``base ** exponent`` for base >= 0 with finite gradients at base = 0 (also w.r.t. the
    exponent): zeros get ``0 ** e`` (1 for e = 0, else 0) through ``where``."""
    positive = base > 0
    result = torch.where(positive, base, torch.ones_like(base)) ** exponent
    at_zero = (torch.as_tensor(exponent, device=base.device) == 0).to(result.dtype)
    return torch.where(positive, result, at_zero)


class _PhongTerms(torch.autograd.Function):
    """(diffuse, specular) of broadcastable (..., 3) inputs (bench: "Phong terms ... hand-written")."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        normals: torch.Tensor,
        light: torch.Tensor,
        points: torch.Tensor | None,
        camera: torch.Tensor | None,
        point_light: bool,
        exponent: tuple[str, float | torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = _vec(normals)
        d = _sub(_vec(light), _vec(points)) if point_light else _vec(light)  # type: ignore[arg-type]
        a = _inv_norm_(_dot(n, n))
        b = _inv_norm_(_dot(d, d))
        cos = _dot(n, d).mul_(a).mul_(b)  # n^ . l^
        diffuse = cos.clamp_min(0.0)
        ctx.point_light, ctx.exponent, ctx.specular = point_light, exponent, camera is not None
        if camera is None:  # the diffuse term only
            ctx.save_for_backward(normals, light, points, *d, a, b, cos)
            return diffuse, diffuse.new_zeros(())
        v = _sub(_vec(camera), _vec(points))  # type: ignore[arg-type]
        c = _inv_norm_(_dot(v, v))
        vn = _dot(v, n).mul_(c).mul_(a)  # v^ . n^
        vd = _dot(v, d).mul_(c).mul_(b)  # v^ . l^
        alpha = torch.mul(cos, vn).mul_(2.0).sub_(vd)  # v^ . r
        live = (cos > 0) & (alpha > 0)
        alpha.masked_fill_(~live, 0.0)
        if exponent is None:  # the caller applies the power
            spec = alpha
        elif exponent[0] == "squarings":  # x ** (2 ** k) by repeated squaring: far cheaper than pow
            spec = alpha.clone()
            for _ in range(int(exponent[1])):
                spec.mul_(spec)
        else:
            spec = safe_pow(alpha, exponent[1])
        ctx.save_for_backward(normals, light, points, *d, a, b, cos, camera, *v, c, vn, alpha, live, spec)
        return diffuse, spec

    @staticmethod
    @first_order_only
    def backward(  # type: ignore[override]
        ctx: FunctionCtx, g_diffuse: torch.Tensor | None, g_spec: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        normals, light, points, dx, dy, dz, a, b, cos = saved[:9]
        n, d = _vec(normals), (dx, dy, dz)
        needs = ctx.needs_input_grad
        # diffuse: C = (n . d) a b, a = 1/max(|n|, eps): dC/dn = a b d - C a^2 n (the second
        # term only where |n| > eps), symmetrically for d
        g_l = torch.zeros_like(cos) if g_diffuse is None else g_diffuse * (cos > 0)
        k1 = (g_l * a).mul_(b)  # coefficient of d in dn and of n in dd
        k3 = (g_l * cos).mul_(a.square())  # of -n in dn
        k5 = (g_l * cos).mul_(b.square())  # of -d in dd
        terms_v: list[tuple[torch.Tensor, Vec, float]] = []
        grad_camera = None
        if ctx.specular and g_spec is not None:
            camera, vx, vy, vz, c, vn, alpha, live, spec = saved[9:]
            v = (vx, vy, vz)
            # d(A^s)/dA = s A^s / A on live elements (A > 0 there)
            g_s = g_spec
            if ctx.exponent is not None:
                kind, s = ctx.exponent
                g_s = (g_spec * spec).div_(alpha).mul_(2.0 ** int(s) if kind == "squarings" else s)
            g_s = torch.where(live, g_s, 0.0)  # also the 0 / 0 of dead elements
            # A = 2 C Vn - Vd: dA/dn^ = 2 Vn l^ + 2 C v^, dA/dl^ = 2 Vn n^ - v^,
            # dA/dv^ = 2 C n^ - l^, each chained through x^ = x a: dx^ = a (I - x^ x^T) dx
            k1 = k1 + (g_s * a).mul_(b).mul_(vn).mul_(2.0)
            k2 = (g_s * a).mul_(c).mul_(cos).mul_(2.0)  # of v in dn and of n in dv
            k4 = (g_s * b).mul_(c)  # of -v in dd and of -d in dv
            k3 = k3 + (g_s * cos).mul_(vn).mul_(a.square()).mul_(4.0)
            k5 = k5 + (g_s * alpha).mul_(b.square())
            k6 = _unclamped((g_s * alpha).mul_(c.square()), c)  # of -v in dv
            terms_v = [(k2, n, 1.0), (k4, d, -1.0), (k6, v, -1.0)]  # dv
            if needs[3]:
                grad_camera = _combine(camera, *terms_v)
        k3, k5 = _unclamped(k3, a), _unclamped(k5, b)
        terms_n: list[tuple[torch.Tensor, Vec, float]] = [(k1, d, 1.0), (k3, n, -1.0)]
        terms_d: list[tuple[torch.Tensor, Vec, float]] = [(k1, n, 1.0), (k5, d, -1.0)]
        if terms_v:
            terms_n.append((k2, v, 1.0))
            terms_d.append((k4, v, -1.0))
        grad_n = _combine(normals, *terms_n) if needs[0] else None
        grad_light = _combine(light, *terms_d) if needs[1] else None
        grad_points = None
        if needs[2]:  # points move v = camera - p and, for a point light, d = light - p
            minus = [(k, x, -sign) for k, x, sign in terms_v + (terms_d if ctx.point_light else [])]
            grad_points = _combine(points, *minus) if minus else torch.zeros_like(points)
        return grad_n, grad_light, grad_points, grad_camera, None, None


def phong_terms(
    normals: torch.Tensor, light: torch.Tensor, points: torch.Tensor | None, camera: torch.Tensor | None, *,
    point_light: bool, shininess: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The uncoloured (diffuse, specular), each (...), differentiable w.r.t. every tensor.

    Args:
        normals, light, points, camera: broadcastable (..., 3) float: normals, the light's
            position (``point_light``: l = light - points) or direction, world positions,
            camera centres. ``camera`` None: diffuse only (specular a 0-dim zero; ``points``
            may be None for a directional light).
        shininess: a number or a tensor broadcastable against (...).
    """
    dtype = normals.dtype
    for t in (light, points, camera):
        dtype = dtype if t is None else torch.promote_types(dtype, t.dtype)
    normals, light, points, camera = (None if t is None else t.to(dtype) for t in (normals, light, points, camera))
    if camera is None:
        return _PhongTerms.apply(normals, light, points, None, point_light, None)
    k = power_of_two_exponent(shininess)
    if k is not None:
        return _PhongTerms.apply(normals, light, points, camera, point_light, ("squarings", k))
    if isinstance(shininess, torch.Tensor) and shininess.requires_grad:
        diffuse, alpha = _PhongTerms.apply(normals, light, points, camera, point_light, None)
        return diffuse, safe_pow(alpha, shininess)
    return _PhongTerms.apply(normals, light, points, camera, point_light, ("pow", shininess))


Color = torch.Tensor | tuple
# PyTorch3D's default lights: grey colours, at or towards +Y
_AMBIENT, _DIFFUSE, _SPECULAR, _UP = ((0.5, 0.5, 0.5),), ((0.3, 0.3, 0.3),), ((0.2, 0.2, 0.2),), ((0.0, 1.0, 0.0),)


def check_vectors(name: str, tensor: object) -> None:
    """TypeError/ValueError unless ``tensor`` is a floating ``(..., 3)`` tensor."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        got = f"a tensor of dtype {tensor.dtype}" if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {got}")
    if tensor.ndim < 1 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(tensor.shape)}")


def per_batch(name: str, param: object, shape: torch.Size, trailing: int) -> torch.Tensor:
    """View a per-batch parameter ``(B, *t)`` as ``(B, 1, ..., 1, *t)`` against inputs of
    ``shape`` whose last ``trailing`` dims it supplies (unbatched ``t``: B = 1; of the inputs'
    rank: as it is). TypeError if not numeric; ValueError on a wrong shape or batch size.
    """
    if not isinstance(param, torch.Tensor):
        try:
            param = torch.as_tensor(param, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a tensor or a sequence of numbers, got {type(param).__name__}") from None
    if param.dtype == torch.bool or param.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {param.dtype}")
    if not param.is_floating_point():
        param = param.to(torch.float32)
    if param.ndim == trailing:
        param = param[None]
    if trailing and param.shape[-1] != shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, 3), (3,) or the inputs' shape {tuple(shape)}, got {tuple(param.shape)}"
        )
    lead = len(shape) - trailing
    if param.ndim == len(shape):
        view = param
    elif lead == 0:
        if param.shape[0] != 1:
            raise ValueError(
                f"{name} has batch size {param.shape[0]}, which cannot broadcast against "
                f"unbatched inputs of shape {tuple(shape)}"
            )
        return param[0]
    elif param.ndim == trailing + 1:
        view = param.reshape(param.shape[0], *([1] * (lead - 1)), *param.shape[1:])
    else:
        raise ValueError(
            f"{name} must have shape {'(B, 3) or (3,)' if trailing else '(B,) or ()'} "
            f"or the inputs' shape {tuple(shape)}, got {tuple(param.shape)}"
        )
    if view.shape[0] not in (1, shape[0]):
        raise ValueError(
            f"{name} has batch size {view.shape[0]} but the inputs have batch size {shape[0]} "
            f"(shape {tuple(shape)}); batch sizes must be equal or 1"
        )
    return view


def broadcast_inputs(**tensors: torch.Tensor) -> torch.Size:
    """The broadcast shape of ``tensors``; ValueError naming them if there is none."""
    shape = broadcast_shape(*(t.shape for t in tensors.values()))
    if shape is None:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"input shapes do not broadcast: {shapes}")
    return shape


def _colored_term(
    normals: torch.Tensor, light: torch.Tensor, points: torch.Tensor | None, camera: torch.Tensor | None,
    color: torch.Tensor, point_light: bool, shininess: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """``color *`` the diffuse term (``camera`` None) or the specular term, (..., 3)."""
    named = {"normals": normals, "light": light, "color": color}
    named.update({k: v for k, v in (("points", points), ("camera", camera)) if v is not None})
    broadcast_inputs(**named)  # a ValueError naming the inputs if they do not broadcast
    diffuse, spec = phong_terms(normals, light, points, camera, point_light=point_light, shininess=shininess)
    return _colored(color, diffuse if camera is None else spec)


def _colored(color: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
    """``color * term[..., None]`` (..., 3) in the broadcast shape, written by component planes."""
    color = color.to(torch.promote_types(color.dtype, term.dtype))
    return torch.stack(torch.broadcast_tensors(*(term * c for c in color.unbind(-1)))).movedim(0, -1)


def diffuse(normals: torch.Tensor, color: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Lambertian ``color * max(cos(normals, direction), 0)``, (..., 3) for ``normals`` (..., 3).

    ``color`` and ``direction`` (towards the light): ``(B, 3)`` or ``(3,)``, viewed as
    ``(B, 1, ..., 1, 3)`` (PyTorch3D's rule), or broadcastable against ``normals``.
    """
    check_vectors("normals", normals)
    color = per_batch("color", color, normals.shape, 1)
    direction = per_batch("direction", direction, normals.shape, 1)
    return _colored_term(normals, direction, None, None, color, False)


def specular(
    points: torch.Tensor, normals: torch.Tensor, direction: torch.Tensor, camera_position: torch.Tensor,
    color: torch.Tensor, shininess: float | torch.Tensor,
) -> torch.Tensor:
    """Phong ``color * max(v . r, 0) ** shininess`` (PyTorch3D's ``specular``), (..., 3).

    ``points``, ``normals`` (..., 3) broadcastable; ``direction``, ``camera_position``,
    ``color`` per batch as in :func:`diffuse`; ``shininess`` a number, (B,), or broadcastable
    against ``points.shape[:-1]``.
    """
    check_vectors("points", points)
    check_vectors("normals", normals)
    shape = broadcast_inputs(points=points, normals=normals)
    direction = per_batch("direction", direction, shape, 1)
    camera_position = per_batch("camera_position", camera_position, shape, 1)
    color = per_batch("color", color, shape, 1)
    if isinstance(shininess, torch.Tensor):
        shininess = per_batch("shininess", shininess, shape[:-1], 0)
    return _colored_term(normals, direction, points, camera_position, color, False, shininess)


class _LightsBase(BatchedParams):
    """Phong lights: ``(N, 3)`` colours and the ``(N, 3)`` position (``_POINT``) or direction
    towards the light, named ``_LIGHT_NAME``. Inputs ``(B, ..., 3)`` or ``(P, 3)``, outputs ``(B, ..., 3)``."""

    ambient_color: torch.Tensor
    diffuse_color: torch.Tensor
    specular_color: torch.Tensor
    _POINT: bool
    _LIGHT_NAME: str

    def __init__(self, ambient_color: object, diffuse_color: object, specular_color: object, light: object,
                 device: torch.device | str) -> None:
        super().__init__()
        self._set_params(device, {
            "ambient_color": (ambient_color, (3,)), "diffuse_color": (diffuse_color, (3,)),
            "specular_color": (specular_color, (3,)), self._LIGHT_NAME: (light, (3,)),
        })

    def _params(self, normals: torch.Tensor, points: torch.Tensor | None, *names: str) -> tuple:
        """The inputs' shape, then the light's position or direction and the colours ``names``
        viewed against it (see :func:`per_batch`)."""
        check_vectors("normals", normals)
        if points is not None:
            check_vectors("points", points)
        shape = normals.shape if points is None else broadcast_inputs(normals=normals, points=points)
        return shape, *(per_batch(name, getattr(self, name), shape, 1) for name in (self._LIGHT_NAME, *names))

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        """``diffuse_color * max(n . l, 0)``; ``points`` (world) needed by point lights only."""
        if self._POINT and points is None:
            raise ValueError("points are needed for the diffuse term of a point light")
        points = points if self._POINT else None
        _, light, color = self._params(normals, points, "diffuse_color")
        return _colored_term(normals, light, points, None, color, self._POINT)

    def specular(
        self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        """``specular_color * max(v . r, 0) ** shininess``, zero where ``n . l <= 0``.

        ``camera_position``: ``(B, 3)``, ``(3,)`` or the inputs' shape; ``shininess``: a
        number, ``(B,)``, or the inputs' shape without the last dim (``materials[idx]``).
        """
        return self.lighting(normals, points, camera_position, shininess)[1]

    def lighting(
        self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(:meth:`diffuse`, :meth:`specular`) in one evaluation (the shaders' call)."""
        shape, light, kd, ks = self._params(normals, points, "diffuse_color", "specular_color")
        camera = per_batch("camera_position", camera_position, shape, 1)
        if isinstance(shininess, torch.Tensor):
            shininess = per_batch("shininess", shininess, shape[:-1], 0)
        broadcast_inputs(normals=normals, points=points, light=light, camera_position=camera, color=kd)
        diffuse, spec = phong_terms(normals, light, points, camera, point_light=self._POINT, shininess=shininess)
        return _colored(kd, diffuse), _colored(ks, spec)


class PointLights(_LightsBase):
    """Point lights at ``location`` ((N, 3) or (3,)); colours (N, 3) or (3,) RGB (PyTorch3D's defaults)."""

    location: torch.Tensor
    _POINT = True
    _LIGHT_NAME = "location"

    def __init__(
        self, ambient_color: Color = _AMBIENT, diffuse_color: Color = _DIFFUSE, specular_color: Color = _SPECULAR,
        location: Color = _UP, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(ambient_color, diffuse_color, specular_color, location, device)


class DirectionalLights(_LightsBase):
    """Lights at infinity; ``direction`` ((N, 3) or (3,), any length) points towards the light."""

    direction: torch.Tensor
    _POINT = False
    _LIGHT_NAME = "direction"

    def __init__(
        self, ambient_color: Color = _AMBIENT, diffuse_color: Color = _DIFFUSE, specular_color: Color = _SPECULAR,
        direction: Color = _UP, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(ambient_color, diffuse_color, specular_color, direction, device)


class AmbientLights(BatchedParams):
    """The same light everywhere, ``(N, C)`` or ``(C,)`` (None: white, PyTorch3D's default);
    its diffuse and specular terms are zeros ``(..., C)`` shaped like ``normals``."""

    ambient_color: torch.Tensor

    def __init__(self, ambient_color: torch.Tensor | tuple | None = None, device: torch.device | str = "cpu") -> None:
        super().__init__()
        if ambient_color is None:
            ambient_color = ((1.0, 1.0, 1.0),)
        self._set_params(device, {"ambient_color": (ambient_color, (None,))})

    def diffuse(self, normals: torch.Tensor, points: torch.Tensor | None = None) -> torch.Tensor:
        check_vectors("normals", normals)
        return normals.new_zeros(*normals.shape[:-1], self.ambient_color.shape[-1])

    def specular(
        self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> torch.Tensor:
        return self.diffuse(normals)

    def lighting(
        self, normals: torch.Tensor, points: torch.Tensor, camera_position: torch.Tensor,
        shininess: float | torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = self.diffuse(normals)
        return zeros, zeros
