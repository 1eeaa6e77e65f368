"""The root README's example runs exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _example_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Example", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_readme_example_runs() -> None:
    blocks = _example_blocks()
    assert len(blocks) == 1, "the README's Example section holds one python block"
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(blocks[0], "README.md:Example", "exec"), namespace)
    # The example ends with a fitted mesh and a differentiable silhouette of it.
    silhouette = namespace["silhouette"]
    assert silhouette.shape == (1, 64, 64)
    assert silhouette.requires_grad


def test_readme_gives_the_two_setup_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "uv run fit shape" in text
    assert "uv run pytest" in text
    assert "pip install uv" in text
