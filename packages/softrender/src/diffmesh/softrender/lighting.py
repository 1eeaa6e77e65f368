"""The Phong lighting formula, written once: its diffuse and specular terms and their derivative.

For unit normal n, unit direction to the light l and unit direction to the camera v::

    diffuse  = max(n . l, 0)
    specular = max(v . r, 0) ** shininess where n . l > 0, else 0 ** shininess
    r        = 2 (n . l) n - l   (the reflected light direction)

Vectors are renormalised as PyTorch3D does (``x / max(|x|, 1e-6)``), so interpolated normals
can be passed as they are; gradients are finite everywhere (zero normals, points at the light
or the camera, cosines of exactly 0). The lights' ``diffuse``/``specular`` methods, the
shaders and the public shading functions all use :func:`phong_terms`; colours are applied by
their callers.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx

from ._autograd import first_order_only

__all__ = ["phong_terms", "power_of_two_exponent", "safe_pow"]

_EPS = 1e-6  # PyTorch3D normalises with F.normalize(eps=1e-6)
_INV_EPS = 1.0 / _EPS

# Vectors are tuples of their three components: element-wise work on component arrays is
# several times faster on a CPU than reductions or broadcasts over a last dimension of 3.
Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


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
    shape = torch.broadcast_shapes(*(k.shape for k, _, _ in terms), *(x.shape for _, v, _ in terms for x in v))
    out = torch.zeros(3, *shape, dtype=terms[0][0].dtype, device=terms[0][0].device)
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
        detached = shininess.detach()
        if all(s == 0 for s in detached.stride()):  # an expanded single value
            flat = detached[(0,) * detached.ndim].reshape(1)
        else:
            flat = detached.reshape(-1)
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
    """(diffuse, specular) of broadcastable (..., 3) inputs; hand-written backward (one line:
    bench case "SoftPhong fwd+bwd": it shades every visible pair)."""

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
            s = exponent[1]
            zero_pow = torch.eq(torch.as_tensor(s, device=alpha.device), 0).to(alpha.dtype)
            spec = torch.where(alpha > 0, alpha.pow(s), zero_pow)
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
    normals: torch.Tensor,
    light: torch.Tensor,
    points: torch.Tensor | None,
    camera: torch.Tensor | None,
    *,
    point_light: bool,
    shininess: float | torch.Tensor = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The uncoloured Phong terms at points (differentiable w.r.t. every tensor input).

    Args:
        normals, light, points, camera: broadcastable (..., 3) float: normals (any length),
            the light position (``point_light``) or direction towards the light, world
            positions, camera centres. ``camera`` None: the diffuse term only (``points``
            may then be None for a directional light).
        point_light: whether ``light`` is a position (l = light - points) or a direction.
        shininess: a number or a tensor broadcastable against the inputs' (...).

    Returns:
        (diffuse, specular), each (...) float the inputs' broadcast shape without the last
        dim (``specular`` a 0-dim zero without ``camera``).
    """
    dtype = normals.dtype
    for t in (light, points, camera):
        dtype = dtype if t is None else torch.promote_types(dtype, t.dtype)
    normals, light = normals.to(dtype), light.to(dtype)
    points = None if points is None else points.to(dtype)
    camera = None if camera is None else camera.to(dtype)
    if camera is None:
        return _PhongTerms.apply(normals, light, points, None, point_light, None)
    k = power_of_two_exponent(shininess)
    if k is not None:
        return _PhongTerms.apply(normals, light, points, camera, point_light, ("squarings", k))
    if isinstance(shininess, torch.Tensor) and shininess.requires_grad:
        diffuse, alpha = _PhongTerms.apply(normals, light, points, camera, point_light, None)
        return diffuse, safe_pow(alpha, shininess)
    return _PhongTerms.apply(normals, light, points, camera, point_light, ("pow", shininess))
