"""The Phong lighting terms as functions (PyTorch3D's ``diffuse`` and ``specular``).

For unit normal n, unit direction to the light l and unit direction to the camera v:

- diffuse  = color * max(n . l, 0)
- specular = color * max(v . r, 0) ** shininess where n . l > 0, else 0 ** shininess,
  with r = 2 (n . l) n - l the reflected light direction.

Vectors are renormalised as PyTorch3D does (``v / max(|v|, 1e-6)``), so interpolated
normals can be passed as they are. Gradients are finite everywhere: zero normals,
points at the light or the camera, cosines of exactly 0.

Speed: shading runs on every kept (pixel, face) pair, so the cosines are computed by
two ``torch.autograd.Function``s with hand-written backward passes, on the vectors'
components (element-wise arithmetic on ``unbind(-1)`` views is several times faster
than reductions over a last dimension of size 3) and with in-place updates of a few
buffers instead of dozens of fresh temporaries. A shininess that is a power of two
is applied by repeated squaring.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx

from ._autograd import first_order_only

__all__ = ["diffuse", "specular"]

#: PyTorch3D normalises with F.normalize(eps=1e-6): v / max(|v|, 1e-6).
_EPS = 1e-6
_INV_EPS = 1.0 / _EPS


# ---------------------------------------------------------------- validation
def check_vectors(name: str, tensor: object) -> None:
    """TypeError/ValueError unless ``tensor`` is a floating ``(..., 3)`` tensor."""
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point torch.Tensor, got {type(tensor).__name__}"
            + (f" of dtype {tensor.dtype}" if isinstance(tensor, torch.Tensor) else "")
        )
    if tensor.ndim < 1 or tensor.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(tensor.shape)}")


def per_batch(name: str, param: object, shape: torch.Size, trailing: int) -> torch.Tensor:
    """View a per-batch parameter ``(B, *t)`` so it broadcasts against ``shape``.

    ``shape`` is the inputs' full shape, whose last ``trailing`` dims the parameter
    supplies. ``(B, *t)`` becomes ``(B, 1, ..., 1, *t)``; an unbatched ``t``-shaped
    parameter counts as B = 1; a parameter of the inputs' rank is used as it is.

    Raises:
        TypeError: a non-numeric parameter.
        ValueError: a wrong trailing shape or a batch size other than 1 or the
            inputs' leading size.
    """
    if not isinstance(param, torch.Tensor):
        try:
            param = torch.as_tensor(param, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                f"{name} must be a tensor or a sequence of numbers, got {type(param).__name__}"
            ) from None
    if param.dtype == torch.bool or param.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {param.dtype}")
    if not param.is_floating_point():
        param = param.to(torch.float32)
    if param.ndim == trailing:
        param = param[None]
    if trailing and param.shape[-1] != shape[-1]:
        raise ValueError(
            f"{name} must have shape (B, 3), (3,) or the inputs' shape {tuple(shape)}, "
            f"got {tuple(param.shape)}"
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
    try:
        return torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in tensors.items())
        raise ValueError(f"input shapes do not broadcast: {shapes}") from None


# ------------------------------------------------------------ vector algebra
# Vectors are handled as tuples of their three components, (...) tensors: PyTorch's
# CPU kernels are several times slower on a last dimension of size 3 (reductions,
# or (..., 1) x (..., 3) broadcasts) than on flat component arrays.
Vec = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _vec(t: torch.Tensor) -> Vec:
    x, y, z = t.unbind(-1)
    return x, y, z


def _sub(a: Vec, b: Vec) -> Vec:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _dot(a: Vec, b: Vec) -> torch.Tensor:
    """Component-wise dot product into one fresh buffer."""
    return (a[0] * b[0]).addcmul_(a[1], b[1]).addcmul_(a[2], b[2])


def _inv_norm_(squared: torch.Tensor) -> torch.Tensor:
    """In place: ``|v|^2 -> 1 / max(|v|, eps)``."""
    return squared.clamp_min_(_EPS * _EPS).rsqrt_()


def _unclamped(coef: torch.Tensor, inv_len: torch.Tensor) -> torch.Tensor:
    """In place: zero ``coef`` where the vector was shorter than eps (clamped)."""
    return coef.masked_fill_(inv_len >= _INV_EPS, 0.0)


Term = tuple[torch.Tensor, Vec, float]


def _new_vectors(like: torch.Tensor) -> torch.Tensor:
    """An uninitialised ``(*like.shape, 3)`` buffer: its callers write every component.

    The components are stored as contiguous planes (a ``(3, *shape)`` buffer viewed with the
    component axis last), so writing and reading one component is a contiguous pass.
    """
    return torch.empty(3, *like.shape, dtype=like.dtype, device=like.device).movedim(0, -1)


def _combine(*terms: Term) -> torch.Tensor:
    """``sum_i sign_i k_i v_i`` -> ``(..., 3)``, for coefficient ``(...)`` / vector terms.

    Each component is accumulated straight into its slot of the output, so no
    per-component temporaries or ``stack`` copies are made.
    """
    (k0, v0, s0), *rest = terms
    out = _new_vectors(k0)
    for axis in range(3):
        dst = out[..., axis]
        torch.mul(k0, v0[axis], out=dst)
        if s0 < 0:
            dst.neg_()
        for k, v, sign in rest:
            dst.addcmul_(k, v[axis], value=sign)
    return out


def _colorize(term: torch.Tensor, color: Vec) -> torch.Tensor:
    """``color * term[..., None]`` -> ``(..., 3)``, written by component."""
    out = _new_vectors(term)
    for axis in range(3):
        torch.mul(term, color[axis], out=out[..., axis])
    return out


def _color_grads(
    ctx: FunctionCtx, grad: torch.Tensor, term: torch.Tensor, color: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(gradient of the uncoloured term, gradient of the colour) from ``grad``."""
    if color is None:
        return grad, None
    grad_color = _colorize(term, _vec(grad)) if ctx.needs_input_grad[ctx.color_index] else None
    return _dot(_vec(grad), _vec(color)), grad_color


