"""Shared fixtures of the meshio tests: the bundled meshes and a writer for small OBJ files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The meshes bundled with the fit app (cow with texture, fish with and without normals)."""
    return Path(__file__).resolve().parents[2] / "apps/fit/src/diffmesh/fit/data"


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str | bytes], Path]:
    """Write text or bytes to ``tmp_path / name`` and return the path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
        return path

    return write


def _reference_parse(text: str) -> dict:
    """A slow, obviously-correct OBJ reader (one Python statement per number) to compare with.

    Returns lists: verts, colors, uvs, normals, faces, faces_uvs, faces_normals, materials
    (0-based, -1 where absent) and the material names in first-use order.
    """
    text = text.replace("\r", "")
    lines: list[str] = []
    pending = ""
    for line in text.split("\n"):
        stripped = line.rstrip(" \t")
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    out: dict = {k: [] for k in ("verts", "colors", "uvs", "normals", "faces", "faces_uvs",
                                 "faces_normals", "materials", "names")}
    material = -1
    for line in lines:
        line = line.split("#")[0].strip()
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "v":
            nums = [float(t) for t in tokens[1:]]
            out["verts"].append(nums[:3])
            if len(nums) == 6:
                out["colors"].append(nums[3:])
        elif key == "vt":
            nums = [float(t) for t in tokens[1:]]
            out["uvs"].append([nums[0], nums[1] if len(nums) > 1 else 0.0])
        elif key == "vn":
            out["normals"].append([float(t) for t in tokens[1:]])
        elif key == "usemtl":
            name = line[len("usemtl"):].strip()
            if name:
                if name not in out["names"]:
                    out["names"].append(name)
                material = out["names"].index(name)
        elif key == "f":
            corners = []
            for token in tokens[1:]:
                parts = [*token.split("/"), "", ""]
                corner = []
                for part, kind in zip(parts[:3], ("verts", "uvs", "normals"), strict=True):
                    if part == "":
                        corner.append(-1)
                    else:
                        i = int(part)
                        corner.append(i - 1 if i > 0 else len(out[kind]) + i)
                corners.append(corner)
            for i in range(1, len(corners) - 1):
                tri = (corners[0], corners[i], corners[i + 1])
                out["faces"].append([c[0] for c in tri])
                out["faces_uvs"].append([c[1] for c in tri])
                out["faces_normals"].append([c[2] for c in tri])
                out["materials"].append(material)
    return out


@pytest.fixture(scope="session")
def reference_parse() -> Callable[[str], dict]:
    """The slow reference OBJ reader (see ``_reference_parse``)."""
    return _reference_parse


@pytest.fixture(scope="session")
def assert_matches_reference() -> Callable:
    """Assert that ``load_obj``'s output equals the reference reader's on the same text."""
    import torch

    def check(text: str, verts, faces, aux) -> None:
        ref = _reference_parse(text)

        def same(actual, expected, cols, dtype):
            want = torch.tensor(expected, dtype=dtype)
            want = want.reshape(-1, cols) if cols > 1 else want.reshape(-1)
            assert actual.shape == want.shape
            if dtype == torch.float32:
                torch.testing.assert_close(actual, want, rtol=1e-6, atol=1e-6)
            else:
                assert torch.equal(actual, want)

        same(verts, ref["verts"], 3, torch.float32)
        same(faces.verts_idx, ref["faces"], 3, torch.int64)
        same(faces.textures_idx, ref["faces_uvs"], 3, torch.int64)
        same(faces.normals_idx, ref["faces_normals"], 3, torch.int64)
        same(faces.materials_idx, ref["materials"], 1, torch.int64)
        if ref["uvs"]:
            same(aux.verts_uvs, ref["uvs"], 2, torch.float32)
        else:
            assert aux.verts_uvs is None
        if ref["normals"]:
            same(aux.normals, ref["normals"], 3, torch.float32)
        else:
            assert aux.normals is None
        if ref["colors"]:
            same(aux.verts_colors, ref["colors"], 3, torch.float32)
        else:
            assert aux.verts_colors is None

    return check
