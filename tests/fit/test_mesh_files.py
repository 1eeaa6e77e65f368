"""fitted.obj / fitted.ply / fitted.glb: the PLY bytes checked by hand against the spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffmesh.fit.mesh_files import frame_interval, write_mesh_files
from diffmesh.meshio import ico_sphere, load_glb, load_obj

# colours in [0, 1] after a float32 round trip through the GLB file
UNIT_ATOL = 8 * torch.finfo(torch.float32).eps


def _read_ply_by_hand(path):
    """Parse a binary little-endian PLY with float x y z [uchar red green blue] and
    ``list uchar int vertex_indices`` triangles, straight from the bytes."""
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    num_verts = int(next(line for line in header if line.startswith("element vertex")).split()[2])
    num_faces = int(next(line for line in header if line.startswith("element face")).split()[2])
    props = [line for line in header if line.startswith("property") and "list" not in line]
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if "property uchar red" in props:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertex = np.frombuffer(data, dtype=np.dtype(fields), count=num_verts, offset=end)
    face_dtype = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    face = np.frombuffer(data, dtype=face_dtype, count=num_faces, offset=end + vertex.nbytes)
    assert end + vertex.nbytes + face.nbytes == len(data)  # nothing else in the file
    return header, vertex, face


@pytest.mark.parametrize("with_colors", [True, False])
def test_fitted_ply_is_standard_and_in_obj_order(tmp_path, with_colors):
    sphere = ico_sphere(1)
    verts = sphere.verts_packed() * 3 + torch.tensor([1.0, 2.0, -1.0])
    faces = sphere.faces_packed()
    colors = (
        torch.rand(verts.shape[0], 3, generator=torch.Generator().manual_seed(0))
        if with_colors
        else None
    )
    paths = write_mesh_files(tmp_path, "fitted", verts, faces, colors)
    assert [p.name for p in paths] == ["fitted.obj", "fitted.ply", "fitted.glb"]

    header, vertex, face = _read_ply_by_hand(tmp_path / "fitted.ply")
    expected = ["ply", "format binary_little_endian 1.0"]
    assert header[:2] == expected
    props = [line for line in header if line.startswith("property")]
    wanted = ["property float x", "property float y", "property float z"]
    if with_colors:
        wanted += ["property uchar red", "property uchar green", "property uchar blue"]
    assert props == [*wanted, "property list uchar int vertex_indices"]
    assert header[-1] == "end_header"

    obj_verts, obj_faces, _ = load_obj(str(tmp_path / "fitted.obj"), load_textures=False)
    ply_verts = torch.from_numpy(np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).copy())
    assert torch.equal(ply_verts, verts)  # float32 written as is
    assert torch.allclose(obj_verts, ply_verts, atol=1e-5)  # the same vertices in the same order
    assert (face["n"] == 3).all() and torch.equal(
        torch.from_numpy(face["i"].astype(np.int64)), obj_faces.verts_idx
    )
    if with_colors:
        rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1)
        assert np.array_equal(rgb, np.rint(colors.numpy() * 255).astype(np.uint8))
        obj_rows = [
            line.split()[4:7]
            for line in (tmp_path / "fitted.obj").read_text().splitlines()
            if line.startswith("v ")
        ]
        assert torch.allclose(
            torch.tensor([[float(x) for x in r] for r in obj_rows]), colors, atol=1e-5
        )

    glb_verts, glb_faces, glb_normals, glb_colors = load_glb(str(tmp_path / "fitted.glb"))
    assert torch.equal(glb_verts, verts) and torch.equal(glb_faces, faces)
    assert torch.allclose(glb_normals.norm(dim=1), torch.ones(len(verts)), atol=1e-5)
    assert (glb_colors is None) == (colors is None)
    if colors is not None:
        assert torch.allclose(glb_colors, colors, atol=UNIT_ATOL)


def test_frame_interval_gives_about_eight_frames():
    for iters in (1, 7, 8, 20, 100, 150, 2000, 5001):
        k = frame_interval(iters)
        frames = len(range(0, iters, k)) + 1  # the loop's frames, then the final one
        assert frames == iters + 1 if iters < 8 else 8 <= frames <= 9, (iters, frames)
    assert frame_interval(2000) == 250
    with pytest.raises(ValueError, match="iters"):
        frame_interval(0)


def test_trimesh_opens_the_fitted_files_with_colours_in_file_order(tmp_path):
    """The issue's interoperability bar, checked with trimesh itself (a dev dependency)."""
    import trimesh

    sphere = ico_sphere(2)
    verts, faces = sphere.verts_packed() * 2, sphere.faces_packed()
    colors = torch.rand(verts.shape[0], 3, generator=torch.Generator().manual_seed(1))
    write_mesh_files(tmp_path, "fitted", verts, faces, colors)
    ply = trimesh.load(tmp_path / "fitted.ply")
    assert np.array_equal(ply.vertices.astype(np.float32), verts.numpy())
    assert np.array_equal(ply.faces, faces.numpy())
    uchar = (colors * 255).round().to(torch.uint8).numpy()  # the file's uchar red green blue
    assert np.array_equal(ply.visual.vertex_colors[:, :3], uchar)
    (glb,) = trimesh.load(tmp_path / "fitted.glb").geometry.values()
    assert np.array_equal(glb.vertices.astype(np.float32), verts.numpy())
    assert np.array_equal(glb.faces, faces.numpy())
