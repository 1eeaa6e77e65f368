"""Device selection and bundled-data resolution."""

from __future__ import annotations

import pytest
import torch
from diffmesh.fit.data import BUNDLED, bundled_path, resolve_mesh_path
from diffmesh.fit.devices import resolve_device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="expected one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(TypeError, match="device"):
        resolve_device(0)  # type: ignore[arg-type]


def test_bundled_meshes_exist_with_their_source_notes():
    for name in BUNDLED:
        path = bundled_path(name)
        assert path.is_file()
        assert (path.parent / "SOURCE.md").is_file()
    assert (bundled_path("cow").parent / "cow_texture.png").is_file()


def test_resolve_mesh_path(tmp_path):
    assert resolve_mesh_path("cow") == bundled_path("cow")
    own = tmp_path / "cow"
    own.write_text("v 0 0 0\n")
    assert resolve_mesh_path(own) == own  # a real file wins over the bundled name
    with pytest.raises(FileNotFoundError, match="TARGET: file not found"):
        resolve_mesh_path(tmp_path / "missing.obj", argument="TARGET")
    with pytest.raises(ValueError, match="folder"):
        resolve_mesh_path(tmp_path)
    with pytest.raises(ValueError, match="bundled"):
        bundled_path("dragon")