class _LambertTerm(torch.autograd.Function):
    """``color * max(cos(n, l), 0)``; l = light - points, or light if points is None.

    Inputs: same-shape ``(..., 3)`` tensors; output ``(..., 3)``.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        normals: torch.Tensor,
        light: torch.Tensor,
        points: torch.Tensor | None,
        color: torch.Tensor,
    ) -> torch.Tensor:
        n = _vec(normals)
        d = _sub(_vec(light), _vec(points)) if points is not None else _vec(light)
        inv_n = _inv_norm_(_dot(n, n))
        inv_d = _inv_norm_(_dot(d, d))
        cos = _dot(n, d).mul_(inv_n).mul_(inv_d)
        term = cos.clamp_min(0.0)
        ctx.point_light = points is not None
        ctx.color_index = 3
        ctx.save_for_backward(normals, *d, inv_n, inv_d, cos, term, color)
        return _colorize(term, _vec(color))

    @staticmethod
    @first_order_only
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        normals, dx, dy, dz, inv_n, inv_d, cos, term, color = ctx.saved_tensors
        n, d = _vec(normals), (dx, dy, dz)
        needs = ctx.needs_input_grad
        grad_term, grad_color = _color_grads(ctx, grad, term, color)
        # c = (n . d) a b with a = 1/max(|n|, eps): dc/dn = a b d - c a^2 n (the
        # second term only where |n| > eps), and symmetrically for d.
        g = grad_term.masked_fill_(cos <= 0, 0.0)
        k_ab = (g * inv_n).mul_(inv_d)
        g_cos = g.mul_(cos)
        grad_n = grad_light = grad_points = None
        if needs[0]:
            k_nn = _unclamped(inv_n.square().mul_(g_cos), inv_n)
            grad_n = _combine((k_ab, d, 1.0), (k_nn, n, -1.0))
        if needs[1] or (ctx.point_light and needs[2]):
            k_dd = _unclamped(inv_d.square().mul_(g_cos), inv_d)
            if needs[1]:
                grad_light = _combine((k_ab, n, 1.0), (k_dd, d, -1.0))
            if ctx.point_light and needs[2]:
                grad_points = _combine((k_ab, n, -1.0), (k_dd, d, 1.0))
        return grad_n, grad_light, grad_points, grad_color


class _PhongTerm(torch.autograd.Function):
    """``color * max(v.r, 0) ** s`` where ``n.l > 0`` (else ``0 ** s``); r = 2 (n.l) n - l.

    l = light - points (point light) or light, v = camera - points; same-shape
    ``(..., 3)`` inputs. ``exponent`` is ``("squarings", k)`` for s = 2**k,
    ``("pow", s)`` for a number or a tensor that needs no gradient, or None for
    s = 1, the power and colour being left to the caller (``color`` None, output
    ``(...)``); otherwise the output is ``(..., 3)``.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        normals: torch.Tensor,
        light: torch.Tensor,
        points: torch.Tensor,
        camera: torch.Tensor,
        color: torch.Tensor | None,
        point_light: bool,
        exponent: tuple[str, float | torch.Tensor] | None,
    ) -> torch.Tensor:
        n, p = _vec(normals), _vec(points)
        d = _sub(_vec(light), p) if point_light else _vec(light)
        v = _sub(_vec(camera), p)
        a = _inv_norm_(_dot(n, n))
        b = _inv_norm_(_dot(d, d))
        c = _inv_norm_(_dot(v, v))
        cos = _dot(n, d).mul_(a).mul_(b)  # C = n^ . l^
        vn = _dot(v, n).mul_(c).mul_(a)  # Vn = v^ . n^
        vd = _dot(v, d).mul_(c).mul_(b)  # Vd = v^ . l^
        alpha = torch.mul(cos, vn).mul_(2.0).sub_(vd)  # A = v^ . r = 2 C Vn - Vd
        live = (cos > 0) & (alpha > 0)
        alpha.masked_fill_(~live, 0.0)
        if exponent is None:
            term = alpha
        elif exponent[0] == "squarings":
            term = alpha.clone()
            for _ in range(int(exponent[1])):
                term.mul_(term)
        else:
            s = exponent[1]
            zero_pow = torch.eq(torch.as_tensor(s, device=alpha.device), 0).to(alpha.dtype)
            term = torch.where(alpha > 0, alpha.pow(s), zero_pow)
        ctx.point_light = point_light
        ctx.exponent = exponent
        ctx.color_index = 4
        ctx.save_for_backward(normals, *d, *v, a, b, c, cos, vn, vd, alpha, live, term, color)
        return term if color is None else _colorize(term, _vec(color))

    @staticmethod
    @first_order_only
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        normals, (dx, dy, dz, vx, vy, vz) = saved[0], saved[1:7]
        a, b, c, cos, vn, vd, alpha, live, term, color = saved[7:]
        n, d, v = _vec(normals), (dx, dy, dz), (vx, vy, vz)
        needs = ctx.needs_input_grad
        grad_term, grad_color = _color_grads(ctx, grad, term, color)
        # d(A^s)/dA = s A^s / A on live elements (A > 0 there).
        if ctx.exponent is not None:
            kind, s = ctx.exponent
            grad_term = grad_term * term
            grad_term.div_(alpha).mul_(2.0**s if kind == "squarings" else s)
        g = torch.where(live, grad_term, 0.0)
        # dA/dn^ = 2 Vn l^ + 2 C v^, dA/dl^ = 2 Vn n^ - v^, dA/dv^ = 2 C n^ - l^; each
        # chained through x^ = x a: dx^ = a (I - x^ x^T) dx, without the projection
        # where |x| <= eps (there x^ = x / eps).
        k1 = (g * a).mul_(b).mul_(vn).mul_(2.0)
        k2 = (g * a).mul_(c).mul_(cos).mul_(2.0)
        k4 = (g * b).mul_(c)
        grad_n = grad_light = grad_points = grad_camera = None
        if needs[0]:
            k3 = _unclamped(a.square().mul_(g).mul_(cos).mul_(vn).mul_(4.0), a)
            grad_n = _combine((k1, d, 1.0), (k2, v, 1.0), (k3, n, -1.0))
        k5 = k6 = None
        if needs[1] or (ctx.point_light and needs[2]):
            k5 = torch.mul(cos, vn).mul_(2.0).sub_(vd).mul_(g).mul_(b.square())
            k5 = _unclamped(k5, b)
        if needs[2] or needs[3]:
            k6 = _unclamped(c.square().mul_(g).mul_(alpha), c)
        if needs[1]:  # dA/dl
            grad_light = _combine((k1, n, 1.0), (k4, v, -1.0), (k5, d, -1.0))
        if needs[3]:  # dA/dv
            grad_camera = _combine((k2, n, 1.0), (k4, d, -1.0), (k6, v, -1.0))
        if needs[2]:  # points move both v = camera - p and, for a point light, l
            if ctx.point_light:
                grad_points = _combine((k1 + k2, n, -1.0), (k4 + k6, v, 1.0), (k4 + k5, d, 1.0))
            else:
                grad_points = _combine((k2, n, -1.0), (k4, d, 1.0), (k6, v, 1.0))
        return grad_n, grad_light, grad_points, grad_camera, grad_color, None, None


