"""IO(): load_mesh / save_mesh / load_pointcloud / save_pointcloud by extension."""

from __future__ import annotations

import pytest
import torch
from diffmesh import meshcore
from diffmesh.meshcore import Meshes, TexturesUV, TexturesVertex
from diffmesh.meshio import IO, ico_sphere, load_objs_as_meshes, save_obj


def _colored_sphere() -> Meshes:
    sphere = ico_sphere(1)
    verts = sphere.verts_packed()
    levels = torch.round((verts + 1) / 2 * 255)  # multiples of 1/255: exact through uchar
    return Meshes([verts], [sphere.faces_packed()], textures=TexturesVertex([levels / 255]))


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off", ".glb", ".PLY"])
@pytest.mark.parametrize("binary", [True, False])
def test_mesh_round_trip_keeps_geometry_and_vertex_colors(tmp_path, suffix, binary):
    mesh = _colored_sphere()
    path = tmp_path / f"mesh{suffix}"
    IO().save_mesh(mesh, path, binary=binary)
    loaded = IO().load_mesh(path)
    assert torch.equal(loaded.verts_packed(), mesh.verts_packed())
    assert torch.equal(loaded.faces_packed(), mesh.faces_packed())
    assert isinstance(loaded.textures, TexturesVertex)
    assert torch.equal(
        loaded.textures.verts_features_packed(), mesh.textures.verts_features_packed()
    )
    assert IO().load_mesh(path, include_textures=False).textures is None


def test_obj_vertex_colors_become_textures_vertex(tmp_path):
    sphere = ico_sphere(0)
    colors = torch.rand(12, 3, generator=torch.Generator().manual_seed(0))
    save_obj(tmp_path / "c.obj", sphere.verts_packed(), sphere.faces_packed(), verts_colors=colors)
    mesh = load_objs_as_meshes([tmp_path / "c.obj"])
    assert isinstance(mesh.textures, TexturesVertex)
    assert torch.equal(mesh.textures.verts_features_packed(), colors)
    assert load_objs_as_meshes([tmp_path / "c.obj"], load_textures=False).textures is None
    save_obj(tmp_path / "plain.obj", sphere.verts_packed(), sphere.faces_packed())
    assert load_objs_as_meshes([tmp_path / "plain.obj"]).textures is None


def test_textures_uv_saves_to_obj_only(tmp_path):
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    faces = torch.tensor([[0, 1, 2]])
    textures = TexturesUV(maps=[torch.rand(4, 4, 3)], faces_uvs=[faces], verts_uvs=[verts[:, :2]])
    mesh = Meshes([verts], [faces], textures=textures)
    IO().save_mesh(mesh, tmp_path / "t.obj")
    assert (tmp_path / "t.png").is_file()
    assert isinstance(IO().load_mesh(tmp_path / "t.obj").textures, TexturesUV)
    with pytest.raises(ValueError, match=r"TexturesUV can only be saved to \.obj"):
        IO().save_mesh(mesh, tmp_path / "t.ply")
    IO().save_mesh(mesh, tmp_path / "t.ply", include_textures=False)
    assert IO().load_mesh(tmp_path / "t.ply").textures is None


def test_errors(tmp_path):
    mesh = ico_sphere(0)
    with pytest.raises(ValueError, match=r"no mesh format for .*known extensions are \.obj"):
        IO().save_mesh(mesh, tmp_path / "m.stl")
    with pytest.raises(ValueError, match="include_default_formats=False"):
        IO(include_default_formats=False).load_mesh(tmp_path / "m.ply")
    with pytest.raises(ValueError, match="exactly one mesh"):
        IO().save_mesh(mesh.extend(2), tmp_path / "m.ply")
    with pytest.raises(TypeError, match="data must be Meshes"):
        IO().save_mesh(mesh.verts_packed(), tmp_path / "m.ply")
    with pytest.raises(TypeError, match="path must be"):
        IO().load_mesh(3)
    with pytest.raises(ValueError, match="path_manager"):
        IO(path_manager=object())


@pytest.mark.parametrize("suffix", [".ply", ".xyz"])
def test_point_cloud_round_trip(tmp_path, suffix):
    points, normals = torch.rand(7, 3), torch.rand(7, 3)
    cloud = meshcore.Pointclouds(points=[points], normals=[normals])
    IO().save_pointcloud(cloud, tmp_path / f"p{suffix}")
    loaded = IO().load_pointcloud(tmp_path / f"p{suffix}")
    assert torch.equal(loaded.points_list()[0], points)
    assert torch.equal(loaded.normals_list()[0], normals)
