"""Phong shading of (pixel, face) pairs in one autograd function (the shaders' fast path).

``colour = (ambient + kd * max(n . l, 0)) * texel + ks * spec`` with
``spec = max(v . r, 0) ** shininess`` where ``n . l > 0`` (else 0), r = 2 (n . l) n - l, and
n, l, v the unit normal, light and view directions. It is what ``apply_lighting`` with the
light classes of ``lights_phong`` computes, with the same operations in the same order (the
same float results), but the normal and light directions are normalised once for both
terms, the colours are folded in the same pass, and one hand-written backward gives the
gradients of the points, normals and texels. The scene (light, camera, materials) is
constant here: :func:`fast_phong_scene` says when it is, otherwise the shaders take the
general path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import FunctionCtx

from ._autograd import first_order_only
from .lights import DirectionalLights, PointLights
from .lights_phong import (
    _combine,
    _dot,
    _inv_norm_,
    _new_vectors,
    _power_of_two_exponent,
    _sub,
    _unclamped,
    _vec,
)

__all__ = ["PhongScene", "fast_phong_scene", "phong_colors"]


@dataclass(frozen=True)
class PhongScene:
    """A constant Phong scene for one batch (detached tensors).

    Attributes:
        light: (3,) light position (point light) or direction towards the light.
        point_light: whether ``light`` is a position.
        camera: (N_c, 3) camera centres, N_c 1 or the number of images.
        ambient: (3,) material ambient colour times light ambient colour.
        light_diffuse, material_diffuse, light_specular, material_specular: (3,) colours.
        squarings: k with shininess = 2 ** k (applied by repeated squaring), or None.
        shininess: the exponent (a float) when it is not a power of two.
    """

    light: torch.Tensor
    point_light: bool
    camera: torch.Tensor
    ambient: torch.Tensor
    light_diffuse: torch.Tensor
    material_diffuse: torch.Tensor
    light_specular: torch.Tensor
    material_specular: torch.Tensor
    squarings: int | None
    shininess: float


def _single(param: torch.Tensor) -> torch.Tensor | None:
    """The one row of a batch-1 (1, ...) parameter that needs no gradient, else None."""
    if param.requires_grad or param.shape[0] != 1:
        return None
    return param[0]


def fast_phong_scene(lights: object, cameras: object, materials: object, num_images: int, dtype: torch.dtype) -> PhongScene | None:
    """The scene as a :class:`PhongScene` when the fused path applies, else None.

    It applies to a single point or directional light and a single material (batch 1),
    cameras of batch 1 or ``num_images``, and no scene tensor that needs a gradient.
    """
    if type(lights) not in (PointLights, DirectionalLights) or not hasattr(materials, "shininess"):
        return None
    params = [lights._light(), lights.ambient_color, lights.diffuse_color, lights.specular_color]  # type: ignore[attr-defined]
    params += [materials.ambient_color, materials.diffuse_color, materials.specular_color]  # type: ignore[attr-defined]
    rows = [_single(p) for p in params]
    shininess = materials.shininess  # type: ignore[attr-defined]
    if any(r is None or r.dtype != dtype for r in rows) or shininess.requires_grad or shininess.shape[0] != 1:
        return None
    centers = cameras.get_camera_center()  # type: ignore[attr-defined]
    if centers.requires_grad or centers.shape[0] not in (1, num_images):
        return None
    light, l_amb, l_diff, l_spec, m_amb, m_diff, m_spec = rows
    k = _power_of_two_exponent(shininess)
    return PhongScene(
        light, type(lights) is PointLights, centers.to(dtype), m_amb * l_amb,  # type: ignore[operator]
        l_diff, m_diff, l_spec, m_spec, k, float(shininess[0]),  # type: ignore[arg-type]
    )


def _planes(values: torch.Tensor, image_idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-image (B, 3) values as three (P,) component rows (B 1: three 0-dim tensors)."""
    if values.shape[0] == 1:
        return tuple(values[0].unbind(0))
    return tuple(values[:, axis].index_select(0, image_idx) for axis in range(3))


