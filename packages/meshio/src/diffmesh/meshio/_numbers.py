"""Whitespace-separated numeric text as one float64 array plus per-line token counts.

Shared by the ascii PLY, OFF and XYZ/PTS readers: the text is parsed by one ``np.fromstring``
call; a slow per-token pass runs only to name the offending line of a malformed file.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["FLOAT32_MAX", "UTF8_BOM", "NumberLines", "float32_unrepresentable", "number_lines"]

_SP, _NL, _HASH = 32, 10, 35

#: Largest finite float32; a float64 beyond it becomes inf when cast.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: The UTF-8 byte-order mark some editors put at the start of a text file.
UTF8_BOM = b"\xef\xbb\xbf"


def float32_unrepresentable(values: np.ndarray) -> np.ndarray:
    """Bool mask, ``values``' shape: NaN, inf, or finite but beyond float32's range.

    Check before ``astype(np.float32)``: the cast turns 1e39 into inf (with a numpy
    RuntimeWarning) and would pass a finiteness check made after it only as inf.
    """
    return ~(np.abs(values) <= FLOAT32_MAX)


@dataclass(frozen=True)
class NumberLines:
    """The non-empty lines of a text, as numbers."""

    values: np.ndarray  # (T,) float64 every token of the lines
    first: np.ndarray  # (L,) int64 index in values of each line's first token
    tokens: np.ndarray  # (L,) int64 tokens on each line
    lineno: np.ndarray  # (L,) int64 1-based line number of each line in the file
    available: int  # non-empty lines in the text (>= L when max_lines cut it)


def number_lines(
    data: bytes,
    offset: int,
    name: str,
    *,
    max_lines: int | None = None,
    comments: bool = False,
    what: str = "value",
    segments: Sequence[tuple[int, bool]] = (),
) -> NumberLines:
    """Parse ``data[offset:]`` as lines of numbers, skipping blank lines.

    Args:
        data: the whole file (line numbers count from its start).
        offset: where the numeric text starts.
        name: the file's name for messages.
        max_lines: parse only the first ``max_lines`` non-empty lines (the rest is ignored);
            None parses all.
        comments: blank ``#`` to the end of each line first.
        what: the kind of file, for the error message (``"PLY value"``, ...).
        segments: ``(lines, integer)``: the next ``lines`` lines are parsed as int64 when
            ``integer`` (5x faster than float64 parsing; a fraction is then re-read as float
            for the caller to reject), the rest as float64. ``values`` is float64 throughout.

    Raises:
        ValueError: ``"{name}:{line}: {what} 'tok' is not a number"``.
    """
    raw = np.frombuffer(data, np.uint8, offset=offset)
    buf = np.empty(raw.size + 1, np.uint8)  # every byte written: the text, then a newline
    buf[:-1] = raw
    buf[-1] = _NL
    for code in (13, 9, 11, 12):  # CR, tab, VT, FF are blanks
        buf[buf == code] = _SP
    ends = np.flatnonzero(buf == _NL)
    if comments:
        hashes = np.flatnonzero(buf == _HASH)
        if hashes.size:  # blank from the first '#' of each line to its end
            line_of = np.searchsorted(ends, hashes)
            first_hash = np.concatenate(([True], line_of[1:] != line_of[:-1]))
            delta = np.zeros(buf.size + 1, dtype=np.int32)
            np.add.at(delta, hashes[first_hash], 1)
            np.add.at(delta, ends[line_of[first_hash]], -1)
            buf[np.cumsum(delta[:-1]) > 0] = _SP
    blank = (buf == _SP) | (buf == _NL)
    begins = ~blank
    begins[1:] &= blank[:-1]
    tok_start = np.flatnonzero(begins)
    tokens = np.diff(np.searchsorted(tok_start, ends), prepend=0)
    used = np.flatnonzero(tokens > 0)
    available = used.size
    if max_lines is not None:
        used = used[:max_lines]
    counts = tokens[used]
    first_line = data[:offset].count(b"\n") + 1
    line_starts = np.concatenate(([0], ends[:-1] + 1))
    parts, done = [], 0
    for size, integer in [*segments, (used.size, False)]:  # one iteration per segment
        size = min(size, used.size - done)
        if size <= 0:
            continue
        lines = used[done : done + size]
        start, stop = int(line_starts[lines[0]]), int(ends[lines[-1]])
        values = _parse(buf[start:stop].tobytes(), integer, int(counts[done : done + size].sum()))
        if values is None:
            _raise_bad_token(buf[start:stop].tobytes(), name, what, first_line + int(lines[0]))
        parts.append(values)
        done += size
    values = np.concatenate(parts) if parts else np.zeros(0)
    return NumberLines(
        values=values,
        first=np.cumsum(counts) - counts,
        tokens=counts,
        lineno=used + first_line,
        available=available,
    )


def _parse(text: bytes, integer: bool, expected: int) -> np.ndarray | None:
    """The numbers of ``text`` as float64, or None unless exactly ``expected`` were read."""
    for dtype in (np.int64, np.float64) if integer else (np.float64,):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                values = np.fromstring(text, dtype=dtype, sep=" ")
        except (ValueError, DeprecationWarning):
            continue
        if values.size == expected:
            return values.astype(np.float64)
    return None


def _raise_bad_token(text: bytes, name: str, what: str, first_line: int) -> None:
    """Error path only: find the token that is not a number and name its line."""
    for k, line in enumerate(text.split(b"\n")):
        for token in line.split():
            try:
                float(token)
            except ValueError:
                bad = token.decode("utf-8", "replace")
                raise ValueError(
                    f"{name}:{k + first_line}: {what} {bad!r} is not a number"
                ) from None
    raise ValueError(f"{name}: the text could not be read as numbers")
