"""The meshcore README's example runs exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "packages" / "meshcore" / "README.md"


def test_readme_example_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "torch.Size([2, 4, 3])" in out and "torch.Size([11, 2])" in out
    assert "tensor([6, 5])" in out
    assert "torch.Size([2, 5, 3])" in out and "torch.Size([2, 4])" in out
    scene = namespace["scene"]
    assert scene.num_verts_per_mesh().tolist() == [8] and scene.num_faces_per_mesh().tolist() == [6]