# --------------------------------------------------------------------- powers
def _power_of_two_exponent(shininess: float | torch.Tensor) -> int | None:
    """k if shininess is the same 2**k (0 <= k <= 30) everywhere and needs no grad."""
    if isinstance(shininess, torch.Tensor):
        if shininess.requires_grad or shininess.numel() == 0:
            return None
        detached = shininess.detach()
        if all(s == 0 for s in detached.stride()):
            # An expanded single value (e.g. gathered from a batch-1 Materials).
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
    """``base ** exponent`` for base >= 0 with finite gradients at base = 0.

    Used when the exponent itself needs a gradient: ``pow`` runs on a base whose
    zeros are replaced by 1 and the zeros get ``0 ** e`` (1 for e = 0, else 0)
    through ``where``, so neither input receives an infinite or NaN gradient.
    """
    positive = base > 0
    result = torch.where(positive, base, torch.ones_like(base)) ** exponent
    at_zero = (torch.as_tensor(exponent, device=base.device) == 0).to(result.dtype)
    return torch.where(positive, result, at_zero)


# ------------------------------------------------------------------ public
def _full(shape: torch.Size, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Promote to one dtype and expand to ``shape`` (views; autograd sums back)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    for t in present[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [None if t is None else t.to(dtype).expand(shape) for t in tensors]


def lambert(
    normals: torch.Tensor,
    light: torch.Tensor,
    color: torch.Tensor,
    points: torch.Tensor | None = None,
) -> torch.Tensor:
    """``color * max(cos(n, l), 0)``; ``l = light - points``, or ``light`` if no points.

    Args:
        normals, light, color, points: broadcastable ``(..., 3)`` float.

    Returns:
        ``(..., 3)`` float, the broadcast shape.
    """
    named = {"normals": normals, "light": light, "color": color}
    if points is not None:
        named["points"] = points
    shape = broadcast_inputs(**named)
    return _LambertTerm.apply(*_full(shape, normals, light, points, color))


def phong(
    normals: torch.Tensor,
    light: torch.Tensor,
    points: torch.Tensor,
    camera: torch.Tensor,
    color: torch.Tensor,
    shininess: float | torch.Tensor,
    *,
    point_light: bool,
) -> torch.Tensor:
    """``color * max(v.r, 0) ** shininess`` where ``n.l > 0`` (``0 ** shininess`` elsewhere).

    Args:
        normals, light, points, camera, color: broadcastable ``(..., 3)`` float;
            ``l = light - points`` if ``point_light`` else ``light``,
            ``v = camera - points``.
        shininess: a number or a tensor broadcastable against ``(...)``.
        point_light: whether ``light`` is a position or a direction.

    Returns:
        ``(..., 3)`` float, the broadcast shape.
    """
    shape = broadcast_inputs(
        normals=normals, light=light, points=points, camera=camera, color=color
    )
    n, l_, p, cam, col = _full(shape, normals, light, points, camera, color)
    k = _power_of_two_exponent(shininess)
    if k is not None:
        return _PhongTerm.apply(n, l_, p, cam, col, point_light, ("squarings", k))
    if isinstance(shininess, torch.Tensor) and shininess.requires_grad:
        term = _PhongTerm.apply(n, l_, p, cam, None, point_light, None)
        power = safe_pow(term, shininess)
        return torch.stack([power * col[..., i] for i in range(3)], dim=-1)
    return _PhongTerm.apply(n, l_, p, cam, col, point_light, ("pow", shininess))


def diffuse(normals: torch.Tensor, color: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """Lambertian term ``color * max(cos(normals, direction), 0)``.

    Parameters of lower rank than ``normals`` are per-batch: ``(B, 3)`` or ``(3,)``
    is viewed as ``(B, 1, ..., 1, 3)`` (PyTorch3D's rule).

    Args:
        normals: ``(..., 3)`` float, any length (renormalised).
        color: ``(B, 3)``, ``(3,)`` or broadcastable against ``normals``.
        direction: direction towards the light, same shape rules as ``color``.

    Returns:
        The broadcast shape ``(..., 3)``.
    """
    check_vectors("normals", normals)
    color = per_batch("color", color, normals.shape, 1)
    direction = per_batch("direction", direction, normals.shape, 1)
    return lambert(normals, direction, color)


def specular(
    points: torch.Tensor,
    normals: torch.Tensor,
    direction: torch.Tensor,
    camera_position: torch.Tensor,
    color: torch.Tensor,
    shininess: float | torch.Tensor,
) -> torch.Tensor:
    """Phong specular term (PyTorch3D's ``specular``).

    ``color * max(v . r, 0) ** shininess`` where ``n . l > 0`` and ``0 ** shininess``
    elsewhere, with n, l, v the unit normal, light and view directions (v from the
    point to the camera) and ``r = 2 (n . l) n - l``.

    Parameters of lower rank than the inputs are per-batch, as in ``diffuse``.

    Args:
        points: ``(..., 3)`` float world positions.
        normals: ``(..., 3)`` float, broadcastable against ``points`` (renormalised).
        direction: direction towards the light: ``(B, 3)``, ``(3,)`` or broadcastable.
        camera_position: same shape rules as ``direction``.
        color: same shape rules as ``direction``.
        shininess: a number, ``(B,)``, or a tensor broadcastable against
            ``points.shape[:-1]``.

    Returns:
        The broadcast shape ``(..., 3)``.
    """
    check_vectors("points", points)
    check_vectors("normals", normals)
    shape = broadcast_inputs(points=points, normals=normals)
    direction = per_batch("direction", direction, shape, 1)
    camera_position = per_batch("camera_position", camera_position, shape, 1)
    color = per_batch("color", color, shape, 1)
    if isinstance(shininess, torch.Tensor):
        shininess = per_batch("shininess", shininess, shape[:-1], 0)
    return phong(normals, direction, points, camera_position, color, shininess, point_light=False)
