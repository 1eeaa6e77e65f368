"""Progress output: tqdm only on a terminal, TQDM_DISABLE, a postfix that fits, plain loss lines."""

from __future__ import annotations

import io
import re

import pytest
from diffmesh.fit.progress import Progress, announce, format_postfix

LOSSES = {
    "total": 0.0123456,
    "chamfer": 0.00456789,
    "edge": 0.0012345,
    "normal": 0.0456789,
    "laplacian": 0.0023456,
}


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (tqdm then draws)."""

    def isatty(self) -> bool:
        return True


def test_no_bar_frames_in_a_log_but_plain_loss_lines():
    log = io.StringIO()  # not a terminal, like a CI log
    with Progress(100, "fit shape (fish)", file=log) as progress:
        for i in range(100):
            progress.update(i, LOSSES if progress.wants_losses(i) else None)
    text = log.getvalue()
    assert "\r" not in text and "%|" not in text  # no tqdm frames
    lines = text.splitlines()
    assert len(lines) == 10  # every 10 iterations (at least 10 apart, about 20 a run)
    assert lines[0].startswith("fit shape (fish): iteration 10/100")
    assert lines[-1].startswith("fit shape (fish): iteration 100/100")
    assert all(f"{name} " in lines[0] for name in LOSSES)  # the full losses


def test_log_every_and_the_last_iteration():
    log = io.StringIO()
    with Progress(25, "x", file=log, log_every=10) as progress:
        for i in range(25):
            progress.update(i, LOSSES if progress.wants_losses(i) else None)
    iterations = [line.split("iteration ")[1].split(",")[0] for line in log.getvalue().splitlines()]
    assert iterations == ["10/25", "20/25", "25/25"]


def test_bar_on_a_terminal(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    term = FakeTerminal()
    with Progress(50, "fit shape (fish_low_resolution)", file=term) as progress:
        assert progress.bar_shown
        for i in range(50):
            progress.update(i, LOSSES if progress.wants_losses(i) else None)
    assert "%|" in term.getvalue() and "iteration " not in term.getvalue()


def test_tqdm_disable_is_honoured(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    term = FakeTerminal()
    with Progress(20, "x", file=term) as progress:
        assert not progress.bar_shown
        for i in range(20):
            progress.update(i, LOSSES if progress.wants_losses(i) else None)
    assert "%|" not in term.getvalue()
    assert "iteration 20/20" in term.getvalue()  # plain lines instead


def test_quiet_prints_nothing():
    log = io.StringIO()
    with Progress(20, "x", file=log, enabled=False) as progress:
        for i in range(20):
            assert not progress.wants_losses(i)
            progress.update(i)
    announce("evaluating", enabled=False, file=log)
    assert log.getvalue() == ""


@pytest.mark.parametrize("columns", [80, 100, 120, 200])
def test_postfix_fits_the_width(monkeypatch, columns):
    """At 80-120 columns the five-loss postfix squeezed the bar to one cell and was cut: now
    the line fits, with a bar, and shows at least the total."""
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))
    term = FakeTerminal()
    with Progress(2000, "fit shape (fish_low_resolution)", file=term) as progress:
        progress._bar.ncols = columns  # what dynamic_ncols reads from the terminal
        for i in range(30):
            progress.update(i, LOSSES if progress.wants_losses(i) else None)
        progress._bar.refresh()
        frame = term.getvalue().split("\r")[-1].rstrip("\n")
    assert len(frame) <= columns
    assert "total 0.0123" in frame
    bar = re.search(r"\|(.*)\|", frame)
    assert bar is not None and len(bar.group(1)) >= 10  # the bar keeps at least 10 cells
    if columns >= 200:
        assert "laplacian" in frame


def test_format_postfix_choices():
    assert format_postfix(LOSSES, 200).count(" ") == 9  # every term
    assert (
        format_postfix(LOSSES, 30) == "total 0.0123 chamfer 0.00457"
    )  # the total and the main term
    assert format_postfix(LOSSES, 5) == "total 0.0123"  # the total, always


def test_announce():
    log = io.StringIO()
    announce("fit images: rendering 20 target views", file=log)
    assert log.getvalue() == "fit images: rendering 20 target views\n"
