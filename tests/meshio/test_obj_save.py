"""save_obj: round trips, formatting, atomic writes, bad arguments."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from diffmesh.meshio import ico_sphere, load_obj, obj_save, save_obj
from PIL import Image


@pytest.fixture
def sphere() -> tuple[torch.Tensor, torch.Tensor]:
    mesh = ico_sphere(2)
    return mesh.verts_packed(), mesh.faces_packed()


def test_round_trip_is_exact_for_float32(tmp_path, sphere):
    verts, faces = sphere
    verts = verts * torch.tensor([1e-7, 3.0, 12345.678])  # tiny, plain and large magnitudes
    save_obj(tmp_path / "m.obj", verts, faces)
    verts2, faces2, aux = load_obj(tmp_path / "m.obj")
    assert torch.equal(verts2, verts) and torch.equal(faces2.verts_idx, faces)
    assert aux.normals is None and aux.verts_uvs is None and aux.verts_colors is None
    assert sorted(os.listdir(tmp_path)) == ["m.obj"]  # no temporary file left


def test_decimal_places(tmp_path):
    verts = torch.tensor([[0.123456789, 1.0, -2.5]])
    save_obj(tmp_path / "m.obj", verts, torch.zeros(0, 3, dtype=torch.int64), decimal_places=3)
    assert (tmp_path / "m.obj").read_text() == "v 0.123 1.000 -2.500\n"
    with pytest.raises(ValueError, match="decimal_places must be >= 0, got -1"):
        save_obj(tmp_path / "m.obj", verts, torch.zeros(0, 3, dtype=torch.int64), decimal_places=-1)
    with pytest.raises(TypeError, match="decimal_places must be None or an int, got float"):
        save_obj(tmp_path / "m.obj", verts, torch.zeros(0, 3, dtype=torch.int64), decimal_places=2.0)


def test_normals_uvs_colors_round_trip(tmp_path, sphere):
    verts, faces = sphere
    normals = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    faces_normals_idx = torch.arange(faces.numel()).view(-1, 3) % 7
    verts_uvs = torch.rand(11, 2, generator=torch.Generator().manual_seed(1))
    faces_uvs = (torch.arange(faces.numel()).view(-1, 3) * 5) % 11
    colors = torch.rand(verts.shape[0], 3, generator=torch.Generator().manual_seed(2))
    save_obj(tmp_path / "m.obj", verts, faces, normals=normals, faces_normals_idx=faces_normals_idx,
             verts_uvs=verts_uvs, faces_uvs=faces_uvs, verts_colors=colors)
    verts2, faces2, aux = load_obj(tmp_path / "m.obj")
    assert torch.equal(verts2, verts) and torch.equal(faces2.verts_idx, faces)
    assert torch.equal(aux.normals, normals) and torch.equal(faces2.normals_idx, faces_normals_idx)
    assert torch.equal(aux.verts_uvs, verts_uvs) and torch.equal(faces2.textures_idx, faces_uvs)
    assert torch.equal(aux.verts_colors, colors)
    assert (tmp_path / "m.obj").read_text().count("/") == 2 * faces.numel()


def test_normals_without_uvs_write_double_slash(tmp_path):
    verts = torch.eye(3)
    faces = torch.tensor([[0, 1, 2]])
    save_obj(tmp_path / "m.obj", verts, faces, verts_normals=torch.ones(1, 3),
             faces_normals_idx=torch.zeros(1, 3, dtype=torch.int64))
    assert "f 1//1 2//1 3//1\n" in (tmp_path / "m.obj").read_text()
    _, faces2, aux = load_obj(tmp_path / "m.obj")
    assert faces2.normals_idx.tolist() == [[0, 0, 0]] and (faces2.textures_idx == -1).all()
    assert aux.normals.tolist() == [[1.0, 1.0, 1.0]]
    with pytest.raises(TypeError, match="not both"):
        save_obj(tmp_path / "m.obj", verts, faces, verts_normals=torch.ones(1, 3),
                 normals=torch.ones(1, 3), faces_normals_idx=torch.zeros(1, 3, dtype=torch.int64))


def test_texture_map_writes_mtl_and_png(tmp_path, sphere):
    verts, faces = sphere
    verts_uvs = (verts[:, :2] + 1) / 2
    texture = torch.rand(8, 16, 3, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "my mesh.obj"  # spaces in the name
    save_obj(path, verts, faces, verts_uvs=verts_uvs, faces_uvs=faces, texture_map=texture)
    assert sorted(os.listdir(tmp_path)) == ["my mesh.mtl", "my mesh.obj", "my mesh.png"]
    assert path.read_text().startswith("mtllib my mesh.mtl\nusemtl mesh\n")
    _, faces2, aux = load_obj(path)
    image = aux.texture_images["mesh"]
    assert image.shape == (8, 16, 3)
    torch.testing.assert_close(image, texture, atol=0.5 / 255 + 1e-6, rtol=0)
    assert torch.equal(aux.verts_uvs, verts_uvs) and torch.equal(faces2.textures_idx, faces)
    assert (faces2.materials_idx == 0).all()
    png = np.asarray(Image.open(tmp_path / "my mesh.png"))
    assert png.dtype == np.uint8 and png.shape == (8, 16, 3)


def test_open_file_targets(tmp_path, sphere):
    verts, faces = sphere
    buffer = io.StringIO()
    save_obj(buffer, verts, faces)
    verts2, faces2, _ = load_obj(io.BytesIO(buffer.getvalue().encode()))
    assert torch.equal(verts2, verts) and torch.equal(faces2.verts_idx, faces)
    with open(tmp_path / "named.obj", "w") as handle:
        save_obj(handle, verts, faces, verts_uvs=torch.zeros(1, 2),
                 faces_uvs=torch.zeros_like(faces), texture_map=torch.ones(2, 2, 3))
    assert (tmp_path / "named.png").is_file() and (tmp_path / "named.mtl").is_file()
    with pytest.raises(ValueError, match="texture_map needs f to be a path"):
        save_obj(io.StringIO(), verts, faces, verts_uvs=torch.zeros(1, 2),
                 faces_uvs=torch.zeros_like(faces), texture_map=torch.ones(2, 2, 3))


def test_chunked_formatting_round_trips(tmp_path, sphere, monkeypatch):
    monkeypatch.setattr(obj_save, "_CHUNK_ROWS", 7)
    verts, faces = sphere
    save_obj(tmp_path / "m.obj", verts, faces, verts_colors=verts.abs())
    verts2, faces2, aux = load_obj(tmp_path / "m.obj")
    assert torch.equal(verts2, verts) and torch.equal(faces2.verts_idx, faces)
    assert torch.equal(aux.verts_colors, verts.abs())


def test_failed_write_leaves_the_old_file_untouched(tmp_path, sphere, monkeypatch):
    verts, faces = sphere
    path = tmp_path / "m.obj"
    path.write_text("old content\n")
    original = obj_save._rows

    def rows_then_crash(prefix, table, fmt):
        yield from original(prefix, table[:3], fmt)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(obj_save, "_rows", rows_then_crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_obj(path, verts, faces)
    assert path.read_text() == "old content\n"
    assert sorted(os.listdir(tmp_path)) == ["m.obj"]


def test_empty_and_degenerate_meshes(tmp_path):
    save_obj(tmp_path / "e.obj", torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))
    verts, faces, _ = load_obj(tmp_path / "e.obj")
    assert verts.shape == (0, 3) and faces.verts_idx.shape == (0, 3)
    # duplicate points and a zero-area face survive a round trip unchanged, with no NaN
    verts = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]])
    faces = torch.tensor([[0, 1, 2], [0, 0, 0]])
    save_obj(tmp_path / "d.obj", verts, faces)
    verts2, faces2, _ = load_obj(tmp_path / "d.obj")
    assert torch.equal(verts2, verts) and torch.equal(faces2.verts_idx, faces)


def test_gradients_and_devices_are_fine(tmp_path):
    verts = torch.eye(3, requires_grad=True)
    save_obj(tmp_path / "g.obj", verts * 2, torch.tensor([[0, 1, 2]], dtype=torch.int32))
    assert torch.equal(load_obj(tmp_path / "g.obj")[0], 2 * torch.eye(3))


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"verts": [[0.0, 0, 0]]}, TypeError, "verts must be a torch.Tensor"),
        ({"verts": torch.zeros(3, 2)}, ValueError, r"verts must have shape \(N, 3\)"),
        ({"verts": torch.zeros(3, 3, dtype=torch.int64)}, TypeError, "verts must be a floating"),
        ({"verts": torch.full((3, 3), float("nan"))}, ValueError, "verts must be finite"),
        ({"faces": torch.tensor([[0, 1, 3]])}, ValueError, "faces must index verts"),
        ({"faces": torch.tensor([[0, 1, -1]])}, ValueError, "faces must index verts"),
        ({"faces": torch.tensor([[0.0, 1, 2]])}, TypeError, "faces must be an integer"),
        ({"faces": torch.tensor([0, 1, 2])}, ValueError, "faces must have shape"),
        ({"normals": torch.zeros(1, 3)}, ValueError, "normals and faces_normals_idx"),
        ({"verts_uvs": torch.zeros(1, 2)}, ValueError, "verts_uvs and faces_uvs"),
        ({"texture_map": torch.zeros(2, 2, 3)}, ValueError, "texture_map needs verts_uvs"),
        ({"verts_uvs": torch.zeros(1, 2), "faces_uvs": torch.tensor([[0, 0, 1]])},
         ValueError, "faces_uvs must index verts_uvs"),
        ({"verts_uvs": torch.zeros(1, 2), "faces_uvs": torch.zeros(2, 3, dtype=torch.int64)},
         ValueError, "one row per face"),
        ({"verts_uvs": torch.zeros(1, 2), "faces_uvs": torch.zeros(1, 3, dtype=torch.int64),
          "texture_map": torch.zeros(2, 2)}, ValueError, "texture_map must have shape"),
        ({"verts_colors": torch.zeros(2, 3)}, ValueError, "verts_colors must have one row"),
        ({"verts_uvs": torch.zeros(1, 2), "faces_uvs": torch.zeros(1, 3, dtype=torch.int64),
          "texture_map": torch.zeros(2, 2, 3, dtype=torch.uint8)}, TypeError,
         "texture_map must be a float tensor, got torch.uint8"),
        ({"verts_uvs": torch.zeros(1, 2), "faces_uvs": torch.zeros(1, 3, dtype=torch.int64),
          "texture_map": np.zeros((2, 2, 3))}, TypeError, "texture_map must be a torch.Tensor"),
        ({"f": 3}, TypeError, "f must be a path"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, fragment):
    args = {"f": tmp_path / "m.obj", "verts": torch.eye(3), "faces": torch.tensor([[0, 1, 2]])}
    args.update(kwargs)
    with pytest.raises(error, match=fragment):
        save_obj(args.pop("f"), args.pop("verts"), args.pop("faces"), **args)
    assert not (tmp_path / "m.obj").exists()


def test_atomic_write_keeps_usual_permissions(tmp_path, sphere):
    verts, faces = sphere
    umask = os.umask(0o022)
    try:
        save_obj(tmp_path / "new.obj", verts, faces)
        assert (tmp_path / "new.obj").stat().st_mode & 0o777 == 0o644
        (tmp_path / "new.obj").chmod(0o640)
        save_obj(tmp_path / "new.obj", verts, faces)  # replacing keeps the file's mode
        assert (tmp_path / "new.obj").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(umask)


def test_vectorized_integer_formatting_matches_printf(monkeypatch):
    monkeypatch.setattr(obj_save, "_CHUNK_ROWS", 5)
    gen = torch.Generator().manual_seed(4)
    table = torch.randint(0, 10, (13, 4), generator=gen) ** torch.randint(0, 12, (13, 4), generator=gen)
    table[0, 0], table[1, 1] = 0, 2**40  # zero and a number past 32 bits
    table = table.numpy()
    separators = ["/", "//", " ", "\n"]
    got = "".join(obj_save._int_rows("f ", table, separators))
    expected = "".join(
        "f " + "".join(f"{v}{s}" for v, s in zip(row, separators, strict=True))
        for row in table.tolist()
    )
    assert got == expected
    assert list(obj_save._int_rows("f ", table[:0], separators)) == []


def test_empty_tensors_in_pytorch3d_idiom_and_path_manager(tmp_path):
    verts = torch.tensor([[0.0, 0, 0], [1, 2, 3]])
    for faces in (torch.tensor([]), torch.zeros(0, dtype=torch.int64), torch.zeros(0, 2)):
        save_obj(tmp_path / "p.obj", verts, faces)  # a point cloud OBJ
        verts2, faces2, _ = load_obj(tmp_path / "p.obj")
        assert torch.equal(verts2, verts) and faces2.verts_idx.shape == (0, 3)
    save_obj(tmp_path / "e.obj", torch.tensor([]), torch.tensor([]), 3, object())  # PyTorch3D order
    verts2, faces2, _ = load_obj(tmp_path / "e.obj")
    assert verts2.shape == (0, 3) and faces2.verts_idx.shape == (0, 3)
    with pytest.raises(ValueError, match="faces must index verts"):
        save_obj(tmp_path / "x.obj", torch.tensor([]), torch.tensor([[0, 1, 2]]))
