"""PLY and GLB files exchanged with the two Python libraries users pair diffmesh with.

trimesh and plyfile are development dependencies only (the root ``dev`` group): these tests
write files with their writers and read diffmesh's files with their readers, so a change in
either direction that breaks the exchange fails here, not in a user's pipeline.
"""

from __future__ import annotations

import io

import numpy as np
import plyfile
import pytest
import torch
import trimesh
from diffmesh.meshio import ico_sphere, load_glb, load_ply, load_ply_data, save_glb, save_ply


def _colored_sphere(level: int = 2) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    mesh = ico_sphere(level)
    verts, faces = mesh.verts_packed(), mesh.faces_packed()
    rgb = np.random.default_rng(0).integers(0, 256, (verts.shape[0], 3), dtype=np.uint8)
    return verts, faces, rgb


@pytest.mark.parametrize("ascii", [False, True])
def test_trimesh_reads_our_ply_with_colours_in_file_order(tmp_path, ascii):
    verts, faces, rgb = _colored_sphere()
    path = tmp_path / "m.ply"
    save_ply(str(path), verts, faces, ascii=ascii, verts_colors=torch.from_numpy(rgb) / 255.0)
    loaded = trimesh.load(path)  # trimesh's defaults, as a user opens the file
    assert isinstance(loaded, trimesh.Trimesh)
    # ascii text holds enough digits to give back each float32 exactly
    assert np.array_equal(loaded.vertices.astype(np.float32), verts.numpy())
    assert np.array_equal(loaded.faces, faces.numpy())
    colors = loaded.visual.vertex_colors
    assert np.array_equal(colors[:, :3], rgb) and (colors[:, 3] == 255).all()


def test_trimesh_reads_our_glb():
    verts, faces, rgb = _colored_sphere()
    stream = io.BytesIO()
    save_glb(stream, verts, faces, verts_colors=torch.from_numpy(rgb) / 255.0)
    scene = trimesh.load(io.BytesIO(stream.getvalue()), file_type="glb")
    (loaded,) = scene.geometry.values()
    assert np.array_equal(loaded.vertices, verts.numpy().astype(np.float64))
    assert np.array_equal(loaded.faces, faces.numpy())


@pytest.mark.parametrize("encoding", ["binary", "ascii"])
def test_we_read_trimesh_ply_with_rgba_colours(encoding):
    verts, faces, rgb = _colored_sphere(1)
    rgba = np.concatenate([rgb, np.full((len(rgb), 1), 200, np.uint8)], axis=1)
    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy(), vertex_colors=rgba, process=False)
    data = load_ply_data(io.BytesIO(mesh.export(file_type="ply", encoding=encoding)))
    assert torch.equal(data.verts, verts)
    assert torch.equal(data.faces, faces)
    assert torch.equal(data.verts_colors, torch.from_numpy(rgb) / 255.0)
    assert torch.equal(
        data.verts_properties["alpha"], torch.full((len(rgb),), 200, dtype=torch.uint8)
    )


def test_we_read_trimesh_glb():
    verts, faces, _ = _colored_sphere(1)
    mesh = trimesh.Trimesh(verts.numpy(), faces.numpy(), process=False)
    v2, f2, _, _ = load_glb(io.BytesIO(mesh.export(file_type="glb")))
    assert torch.equal(v2, verts) and torch.equal(f2, faces)


@pytest.mark.parametrize("byte_order", ["<", ">", "="])
@pytest.mark.parametrize("text", [False, True])
def test_we_read_plyfile_polygons_and_extra_properties(byte_order, text):
    """A plyfile-written quad and pentagon (int32 lengths), float64 positions, a float
    ``quality`` per vertex and an int ``material`` per face: fan-triangulated, extras kept."""
    xyz = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0.5], [1.5, 2, 0.25]],
        dtype=np.float64,
    )
    vertex = np.empty(len(xyz), [("x", "f8"), ("y", "f8"), ("z", "f8"), ("quality", "f4")])
    vertex["x"], vertex["y"], vertex["z"] = xyz.T
    vertex["quality"] = np.arange(len(xyz), dtype=np.float32) / 4
    face = np.empty(2, [("vertex_indices", "O"), ("material", "i4")])
    face["vertex_indices"] = [np.array([0, 1, 2, 3], np.int32), np.array([1, 4, 5, 6, 2], np.int32)]
    face["material"] = [7, 9]
    elements = [
        plyfile.PlyElement.describe(vertex, "vertex"),
        plyfile.PlyElement.describe(face, "face", len_types={"vertex_indices": "i4"}),
    ]
    stream = io.BytesIO()
    plyfile.PlyData(elements, text=text, byte_order=byte_order).write(stream)
    data = load_ply_data(io.BytesIO(stream.getvalue()))
    assert torch.equal(data.verts, torch.from_numpy(xyz.astype(np.float32)))
    fan = [[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 6], [1, 6, 2]]
    assert data.faces.tolist() == fan
    assert torch.equal(data.verts_properties["quality"], torch.from_numpy(vertex["quality"]))
    # plyfile 1.1 writes a scalar beside a list in native byte order even in a big-endian
    # file (and reads its own 7 back as 7 << 24): the reference is what plyfile reads
    material = plyfile.PlyData.read(io.BytesIO(stream.getvalue()))["face"].data["material"]
    assert byte_order == ">" or material.tolist() == [7, 9]
    assert data.faces_properties["material"].tolist() == np.repeat(material, [2, 3]).tolist()
    verts, faces = load_ply(io.BytesIO(stream.getvalue()))
    assert torch.equal(verts, data.verts) and torch.equal(faces, data.faces)


def test_plyfile_reads_our_binary_ply_with_extras():
    verts, faces, rgb = _colored_sphere(1)
    quality = torch.linspace(0, 1, verts.shape[0])
    stream = io.BytesIO()
    save_ply(
        stream,
        verts,
        faces,
        verts_colors=torch.from_numpy(rgb) / 255.0,
        verts_properties={"quality": quality},
    )
    ply = plyfile.PlyData.read(io.BytesIO(stream.getvalue()))
    vertex = ply["vertex"].data
    assert np.array_equal(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), verts.numpy())
    assert np.array_equal(np.stack([vertex[c] for c in ("red", "green", "blue")], 1), rgb)
    assert np.array_equal(vertex["quality"], quality.numpy())
    assert np.array_equal(np.stack(ply["face"].data["vertex_indices"]), faces.numpy())
