"""Each library builds as a wheel that installs into a clean venv with only its declared
dependencies, imports, and does its job there (softrender alone, with meshcore, renders)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv")

pytestmark = pytest.mark.skipif(UV is None, reason="needs uv on PATH (run the suite with `uv run pytest`)")

SMOKE = {
    "meshcore": """
        import torch
        from diffmesh.meshcore import Meshes
        m = Meshes([torch.rand(4, 3)], [torch.tensor([[0, 1, 2], [0, 2, 3]])])
        assert m.edges_packed().shape == (5, 2)
    """,
    "meshio": """
        from diffmesh.meshio import ico_sphere
        assert ico_sphere(1).verts_packed().shape == (42, 3)
    """,
    "meshloss": """
        import torch
        from diffmesh.meshloss import chamfer_distance
        loss, _ = chamfer_distance(torch.zeros(1, 1, 3), torch.tensor([[[3.0, 0.0, 0.0]]]))
        assert abs(float(loss) - 18.0) < 1e-6
    """,
    "softrender": """
        import torch
        from diffmesh.meshcore import Meshes, TexturesVertex
        from diffmesh.softrender import (FoVPerspectiveCameras, MeshRasterizer, MeshRenderer,
            RasterizationSettings, SoftPhongShader, look_at_view_transform)
        verts = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
        faces = torch.tensor([[0, 1, 2]])
        mesh = Meshes([verts], [faces], textures=TexturesVertex([torch.ones(3, 3)]))
        R, T = look_at_view_transform(3.0, 0.0, 0.0)
        cameras = FoVPerspectiveCameras(R=R, T=T)
        renderer = MeshRenderer(
            MeshRasterizer(cameras=cameras, raster_settings=RasterizationSettings(image_size=32)),
            SoftPhongShader(cameras=cameras))
        image = renderer(mesh)
        assert image.shape == (1, 32, 32, 4)
        assert float(image[0, 16, 16, 3]) > 0.5 and float(image[0, 0, 0, 3]) == 0.0
    """,
}


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run([UV, "build", "--all-packages", "--wheel", "--out-dir", str(out)],
                   cwd=ROOT, check=True, capture_output=True, text=True)
    return out


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_wheel_installs_alone_and_works(name: str, wheelhouse: Path, tmp_path: Path) -> None:
    wheels = sorted(wheelhouse.glob(f"diffmesh_{name}-*.whl"))
    assert len(wheels) == 1, f"expected one wheel for {name}, found {wheels}"
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)],
                   check=True, env=env)
    python = venv / "bin" / "python"
    # Only this wheel plus what it declares: workspace siblings come from the wheelhouse,
    # third-party packages from the registry (or uv's cache).
    subprocess.run([UV, "pip", "install", "--quiet", "--python", str(python),
                    "--find-links", str(wheelhouse), str(wheels[0])],
                   check=True, env=env, capture_output=True, text=True)
    installed = subprocess.run([UV, "pip", "list", "--python", str(python)], check=True,
                               env=env, capture_output=True, text=True).stdout
    siblings = {n for n in SMOKE if n != name and f"diffmesh-{n} " in installed}
    expected = set() if name == "meshcore" else {"meshcore"}
    assert siblings == expected, f"{name}'s wheel pulled in {sorted(siblings)}"
    result = subprocess.run([str(python), "-c", textwrap.dedent(SMOKE[name])],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


PROJECTS = {"meshcore": "packages/meshcore", "meshio": "packages/meshio",
            "meshloss": "packages/meshloss", "softrender": "packages/softrender",
            "fit": "apps/fit"}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_wheel_ships_the_license(name: str, wheelhouse: Path) -> None:
    (wheel,) = wheelhouse.glob(f"diffmesh_{name}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        licenses = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert len(licenses) == 1, f"{wheel.name} has no .dist-info/licenses/LICENSE"
        assert archive.read(licenses[0]) == (ROOT / "LICENSE").read_bytes()
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: BSD-3-Clause" in archive.read(metadata).decode()


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_package_license_copies_match_the_root(name: str) -> None:
    """Each project ships its own copy (build backends read files under the project only)."""
    assert (ROOT / PROJECTS[name] / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