class _PhongPairs(torch.autograd.Function):
    """Phong colours (P, 3) (component planes) from points, normals, texels (P, 3)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        points: torch.Tensor,
        normals: torch.Tensor,
        texels: torch.Tensor,
        camera: tuple[torch.Tensor, ...],
        scene: PhongScene,
    ) -> torch.Tensor:
        n, p = _vec(normals), _vec(points)
        light = tuple(scene.light.unbind(0))
        d = _sub(light, p) if scene.point_light else light  # type: ignore[arg-type]
        v = _sub(camera, p)  # type: ignore[arg-type]
        a = _inv_norm_(_dot(n, n))
        b = _inv_norm_(_dot(d, d))  # 0-dim for a directional light
        c = _inv_norm_(_dot(v, v))
        cos = _dot(n, d).mul_(a).mul_(b)  # n^ . l^
        vn = _dot(v, n).mul_(c).mul_(a)  # v^ . n^
        vd = _dot(v, d).mul_(c).mul_(b)  # v^ . l^
        diffuse = cos.clamp_min(0.0)
        alpha = torch.mul(cos, vn).mul_(2.0).sub_(vd)  # v^ . r
        live = (cos > 0) & (alpha > 0)
        alpha.masked_fill_(~live, 0.0)
        if scene.squarings is not None:
            spec = alpha.clone()
            for _ in range(scene.squarings):
                spec.mul_(spec)
        else:
            zero_pow = float(scene.shininess == 0)
            spec = torch.where(alpha > 0, alpha.pow(scene.shininess), zero_pow)
        out = _new_vectors(cos)
        tex = _vec(texels)
        for axis in range(3):
            # (ambient + md * (ld * diffuse)) * texel + ms * (ls * spec), as apply_lighting
            lit = (diffuse * scene.light_diffuse[axis]).mul_(scene.material_diffuse[axis]).add_(scene.ambient[axis])
            shine = (spec * scene.light_specular[axis]).mul_(scene.material_specular[axis])
            torch.mul(lit, tex[axis], out=out[..., axis]).add_(shine)
        ctx.scene = scene
        ctx.save_for_backward(normals, texels, *d, *v, a, b, c, cos, vn, vd, diffuse, alpha, live, spec)
        return out

    @staticmethod
    @first_order_only
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        scene: PhongScene = ctx.scene
        saved = ctx.saved_tensors
        normals, texels, (dx, dy, dz, vx, vy, vz) = saved[0], saved[1], saved[2:8]
        a, b, c, cos, vn, vd, diffuse, alpha, live, spec = saved[8:]
        n, d, v, tex, g = _vec(normals), (dx, dy, dz), (vx, vy, vz), _vec(texels), _vec(grad)
        needs = ctx.needs_input_grad
        grad_tex = _new_vectors(cos) if needs[2] else None
        g_diff = torch.zeros_like(cos)
        g_spec = torch.zeros_like(cos)
        for axis in range(3):
            kd = scene.material_diffuse[axis] * scene.light_diffuse[axis]
            g_diff.addcmul_(g[axis], tex[axis] * kd)
            g_spec.add_(g[axis] * (scene.material_specular[axis] * scene.light_specular[axis]))
            if grad_tex is not None:
                lit = (diffuse * scene.light_diffuse[axis]).mul_(scene.material_diffuse[axis]).add_(scene.ambient[axis])
                torch.mul(g[axis], lit, out=grad_tex[..., axis])
        # Lambert: c = (n . d) a b with a = 1/max(|n|, eps): dc/dn = a b d - c a^2 n, the
        # second term only where |n| > eps; symmetrically for d.
        g_l = g_diff.masked_fill_(cos <= 0, 0.0)
        # Phong: d(A^s)/dA = s A^s / A on live elements (A > 0 there).
        if scene.squarings is not None:
            g_s = (g_spec * spec).div_(alpha).mul_(2.0**scene.squarings)
        else:
            g_s = (g_spec * spec).div_(alpha).mul_(scene.shininess)
        g_s.masked_fill_(~live, 0.0)  # also the 0 / 0 of dead elements
        # dA/dn^ = 2 Vn l^ + 2 C v^, dA/dl^ = 2 Vn n^ - v^, dA/dv^ = 2 C n^ - l^, chained
        # through x^ = x a: dx^ = a (I - x^ x^T) dx (no projection where |x| <= eps).
        k_ab = (g_l * a).mul_(b)  # Lambert along d (for n) and n (for d)
        k1 = (g_s * a).mul_(b).mul_(vn).mul_(2.0)
        k1.add_(k_ab)  # both terms: coefficient of d in dn, of n in dd
        k2 = (g_s * a).mul_(c).mul_(cos).mul_(2.0)
        k4 = (g_s * b).mul_(c)
        g_cos_l = g_l * cos
        grad_n = grad_points = None
        if needs[0] or needs[1]:
            k3 = a.square().mul_(g_s).mul_(cos).mul_(vn).mul_(4.0).add_(a.square().mul_(g_cos_l))
            k3 = _unclamped(k3, a)
            if needs[1]:
                grad_n = _combine((k1, d, 1.0), (k2, v, 1.0), (k3, n, -1.0))
        if needs[0]:
            k6 = _unclamped(c.square().mul_(g_s).mul_(alpha), c)
            if scene.point_light:
                k5 = torch.mul(cos, vn).mul_(2.0).sub_(vd).mul_(g_s).mul_(b.square())
                k5.add_(b.square().mul_(g_cos_l))
                k5 = _unclamped(k5, b)
                grad_points = _combine((k1 + k2, n, -1.0), (k4 + k6, v, 1.0), (k4 + k5, d, 1.0))
            else:
                grad_points = _combine((k2, n, -1.0), (k4, d, 1.0), (k6, v, 1.0))
        return grad_points, grad_n, grad_tex, None, None


def phong_colors(
    points: torch.Tensor,
    normals: torch.Tensor,
    texels: torch.Tensor,
    image_idx: torch.Tensor | None,
    scene: PhongScene,
) -> torch.Tensor:
    """Phong colours of P shading points: (P, 3), stored as component planes.

    Args:
        points: (P, 3) world positions.
        normals: (P, 3) normals (any length; renormalised, zero gives no diffuse/specular).
        texels: (P, 3) surface colours.
        image_idx: (P,) long image of each point, or None when the camera batch is 1.
        scene: the constant scene (:func:`fast_phong_scene`).
    """
    idx = image_idx if image_idx is not None else torch.zeros(0, dtype=torch.long, device=points.device)
    camera = _planes(scene.camera, idx)
    return _PhongPairs.apply(points, normals, texels, camera, scene)
