"""ico_sphere: counts, radius, winding, manifoldness, agreement with a naive subdivision, cache."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere
from diffmesh.meshio.ico_sphere import _cached, icosahedron


@pytest.mark.parametrize("level", range(7))
def test_counts_radius_winding_and_manifold(level):
    mesh = ico_sphere(level)
    assert isinstance(mesh, Meshes) and len(mesh) == 1
    verts, faces = mesh.verts_packed(), mesh.faces_packed()
    assert verts.shape == (10 * 4**level + 2, 3) and verts.dtype == torch.float32
    assert faces.shape == (20 * 4**level, 3) and faces.dtype == torch.int64
    torch.testing.assert_close(verts.norm(dim=1), torch.ones(verts.shape[0]), atol=1e-6, rtol=0)
    v0, v1, v2 = verts[faces].double().unbind(1)
    outward = (torch.linalg.cross(v1 - v0, v2 - v0) * (v0 + v1 + v2)).sum(1)
    assert (outward > 0).all()
    # closed, consistently oriented 2-manifold: each directed edge once, its reverse once
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    keys = directed[:, 0] * verts.shape[0] + directed[:, 1]
    reverse = directed[:, 1] * verts.shape[0] + directed[:, 0]
    assert keys.unique().numel() == keys.numel()
    assert torch.equal(keys.sort().values, reverse.sort().values)
    assert verts.unique(dim=0).shape[0] == verts.shape[0]  # no duplicate vertices
    # Euler characteristic of the sphere: V - E + F = 2
    assert verts.shape[0] - keys.numel() // 2 + faces.shape[0] == 2


def _naive_subdivide(verts: list[tuple[float, float, float]], faces: list[tuple[int, int, int]]):
    """One loop iteration per face: split at edge midpoints (a dict of edges), project."""
    verts = list(verts)
    midpoint: dict[tuple[int, int], int] = {}

    def mid(i: int, j: int) -> int:
        key = (min(i, j), max(i, j))
        if key not in midpoint:
            x, y, z = (verts[i][k] + verts[j][k] for k in range(3))
            r = (x * x + y * y + z * z) ** 0.5
            verts.append((x / r, y / r, z / r))
            midpoint[key] = len(verts) - 1
        return midpoint[key]

    out = []
    for a, b, c in faces:
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        out += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
    return verts, out


def _triangle_set(verts: torch.Tensor, faces: torch.Tensor) -> set:
    """Faces as sets of rounded coordinate triples, rotated to start at the smallest corner."""
    result = set()
    for face in faces.tolist():
        corners = [tuple(round(float(x), 5) for x in verts[i]) for i in face]
        k = corners.index(min(corners))
        result.add(tuple(corners[k:] + corners[:k]))  # keeps the winding
    return result


def test_matches_naive_subdivision():
    verts, faces = icosahedron()
    ref_v = [tuple(v) for v in verts.double().tolist()]
    ref_f = [tuple(f) for f in faces.tolist()]
    for level in range(1, 4):
        ref_v, ref_f = _naive_subdivide(ref_v, ref_f)
        mesh = ico_sphere(level)
        expected_v = torch.tensor(ref_v, dtype=torch.float32)
        got_v = mesh.verts_packed()
        torch.testing.assert_close(got_v.sort(dim=0).values, expected_v.sort(dim=0).values,
                                   atol=1e-6, rtol=0)
        assert _triangle_set(got_v, mesh.faces_packed()) == _triangle_set(
            expected_v, torch.tensor(ref_f)
        )


def test_icosahedron_is_regular():
    verts, faces = icosahedron()
    assert verts.shape == (12, 3) and faces.shape == (20, 3)
    corners = verts[faces].double()
    sides = (corners - corners.roll(1, dims=1)).norm(dim=2)
    torch.testing.assert_close(sides, torch.full_like(sides, float(sides[0, 0])))


def test_cache_returns_fresh_meshes():
    _cached.cache_clear()
    first = ico_sphere(3)
    first.verts_packed().mul_(2.0)  # modify one result in place ...
    first.offset_verts_(torch.ones(3))
    second = ico_sphere(3)  # ... and the next is unaffected
    torch.testing.assert_close(second.verts_packed().norm(dim=1), torch.ones(642), atol=1e-6, rtol=0)
    assert second.verts_packed().data_ptr() != first.verts_packed().data_ptr()
    info = _cached.cache_info()
    assert info.hits >= 1 and info.currsize == 4  # levels 0..3 on the CPU, each computed once


def test_device_and_bad_levels():
    mesh = ico_sphere(1, device="cpu")
    assert mesh.device == torch.device("cpu") and mesh.verts_packed().device.type == "cpu"
    assert ico_sphere().verts_packed().shape == (12, 3)  # level 0 by default
    with pytest.raises(ValueError, match="level must be >= 0, got -1"):
        ico_sphere(-1)
    with pytest.raises(TypeError, match="level must be an int, got float"):
        ico_sphere(1.0)
    with pytest.raises(TypeError, match="level must be an int, got bool"):
        ico_sphere(True)
    with pytest.raises(ValueError, match="device must name a torch device"):
        ico_sphere(1, device="gpu")
