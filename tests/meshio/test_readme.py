"""The example in packages/meshio/README.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_example_runs(capsys):
    readme = Path(__file__).resolve().parents[2] / "packages/meshio/README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(readme), "exec"), {})
    assert capsys.readouterr().out == ("torch.Size([642, 3])\n1 tensor([1280])\nTexturesVertex\n")
