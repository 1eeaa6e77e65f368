"""Targets of `fit shape`: meshes and point clouds from every format, sampling, the measure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffmesh.fit.data import bundled_path
from diffmesh.fit.metrics import eval_chamfer
from diffmesh.fit.targets import ShapeTargets, eval_chamfer_targets, load_targets, portable_source
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere, save_obj, save_off, save_ply, save_pointcloud
from diffmesh.meshloss import sample_points_from_meshes

# coordinates of size <= 1 (the normalized frame), computed along another float32 path
UNIT_ATOL = 8 * torch.finfo(torch.float32).eps

CPU = torch.device("cpu")


def _mesh() -> tuple[torch.Tensor, torch.Tensor]:
    sphere = ico_sphere(1)
    verts = sphere.verts_packed() * torch.tensor([2.0, 1.0, 0.5]) + torch.tensor([1.0, -2.0, 3.0])
    return verts, sphere.faces_packed()


def _normalized(verts: torch.Tensor) -> torch.Tensor:
    center = verts.mean(0)
    return (verts - center) / (verts - center).abs().max()


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off"])
def test_meshes_of_every_format_load_normalized(tmp_path, suffix):
    verts, faces = _mesh()
    path = tmp_path / f"m{suffix}"
    {".obj": save_obj, ".ply": save_ply, ".off": save_off}[suffix](str(path), verts, faces)
    t = load_targets([path], CPU)
    assert t.kinds == ["mesh"] and t.names == ["m"] and t.paths == [path]
    assert torch.equal(t.faces[0], faces)
    assert torch.allclose(t.verts[0], _normalized(verts), atol=UNIT_ATOL)
    assert torch.allclose(t.verts[0] * t.scales[0] + t.centers[0], verts, atol=1e-5)


@pytest.mark.parametrize(
    ("suffix", "normals"),
    [(".ply", True), (".ply", False), (".xyz", True), (".xyz", False), (".pts", False)],
)
def test_point_clouds_load_normalized(tmp_path, suffix, normals):
    points = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * 3 + 1
    path = tmp_path / f"cloud{suffix}"
    if suffix == ".pts":  # PTS: a count line, then x y z intensity
        rows = "\n".join(f"{x:.9g} {y:.9g} {z:.9g} 7" for x, y, z in points.tolist())
        path.write_text(f"50\n{rows}\n")
    else:
        save_pointcloud(
            str(path), points, torch.nn.functional.normalize(points, dim=1) if normals else None
        )
    t = load_targets([path], CPU)
    assert t.kinds == ["point cloud"] and t.faces == [None] and t.is_cloud == [True]
    assert t.meshes() is None
    assert torch.allclose(t.verts[0], _normalized(points), atol=UNIT_ATOL)


def test_a_ply_mesh_without_faces_is_a_cloud_and_bad_files_are_errors(tmp_path):
    verts, _ = _mesh()
    save_ply(str(tmp_path / "v.ply"), verts)
    assert load_targets([tmp_path / "v.ply"], CPU).kinds == ["point cloud"]
    (tmp_path / "s.stl").write_text("solid x\n")
    with pytest.raises(ValueError, match=r"s\.stl.*unknown file type"):
        load_targets([tmp_path / "s.stl"], CPU)
    (tmp_path / "e.xyz").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no vertices or points"):
        load_targets([tmp_path / "e.xyz"], CPU)
    (tmp_path / "same.xyz").write_text("1 2 3\n1 2 3\n")
    with pytest.raises(ValueError, match="coincide"):
        load_targets([tmp_path / "same.xyz"], CPU)
    with pytest.raises(FileNotFoundError, match="TARGET"):
        load_targets([tmp_path / "missing.ply"], CPU)


def _mixed(small: int = 30, large: int = 400) -> ShapeTargets:
    g = torch.Generator().manual_seed(1)
    verts, faces = _mesh()
    clouds = [torch.randn(small, 3, generator=g), torch.randn(large, 3, generator=g)]
    return ShapeTargets(["a", "m", "b"], [Path("a"), Path("m"), Path("b")],
                        [clouds[0], _normalized(verts), clouds[1]], [None, faces, None],
                        torch.zeros(3, 3), torch.ones(3))  # fmt: skip


def test_sampling_draws_cloud_points_and_mesh_surface_points():
    t = _mixed()
    torch.manual_seed(0)
    points, lengths = t.sample(100)
    assert points.shape == (3, 100, 3) and lengths.tolist() == [30, 100, 100]
    # The small cloud: every point once, in order, then zero padding.
    assert torch.equal(points[0, :30], t.verts[0]) and torch.equal(
        points[0, 30:], torch.zeros(70, 3)
    )
    # The large cloud: 100 distinct points of the cloud.
    d = torch.cdist(points[2], t.verts[2], compute_mode="donot_use_mm_for_euclid_dist")
    assert bool((d.min(dim=1).values == 0).all())
    assert d.argmin(dim=1).unique().numel() == 100
    # The mesh: points on its surface (inside the normalized box), not its vertices.
    assert points[1].abs().max() <= 1 + 1e-6
    assert not bool(
        (
            torch.cdist(points[1], t.verts[1], compute_mode="donot_use_mm_for_euclid_dist")
            .min(dim=1)
            .values
            == 0
        ).all()
    )


def test_sampling_meshes_only_is_the_previous_draw():
    verts, faces = _mesh()
    t = ShapeTargets(["m", "n"], [Path("m"), Path("n")], [verts, verts * 2], [faces, faces],
                     torch.zeros(2, 3), torch.ones(2))  # fmt: skip
    torch.manual_seed(3)
    points, lengths = t.sample(64)
    torch.manual_seed(3)
    expected = sample_points_from_meshes(Meshes(verts=[verts, verts * 2], faces=[faces, faces]), 64)
    assert lengths is None and torch.equal(points, expected)


def test_eval_chamfer_matches_eval_chamfer_for_meshes_and_a_reference_for_clouds():
    verts, faces = _mesh()
    fitted = Meshes(verts=[_normalized(verts) * 0.9], faces=[faces])
    target = ShapeTargets(
        ["m"], [Path("m")], [_normalized(verts)], [faces], torch.zeros(1, 3), torch.ones(1)
    )
    ours = eval_chamfer_targets(fitted, target, samples=500, draws=2)
    ref = eval_chamfer(fitted, target.meshes(), samples=500, draws=2)
    assert torch.equal(ours, ref)

    # A cloud with fewer points than samples: every draw uses all of its points.
    cloud = torch.randn(80, 3, generator=torch.Generator().manual_seed(2))
    t = ShapeTargets(["c"], [Path("c")], [cloud], [None], torch.zeros(1, 3), torch.ones(1))
    got = eval_chamfer_targets(fitted, t, samples=500, draws=3, generator_seed=7)
    torch.manual_seed(7)
    total = 0.0
    for _ in range(3):
        a = sample_points_from_meshes(fitted, 500)[0].double()
        d = torch.cdist(a, cloud.double(), compute_mode="donot_use_mm_for_euclid_dist") ** 2
        total += float(d.min(dim=1).values.mean() + d.min(dim=0).values.mean())
    assert got.dtype == torch.float64
    assert abs(float(got[0]) - total / 3) <= 1e-5 * total


def test_portable_source_is_never_absolute(tmp_path):
    out = tmp_path / "runs" / "a"
    out.mkdir(parents=True)
    scan = tmp_path / "scans" / "fish.ply"
    assert portable_source(scan, out) == "../../scans/fish.ply"
    assert portable_source(scan, None) == "fish.ply"
    assert portable_source(bundled_path("cow"), out) == "cow.obj"
    assert portable_source(out / "x.obj", out) == "x.obj"
