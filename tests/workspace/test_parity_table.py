"""The PyTorch3D parity table (docs/PARITY.md, summarised in the root README) cannot rot.

Every diffmesh name the table gives is imported from where the table says; every public
diffmesh name is in the table or in its list of diffmesh-only names; every PyTorch3D name it
says diffmesh lacks is indeed absent from diffmesh.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARITY = ROOT / "docs" / "PARITY.md"
README = ROOT / "README.md"

# The public modules whose ``__all__`` the table must cover.
PUBLIC_MODULES = (
    "diffmesh.meshcore",
    "diffmesh.meshcore.transforms",
    "diffmesh.meshcore.utils",
    "diffmesh.meshio",
    "diffmesh.meshloss",
    "diffmesh.softrender",
)
# The table's groups: one section per PyTorch3D module, in this order.
GROUPS = (
    "pytorch3d.structures",
    "pytorch3d.ops",
    "pytorch3d.loss",
    "pytorch3d.io",
    "pytorch3d.utils",
    "pytorch3d.transforms",
    "pytorch3d.renderer",
)
DIFFMESH_ONLY = "diffmesh names without a PyTorch3D counterpart"
MISSING = "PyTorch3D names diffmesh does not have"
_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Row:
    group: str
    pytorch3d: tuple[str, ...]
    diffmesh: tuple[str, ...]
    difference: str

    def __str__(self) -> str:
        return f"{self.group}: {', '.join(self.pytorch3d)}"


def _sections(text: str) -> dict[str, str]:
    """Level-2 heading -> its body."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _table_rows(body: str) -> list[list[str]]:
    """The cells of a markdown table's data rows (header and separator skipped)."""
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return rows[2:]


def _rows() -> list[Row]:
    sections = _sections(PARITY.read_text(encoding="utf-8"))
    rows = []
    for group in GROUPS:
        for cells in _table_rows(sections[group]):
            assert len(cells) == 3, f"{group}: a row without three cells: {cells}"
            rows.append(
                Row(group, tuple(_CODE.findall(cells[0])), tuple(_CODE.findall(cells[1])), cells[2])
            )
    return rows


def _listed(section: str) -> list[str]:
    return _CODE.findall(_sections(PARITY.read_text(encoding="utf-8"))[section])


def _resolve(dotted: str) -> tuple[object, object]:
    """Look ``dotted`` up as ``from PARENT import NAME`` would; return (parent, object).

    Each step takes the attribute when the parent has one (so ``diffmesh.meshio.ico_sphere``
    is the function the package exports, not its submodule of the same name) and imports
    the submodule otherwise.
    """
    head, *rest = dotted.split(".")
    parent: object = None
    obj: object = importlib.import_module(head)
    for part in rest:
        parent = obj
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif isinstance(obj, ModuleType):
            obj = importlib.import_module(f"{obj.__name__}.{part}")
        else:
            raise AttributeError(f"{dotted}: {part!r} not found")
    return parent, obj


def _public_objects() -> dict[int, str]:
    """id -> dotted name of every name in the public modules' ``__all__``."""
    objects = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            objects.setdefault(id(getattr(module, name)), f"{module_name}.{name}")
    return objects


def _leaf(dotted: str) -> str:
    return dotted.rsplit(".", 1)[-1].lstrip("_")


def test_the_table_has_every_group_in_order() -> None:
    headings = list(_sections(PARITY.read_text(encoding="utf-8")))
    tables = [heading for heading in headings if heading.startswith("pytorch3d.")]
    assert tables == list(GROUPS)
    assert DIFFMESH_ONLY in headings and MISSING in headings
    assert all(_table_rows(_sections(PARITY.read_text(encoding="utf-8"))[g]) for g in GROUPS)


@pytest.mark.parametrize("row", _rows(), ids=str)
def test_row_names_are_well_formed(row: Row) -> None:
    assert row.pytorch3d and row.diffmesh and row.difference, f"an empty cell in {row}"
    for name in row.pytorch3d:
        assert name.startswith(row.group + "."), f"{name} is not in section {row.group}"
    for name in row.diffmesh:
        assert re.fullmatch(r"diffmesh(\.\w+)+", name), f"{name}: not a dotted diffmesh name"
    # A diffmesh name keeps its PyTorch3D name unless the difference says it is renamed.
    if "name" not in row.difference:
        assert {_leaf(n) for n in row.diffmesh} == {_leaf(n) for n in row.pytorch3d}, str(row)


def _diffmesh_names() -> list[str]:
    names = [name for row in _rows() for name in row.diffmesh]
    names += [name for name in _listed(DIFFMESH_ONLY) if name.startswith("diffmesh.")]
    readme = _sections(README.read_text(encoding="utf-8"))["PyTorch3D parity"]
    names += [name for name in _CODE.findall(readme) if name.startswith("diffmesh.")]
    return sorted(set(names))


@pytest.mark.parametrize("dotted", _diffmesh_names())
def test_every_diffmesh_name_imports_from_where_the_table_says(dotted: str) -> None:
    parent, obj = _resolve(dotted)
    if isinstance(parent, ModuleType) and not isinstance(obj, ModuleType):
        # A module-level name is part of that module's public API, not an accident.
        assert _leaf(dotted) in parent.__all__, f"{dotted} is not in {parent.__name__}.__all__"
    assert obj is not None


def test_every_public_diffmesh_name_is_in_the_table() -> None:
    listed = {id(_resolve(name)[1]) for name in _diffmesh_names()}
    unlisted = sorted(name for key, name in _public_objects().items() if key not in listed)
    assert not unlisted, (
        f"exported but not in docs/PARITY.md: {unlisted}; add a row under its PyTorch3D "
        f"module, or list it under '{DIFFMESH_ONLY}'"
    )


@pytest.mark.parametrize(
    "name", [name for name in _listed(MISSING) if name.startswith("pytorch3d.")]
)
def test_names_said_missing_are_missing(name: str) -> None:
    exported: dict[str, object] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        exported.update({n: getattr(module, n) for n in module.__all__})
    *_, owner, leaf = name.split(".")
    if owner in exported:  # a method of a class diffmesh has
        assert not hasattr(exported[owner], leaf), f"diffmesh has {owner}.{leaf}: add a row"
    else:
        assert leaf not in exported, f"diffmesh exports {leaf}: move {name} into the table"


def test_root_readme_summarises_and_links_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    headings = list(_sections(text))
    assert headings.index("PyTorch3D parity") == headings.index("Packages") + 1
    summary = _sections(text)["PyTorch3D parity"]
    assert "(docs/PARITY.md)" in summary
    groups = [cells[0].strip("`") for cells in _table_rows(summary)]
    assert groups == list(GROUPS)
