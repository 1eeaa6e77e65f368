"""The dependency floors the pyprojects declare are the tested ones.

``FLOORS`` is what the pyprojects must declare for torch, numpy and pillow. The combination
itself is tested by running the suite in an environment holding exactly those versions
(docs/CONTRIBUTING.md, "Dependency floors", gives the commands); there ``DIFFMESH_FLOORS=1``
turns on :func:`test_installed_versions_are_the_floors_and_work_together`.

Why these: torch < 2.4 was built against numpy 1 and fails with numpy 2 ("Numpy is not
available"), which is what pip picks for ``torch>=2.1``; numpy 1.24-1.26 read ``"3.0"`` as
the integer 3 and drop the rest with a DeprecationWarning, where numpy 2 raises (the OBJ
parser handles both, see tests/meshio/test_obj_load.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {"torch": "2.4", "numpy": "1.24", "pillow": "10"}
_PYPROJECTS = sorted([*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("apps/*/pyproject.toml")])


def _dependencies(path: Path) -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads(path.read_text())["project"]["dependencies"]


def test_pyprojects_declare_the_tested_floors():
    declared: dict[str, set[str]] = {}
    for path in _PYPROJECTS:
        for requirement in _dependencies(path):
            name = re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower()
            if name in FLOORS:
                declared.setdefault(name, set()).add(requirement.replace(" ", ""))
    assert declared == {name: {f"{name}>={floor}"} for name, floor in FLOORS.items()}


@pytest.mark.skipif(os.environ.get("DIFFMESH_FLOORS") != "1",
                    reason="set DIFFMESH_FLOORS=1 in an environment holding the floor versions")
def test_installed_versions_are_the_floors_and_work_together(tmp_path):
    import numpy as np
    import PIL
    import torch
    from diffmesh.meshio import load_obj

    installed = {"torch": torch.__version__, "numpy": np.__version__, "pillow": PIL.__version__}
    for name, floor in FLOORS.items():
        assert (installed[name] + ".").startswith(floor + "."), (name, installed[name], floor)
    assert torch.from_numpy(np.arange(3.0)).sum().item() == 3.0  # "Numpy is not available"
    assert torch.arange(3).numpy().tolist() == [0, 1, 2]
    path = tmp_path / "float_index.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3.0\n")
    with pytest.raises(ValueError, match=r"float_index\.obj:4: .*'3\.0' is not an integer"):
        load_obj(path)
