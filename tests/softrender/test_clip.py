"""Tests of ``z_clip_value``: faces clipped at a view depth, against a by-hand reference."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import ico_sphere
from diffmesh.softrender import (
    BlendParams,
    FoVOrthographicCameras,
    FoVPerspectiveCameras,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
    look_at_view_transform,
    rasterize_meshes,
)


def _clip_by_hand(fv: torch.Tensor, c: float, persp: bool):
    """Clip each face by hand (a loop over faces): PyTorch3D's four cases.

    Returns:
        sub-triangles (F', 3, 3), their original face ids, barycentric conversion matrices
        (F', 3 corners, 3 original vertices) and the other half of a split face (or -1).
    """
    eye = torch.eye(3, dtype=fv.dtype)
    tris, src, conv, other = [], [], [], []
    for f in range(fv.shape[0]):
        v = fv[f]
        behind = [bool(v[i, 2] < c) for i in range(3)]
        n_behind = sum(behind)
        if n_behind == 3:
            continue  # culled
        if n_behind == 0:
            tris.append(v)
            src.append(f)
            conv.append(eye)
            other.append(-1)
            continue
        i1 = behind.index(n_behind == 1)  # the vertex alone on its side of the plane
        i2, i3 = (i1 + 1) % 3, (i1 + 2) % 3

        def cut(a: int, b: int, v=v):
            w = (v[a, 2] - c) / (v[a, 2] - v[b, 2])
            p = v[a] * (1 - w) + v[b] * w
            if persp:  # interpolate in view space: NDC x, y times depth
                xy = (v[a, :2] * v[a, 2] * (1 - w) + v[b, :2] * v[b, 2] * w) / c
                p = torch.cat((xy, p[2:]))
            return p, eye[a] * (1 - w) + eye[b] * w

        points = {1: (v[i1], eye[i1]), 2: (v[i2], eye[i2]), 3: (v[i3], eye[i3])}
        points[4], points[5] = cut(i1, i2), cut(i1, i3)
        groups = [(4, 5, 1)] if n_behind == 2 else [(4, 2, 5), (5, 2, 3)]
        for j, group in enumerate(groups):
            row = len(tris)
            tris.append(torch.stack([points[g][0] for g in group]))
            conv.append(torch.stack([points[g][1] for g in group]))
            src.append(f)
            other.append(-1 if len(groups) == 1 else (row + 1 if j == 0 else row - 1))
    if not tris:
        return fv.new_zeros(0, 3, 3), [], fv.new_zeros(0, 3, 3), []
    return torch.stack(tris), src, torch.stack(conv), other


def _pair_then_nearest(cands, other, dists, k):
    """The documented rule: where both halves of a split face touch the pixel, the second
    is kept only if strictly nearer (unsigned distance); then the K nearest by (z, row)."""
    rows = {row for _, row, _ in cands}
    drop = set()
    for _, row, s in cands:
        mate = other[row]
        if mate > row and mate in rows:  # row is a first half, its second half also touches
            s2 = next(s2 for _, r, s2 in cands if r == mate)
            drop.add(row if abs(float(dists[s2])) < abs(float(dists[s])) else mate)
    return sorted(c for c in cands if c[1] not in drop)[:k]


def _pytorch3d_queue(cands, other, dists, k):
    """PyTorch3D's CPU kernel replayed: faces in id order into a K-slot queue; a second half
    whose first half is queued replaces it only if strictly nearer, else it is dropped."""
    queue: list[tuple[float, int, int]] = []
    for z, row, s in sorted(cands, key=lambda c: c[1]):
        mate = [i for i, q in enumerate(queue) if q[1] == other[row]]
        if mate:
            if abs(float(dists[s])) < abs(float(dists[queue[mate[0]][2]])):
                queue[mate[0]] = (z, row, s)
        else:
            queue.append((z, row, s))
        queue = sorted(queue)[:k]
    return queue


def _reference(dense, checks, meshes: Meshes, size, blur, k, c, persp=False, clip=False, cull=False, rule=_pair_then_nearest):
    """Clip by hand, rasterize every sub-triangle densely (all candidates per pixel), keep
    per pixel the pairs ``rule`` selects, and map them back to the original faces; also the
    condition number of the sub-triangle behind each fragment (``checks``: the
    ``fragment_checks`` fixture)."""
    verts, faces = meshes.verts_packed(), meshes.faces_packed()
    fv = verts[faces].detach()
    to_mesh = meshes.faces_packed_to_mesh_idx()
    tris, src, conv, other = _clip_by_hand(fv, c, persp)
    sub_mesh = to_mesh[torch.tensor(src, dtype=torch.long)] if src else to_mesh[:0]
    n_meshes = len(meshes)
    all_k = max(len(src), 1)
    p2f, zbuf, bary, dists = dense(tris, sub_mesh, n_meshes, size, blur, all_k, persp, clip, cull)
    shape = (n_meshes, *size, k)
    out_f = torch.full(shape, -1, dtype=torch.long)
    out_z = torch.full(shape, -1.0, dtype=fv.dtype)
    out_d = torch.full(shape, -1.0, dtype=fv.dtype)
    out_b = torch.full((*shape, 3), -1.0, dtype=fv.dtype)
    out_cond = torch.ones(shape, dtype=torch.float64)
    cond = checks[0](tris, persp)
    for n in range(n_meshes):
        for y in range(size[0]):
            for x in range(size[1]):
                cands = [
                    (float(zbuf[n, y, x, s]), int(p2f[n, y, x, s]), s)
                    for s in range(all_k) if int(p2f[n, y, x, s]) >= 0
                ]
                for i, (_, row, s) in enumerate(rule(cands, other, dists[n, y, x], k)):
                    out_f[n, y, x, i] = src[row]
                    out_z[n, y, x, i] = zbuf[n, y, x, s]
                    out_d[n, y, x, i] = dists[n, y, x, s]
                    out_b[n, y, x, i] = bary[n, y, x, s] @ conv[row]
                    out_cond[n, y, x, i] = cond[row]
    return out_f, out_z, out_b, out_d, out_cond


def _assert_matches(fr, ref, fragment_checks) -> None:
    _, assert_close = fragment_checks
    assert_close(fr, ref[:4], ref[4])


def _scene() -> Meshes:
    """Random faces around the plane z = 1 (every clipping case), an empty mesh, and a fan
    of faces each with one vertex behind the plane."""
    g = torch.Generator().manual_seed(4)
    v0 = torch.rand(24, 3, generator=g) * 2.4 - 1.2
    v0[:, 2] = torch.rand(24, generator=g) * 2.4 - 0.2  # view depth in [-0.2, 2.2]
    f0 = torch.randint(0, 24, (30, 3), generator=g)
    fan = torch.tensor(
        [[0.0, 0.1, 1.8], [0.9, -0.2, 0.3], [0.2, 0.9, 1.6], [-0.8, 0.3, 0.6], [0.1, -0.9, 2.0]]
    )
    f2 = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    empty = (torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long))
    return Meshes([v0, empty[0], fan], [f0, empty[1], f2])


def test_scene_has_every_case():
    fv = _scene().verts_packed()[_scene().faces_packed()]
    behind = (fv[..., 2] < 1.0).sum(dim=1)
    assert set(behind.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("image_size", [9, (8, 11)])
@pytest.mark.parametrize(("blur", "k"), [(0.0, 1), (0.0, 3), (0.05, 1), (0.05, 3), (0.05, 12)])
@pytest.mark.parametrize("persp", [False, True])
def test_matches_by_hand_reference(dense_rasterize, fragment_checks, image_size, blur, k, persp):
    meshes = _scene()
    clip = blur > 0
    fr = rasterize_meshes(
        meshes, image_size, blur, k, perspective_correct=persp, clip_barycentric_coords=clip,
        z_clip_value=1.0,
    )
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    ref = _reference(dense_rasterize, fragment_checks, meshes, size, blur, k, 1.0, persp, clip)
    _assert_matches(fr, ref, fragment_checks)
    assert bool((fr.pix_to_face[1] == -1).all())  # the empty mesh
    face = fr.pairs.face
    runs = face[torch.cat((torch.ones(1, dtype=torch.bool), face[1:] != face[:-1]))]
    assert runs.unique().shape == runs.shape  # each face's pairs are contiguous
    if k == 12:  # no pixel has more than K candidates: PyTorch3D's queue gives the same
        queue = _reference(dense_rasterize, fragment_checks, meshes, size, blur, k, 1.0, persp, clip, rule=_pytorch3d_queue)
        _assert_matches(fr, queue, fragment_checks)


@pytest.mark.parametrize("cull", [False, True])
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("c", [0.5, 1.4])
def test_culling_and_bary_clipping_match_reference(dense_rasterize, fragment_checks, cull, clip, c):
    meshes = _scene()
    fr = rasterize_meshes(meshes, 10, 0.02, 4, clip_barycentric_coords=clip, cull_backfaces=cull,
                          z_clip_value=c)
    ref = _reference(dense_rasterize, fragment_checks, meshes, (10, 10), 0.02, 4, c, False, clip, cull)
    _assert_matches(fr, ref, fragment_checks)


def _triangle(z: tuple[float, float, float], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    xy = torch.tensor([[-0.8, -0.7], [0.9, -0.5], [0.1, 0.8]], dtype=dtype)
    return torch.cat((xy, torch.tensor(z, dtype=dtype)[:, None]), dim=1)


@pytest.mark.parametrize("z", [(2.0, 0.2, 1.5), (0.3, 0.4, 1.5)])  # one / two vertices behind
@pytest.mark.parametrize("persp", [False, True])
def test_crossing_triangle(z, persp):
    """A crossing face is drawn only where it is in front of the plane; its barycentrics
    are in the original face (they interpolate the original depths to zbuf)."""
    verts = _triangle(z)
    meshes = Meshes([verts], [torch.tensor([[0, 1, 2]])])
    fr = rasterize_meshes(meshes, 16, 0.0, 2, perspective_correct=persp, z_clip_value=1.0)
    full = rasterize_meshes(meshes, 16, 0.0, 2, perspective_correct=persp)
    drawn = fr.pix_to_face[..., 0] == 0
    assert 0 < int(drawn.sum()) < int((full.pix_to_face[..., 0] == 0).sum())
    assert bool((fr.pix_to_face[..., 1] == -1).all())  # one pair per pixel, even for a split face
    assert bool((fr.pix_to_face[..., 0] >= 0).le(full.pix_to_face[..., 0] >= 0).all())
    zbuf, bary = fr.zbuf[..., 0][drawn], fr.bary_coords[..., 0, :][drawn]
    assert bool((zbuf >= 1.0 - 1e-6).all())
    torch.testing.assert_close(bary.sum(-1), torch.ones_like(zbuf))
    torch.testing.assert_close((bary * verts[:, 2]).sum(-1), zbuf, atol=1e-5, rtol=0)
    # pixels well in front of the plane agree with the unclipped face
    front = drawn & (full.zbuf[..., 0] > 1.1)
    assert int(front.sum()) > 0
    torch.testing.assert_close(fr.bary_coords[..., 0, :][front], full.bary_coords[..., 0, :][front],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(fr.zbuf[..., 0][front], full.zbuf[..., 0][front], atol=1e-5, rtol=0)


def test_face_entirely_behind_is_culled():
    """In front of the camera but behind the plane: drawn without clipping, culled with it."""
    meshes = Meshes([_triangle((0.3, 0.4, 0.45))], [torch.tensor([[0, 1, 2]])])
    assert int((rasterize_meshes(meshes, 8, 0.0, 1).pix_to_face >= 0).sum()) > 0
    fr = rasterize_meshes(meshes, 8, 0.05, 2, z_clip_value=0.5)
    assert bool((fr.pix_to_face == -1).all()) and bool((fr.zbuf == -1).all())


@pytest.mark.parametrize("persp", [False, True])
def test_faces_in_front_are_unchanged_bit_for_bit(persp):
    g = torch.Generator().manual_seed(5)
    verts = torch.rand(20, 3, generator=g) * 2 - 1
    verts[:, 2] = torch.rand(20, generator=g) * 2 + 1.0  # all at depth >= 1
    faces = torch.randint(0, 20, (25, 3), generator=g)
    meshes = Meshes([verts, verts[:7]], [faces, faces[:4] % 7])
    a = rasterize_meshes(meshes, 12, 0.03, 4, perspective_correct=persp, clip_barycentric_coords=True)
    b = rasterize_meshes(meshes, 12, 0.03, 4, perspective_correct=persp, clip_barycentric_coords=True,
                         z_clip_value=0.9)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize(("z", "blur"), [((2.0, 0.2, 1.5), 0.0), ((0.3, 0.4, 1.5), 0.0), ((0.3, 0.4, 1.5), 0.02)])
@pytest.mark.parametrize("persp", [False, True])
def test_gradcheck_through_clipped_vertices(z, blur, persp):
    """float64 gradcheck of zbuf, bary_coords and dists w.r.t. the vertex positions,
    including the depths of the vertices behind the plane (they move the clipped edge)."""
    verts = _triangle(z, torch.float64) + torch.tensor([0.013, -0.021, 0.0], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2]])
    g = torch.Generator().manual_seed(6)
    w = torch.randn(3, 8, 8, 2, 3, generator=g, dtype=torch.float64)

    def fn(v: torch.Tensor) -> torch.Tensor:
        fr = rasterize_meshes(Meshes([v], [faces]), 8, blur, 2, perspective_correct=persp,
                              clip_barycentric_coords=blur > 0, z_clip_value=1.0)
        return (
            (fr.zbuf * w[0, ..., 0]).sum()
            + (fr.dists * w[1, ..., 0]).sum()
            + (fr.bary_coords * w[2]).sum()
        )

    v = verts.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (v,), eps=1e-7, atol=1e-5, rtol=1e-4)
    fn(v).backward()
    behind = v.detach()[:, 2] < 1.0
    assert bool((v.grad[behind, 2] != 0).all())  # the gradient reaches the clipped vertices


def _colored(meshes: Meshes) -> Meshes:
    verts = meshes.verts_packed()
    return Meshes([verts], [meshes.faces_packed()], textures=TexturesVertex([(verts + 1) / 2]))


@pytest.mark.parametrize(
    ("eye", "at"),
    [((0.01, 0.02, -0.03), (0.3, 0.2, 1.0)), ((0.2, 0.3, 0.93), (0.0, 0.0, 0.0))],
    ids=["from-the-centre", "through-the-surface"],
)
def test_camera_inside_a_mesh_renders_finite(eye, at):
    """ico_sphere(2) seen from inside or through its surface: faces crossing the near plane
    are clipped (znear / 2, PyTorch3D's default); images and gradients are finite."""
    sphere = ico_sphere(2)
    verts = sphere.verts_packed().clone().requires_grad_(True)
    meshes = _colored(Meshes([verts], [sphere.faces_packed()]))
    R, T = look_at_view_transform(eye=torch.tensor([eye]), at=torch.tensor([at]))
    cameras = FoVPerspectiveCameras(R=R, T=T, znear=0.1)
    view_z = cameras.get_world_to_view_transform().transform_points(verts[None].detach())[0, :, 2]
    assert bool((view_z < 0.05).any()) and bool((view_z > 0.05).any())  # the plane cuts the mesh
    blend = BlendParams(sigma=1e-4, gamma=1e-4)
    settings = RasterizationSettings(image_size=24, blur_radius=2e-4, faces_per_pixel=4)
    renderer = MeshRenderer(
        MeshRasterizer(cameras, settings),
        SoftPhongShader(cameras=cameras, lights=PointLights(location=[[0.0, 0.0, 0.0]]), blend_params=blend),
    )
    images = renderer(meshes)
    assert bool(torch.isfinite(images).all())
    assert float(images[..., 3].detach().mean()) > 0.9  # surrounded by the sphere: nearly every pixel drawn
    images[..., :3].sum().backward()
    assert bool(torch.isfinite(verts.grad).all()) and float(verts.grad.abs().sum()) > 0


def _projected(cameras, meshes: Meshes) -> Meshes:
    verts = meshes.verts_packed()
    view = cameras.get_world_to_view_transform().transform_points(verts[None])[0]
    ndc = cameras.transform_points(verts[None])[0]
    return Meshes([torch.cat((ndc[:, :2], view[:, 2:]), dim=1)], [meshes.faces_packed()])


def test_mesh_rasterizer_default_and_explicit_clipping():
    """FoV perspective cameras clip at znear / 2 when barycentrics are perspective-correct
    (PyTorch3D's default), not when they are not; an explicit value is used as it is."""
    sphere = ico_sphere(1)
    R, T = look_at_view_transform(dist=1.2, elev=10.0, azim=20.0)
    cameras = FoVPerspectiveCameras(R=R, T=T, znear=0.6)
    projected = _projected(cameras, sphere)
    view_z = projected.verts_packed()[:, 2]
    assert bool((view_z < 0.3).any())  # some faces cross z = znear / 2

    def fragments(**kw):
        settings = RasterizationSettings(image_size=12, blur_radius=0.01, faces_per_pixel=3, **kw)
        return MeshRasterizer(cameras, settings)(sphere)

    def expected(persp: bool, c: float | None):
        return rasterize_meshes(projected, 12, 0.01, 3, perspective_correct=persp,
                                clip_barycentric_coords=True, z_clip_value=c)

    for got, want in (
        (fragments(), expected(True, 0.3)),
        (fragments(perspective_correct=False), expected(False, None)),
        (fragments(perspective_correct=False, z_clip_value=0.4), expected(False, 0.4)),
        (fragments(z_clip_value=0.7), expected(True, 0.7)),
    ):
        assert torch.equal(got.pix_to_face, want.pix_to_face)
        torch.testing.assert_close(got.zbuf, want.zbuf, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.bary_coords, want.bary_coords, atol=1e-5, rtol=1e-5)
    assert not torch.equal(fragments().pix_to_face, expected(True, None).pix_to_face)


def test_orthographic_cameras_do_not_clip_by_default():
    meshes = Meshes([_triangle((2.0, 0.2, 1.5))], [torch.tensor([[0, 1, 2]])])
    cameras = FoVOrthographicCameras(znear=1.0)
    plain = MeshRasterizer(cameras, RasterizationSettings(image_size=10))(meshes)
    assert torch.equal(plain.pix_to_face, rasterize_meshes(meshes, 10, 0.0, 1).pix_to_face)
    forced = MeshRasterizer(cameras, RasterizationSettings(image_size=10, perspective_correct=True))(meshes)
    assert torch.equal(
        forced.pix_to_face,
        rasterize_meshes(meshes, 10, 0.0, 1, perspective_correct=True, z_clip_value=0.5).pix_to_face,
    )


def test_silhouette_renderer_with_z_clip_value():
    sphere = ico_sphere(1)
    R, T = look_at_view_transform(dist=1.05, elev=0.0, azim=0.0)
    cameras = FoVPerspectiveCameras(R=R, T=T)
    settings = RasterizationSettings(image_size=16, blur_radius=1e-3, faces_per_pixel=6, z_clip_value=0.2)
    renderer = MeshRenderer(MeshRasterizer(cameras, settings), SoftSilhouetteShader())
    alpha = renderer(sphere)[..., 3]
    assert bool(torch.isfinite(alpha).all()) and float(alpha.detach().mean()) > 0.5


def test_settings_validation():
    assert RasterizationSettings(z_clip_value=1).z_clip_value == 1.0
    assert RasterizationSettings(z_clip_value=0.25).z_clip_value == 0.25
    for bad in (True, "0.5", [0.5]):
        with pytest.raises(TypeError, match="z_clip_value"):
            RasterizationSettings(z_clip_value=bad)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="z_clip_value"):
            RasterizationSettings(z_clip_value=bad)
    meshes = Meshes([_triangle((2.0, 0.2, 1.5))], [torch.tensor([[0, 1, 2]])])
    with pytest.raises(ValueError, match="z_clip_value"):
        rasterize_meshes(meshes, 8, 0.0, 1, z_clip_value=-0.5)
