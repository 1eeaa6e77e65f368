"""Shared fixtures of the fit app's tests: a CliRunner and a small rendered dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from diffmesh.fit.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def cow_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fit render cow` with 4 views at 48 px (rendered once per session)."""
    out = tmp_path_factory.mktemp("cow-views")
    result = CliRunner().invoke(
        cli, ["render", "cow", "--views", "4", "--image-size", "48", "--device", "cpu", "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out
