"""The workspace's shape: namespace layout, public APIs and the one-way dependency graph."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "meshcore": ROOT / "packages" / "meshcore",
    "meshio": ROOT / "packages" / "meshio",
    "meshloss": ROOT / "packages" / "meshloss",
    "softrender": ROOT / "packages" / "softrender",
    "fit": ROOT / "apps" / "fit",
}
# Which diffmesh packages each one may import (DESIGN.md: meshcore <- meshio/meshloss/softrender <- fit).
ALLOWED = {
    "meshcore": set(),
    "meshio": {"meshcore"},
    "meshloss": {"meshcore"},
    "softrender": {"meshcore"},
    "fit": {"meshcore", "meshio", "meshloss", "softrender"},
}
# Third-party imports each library may use (numpy/pillow only at meshio's io boundary).
THIRD_PARTY = {
    "meshcore": {"torch"},
    "meshio": {"torch", "numpy", "PIL"},
    "meshloss": {"torch"},
    "softrender": {"torch"},
    "fit": {"torch", "numpy", "PIL", "click", "tqdm"},
}


def _imported_modules(source_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in source_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_dependencies_point_one_way(name: str) -> None:
    imported = _imported_modules(PACKAGES[name] / "src" / "diffmesh" / name)
    used = {m.split(".")[1] for m in imported if m.startswith("diffmesh.") and m.count(".") >= 1}
    used.discard(name)
    assert used <= ALLOWED[name], f"diffmesh.{name} imports {sorted(used - ALLOWED[name])}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_third_party_imports_are_declared(name: str) -> None:
    import sys

    imported = _imported_modules(PACKAGES[name] / "src" / "diffmesh" / name)
    top = {m.split(".")[0] for m in imported}
    third = top - {"diffmesh", "__future__"} - set(sys.stdlib_module_names)
    assert third <= THIRD_PARTY[name], f"diffmesh.{name} imports {sorted(third - THIRD_PARTY[name])}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_namespace_layout(name: str) -> None:
    src = PACKAGES[name] / "src"
    assert not (src / "diffmesh" / "__init__.py").exists(), "diffmesh must stay a PEP 420 namespace"
    assert (src / "diffmesh" / name / "__init__.py").is_file()
    assert (src / "diffmesh" / name / "py.typed").is_file()
    for doc in ("README.md", "CHANGELOG.md", "pyproject.toml"):
        assert (PACKAGES[name] / doc).is_file(), f"{name} has no {doc}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_public_api_is_listed_and_importable(name: str) -> None:
    module = importlib.import_module(f"diffmesh.{name}")
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list) and exported, f"diffmesh.{name} has no __all__"
    assert len(set(exported)) == len(exported)
    for symbol in exported:
        assert hasattr(module, symbol), f"diffmesh.{name}.__all__ names missing {symbol!r}"


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_declared_workspace_dependencies_match_imports(name: str) -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((PACKAGES[name] / "pyproject.toml").read_text(encoding="utf-8"))
    declared = {
        dep.split(">")[0].split("<")[0].split("=")[0].strip().removeprefix("diffmesh-")
        for dep in meta["project"]["dependencies"]
        if dep.startswith("diffmesh-")
    }
    imported = _imported_modules(PACKAGES[name] / "src" / "diffmesh" / name)
    used = {m.split(".")[1] for m in imported if m.startswith("diffmesh.")} - {name}
    assert used <= declared, f"{name} imports {sorted(used - declared)} without declaring them"
    assert meta["project"]["version"]
