"""The body of a PLY file as numpy columns, ascii or binary, read with whole-array operations.

Binary elements without lists are one structured ``np.frombuffer``. Elements with lists
(faces) are read in runs of rows whose lists have the same lengths: the lengths of a run's
first row give a fixed-size row type, a block of rows is read with it at once, and the run
ends at the first row whose lengths differ (all-triangle files are one run). Ascii bodies are
parsed by one ``np.fromstring`` call; rows are lines, and list lengths are walked per property
over all lines at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._numbers import NumberLines, number_lines
from ._ply_header import PlyElement, PlyHeader, PlyProperty

__all__ = ["Ragged", "read_body"]

_FIRST_BLOCK = 1 << 30  # rows of the first run attempt (bounded by the bytes left)


@dataclass(frozen=True)
class Ragged:
    """A list property: ``values[offsets[i]:offsets[i] + counts[i]]`` is row i's list."""

    counts: np.ndarray  # (R,) int64
    values: np.ndarray  # (sum(counts),)

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum(self.counts) - self.counts

    def uniform(self) -> int | None:
        """The common list length, or None when rows differ (or there are none)."""
        if self.counts.size == 0 or self.counts.min() != self.counts.max():
            return None
        return int(self.counts[0])


Column = np.ndarray | Ragged
Element = dict[str, Column]


def read_body(data: bytes, offset: int, header: PlyHeader, name: str) -> dict[str, Element]:
    """Every element's properties: scalars as (rows,) arrays of their declared type, lists Ragged.

    Raises:
        ValueError: naming ``name`` and the element (and row or line) for a truncated body, a
            value that is not a number, a list length that does not fit its row, or an integer
            property given a fractional or out-of-range value (ascii).
    """
    if header.ascii:
        return _read_ascii(data, offset, header, name)
    out: dict[str, Element] = {}
    for element in header.elements:  # one iteration per element
        out[element.name], offset = _read_binary(data, offset, element, header.byte_order, name)
    return out


# ---- binary ---------------------------------------------------------------------------------


def _truncated(name: str, element: PlyElement, row: int) -> ValueError:
    return ValueError(
        f"{name}: PLY element {element.name!r} is truncated: the file ends in row {row} of "
        f"{element.count}"
    )


def _read_binary(
    data: bytes, offset: int, element: PlyElement, order: str, name: str
) -> tuple[Element, int]:
    props = element.properties
    if not element.has_lists:
        dtype = np.dtype([(p.name, order + p.type) for p in props])
        if offset + dtype.itemsize * element.count > len(data):
            raise _truncated(name, element, (len(data) - offset) // max(dtype.itemsize, 1))
        rows = np.frombuffer(data, dtype, element.count, offset) if props else None
        cols = {p.name: rows[p.name].astype(p.type) for p in props} if rows is not None else {}
        return cols, offset + dtype.itemsize * element.count

    runs: list[tuple[tuple[int, ...], np.ndarray]] = []
    done, block, pos = 0, _FIRST_BLOCK, offset
    dtypes: dict[tuple[int, ...], np.dtype] = {}
    while done < element.count:  # one iteration per run of rows with equal list lengths
        lengths = _row_lengths(data, pos, element, order, name, done)
        if lengths not in dtypes:
            dtypes[lengths] = _row_dtype(props, lengths, order)
        dtype = dtypes[lengths]
        rows = min(element.count - done, block, (len(data) - pos) // dtype.itemsize)
        arr = np.frombuffer(data, dtype, rows, pos)  # rows >= 1: _row_lengths read one row
        same = np.ones(rows, dtype=bool)
        for k, p in enumerate(props):
            if p.count_type is not None:
                same &= arr[f"{k}n"] == lengths[k]
        run = rows if same.all() else int(np.argmin(same))
        runs.append((lengths, arr[:run]))
        done, pos = done + run, pos + run * dtype.itemsize
        block = 2 * block if run == rows else max(16, 2 * run)
    return _join_runs(props, runs), pos


def _row_lengths(
    data: bytes, pos: int, element: PlyElement, order: str, name: str, row: int
) -> tuple[int, ...]:
    """The list lengths of the one row at ``pos`` (0 for scalars), checking the row fits."""
    lengths = []
    for p in element.properties:  # one iteration per property of the row
        size = np.dtype(p.count_type or p.type).itemsize
        if pos + size > len(data):
            raise _truncated(name, element, row)
        if p.count_type is None:
            lengths.append(0)
            pos += size
            continue
        n = int(np.frombuffer(data, order + p.count_type, 1, pos)[0])
        if n < 0:
            raise ValueError(
                f"{name}: PLY element {element.name!r} row {row}: list {p.name!r} has negative "
                f"length {n}"
            )
        pos += size + n * np.dtype(p.type).itemsize
        lengths.append(n)
    if pos > len(data):
        raise _truncated(name, element, row)
    return tuple(lengths)


def _row_dtype(props: tuple[PlyProperty, ...], lengths: tuple[int, ...], order: str) -> np.dtype:
    fields: list[tuple] = []
    for k, (p, n) in enumerate(zip(props, lengths, strict=True)):
        if p.count_type is None:
            fields.append((f"{k}v", order + p.type))
        else:
            fields.append((f"{k}n", order + p.count_type))
            fields.append((f"{k}v", order + p.type, (n,)))
    return np.dtype(fields)


def _join_runs(
    props: tuple[PlyProperty, ...], runs: list[tuple[tuple[int, ...], np.ndarray]]
) -> Element:
    cols: Element = {}
    for k, p in enumerate(props):  # one iteration per property
        parts = [arr[f"{k}v"].reshape(-1) for _, arr in runs]
        values = (np.concatenate(parts) if parts else np.zeros(0)).astype(p.type)
        if p.count_type is None:
            cols[p.name] = values
        else:
            counts = [np.full(arr.shape[0], lengths[k], np.int64) for lengths, arr in runs]
            cols[p.name] = Ragged(
                np.concatenate(counts) if counts else np.zeros(0, np.int64), values
            )
    return cols


# ---- ascii ----------------------------------------------------------------------------------


def _ascii_lines(data: bytes, offset: int, header: PlyHeader, name: str) -> NumberLines:
    needed = sum(e.count for e in header.elements if e.properties)  # no properties: no lines
    segments = [
        (e.count, all(p.type[0] != "f" for p in e.properties))
        for e in header.elements
        if e.properties
    ]
    lines = number_lines(data, offset, name, max_lines=needed, what="PLY value", segments=segments)
    if lines.available < needed:
        have, where = lines.available, 0
        for element in header.elements:  # one iteration per element: find the short one
            if element.properties and have < where + element.count:
                raise ValueError(
                    f"{name}: PLY element {element.name!r} is truncated: {element.count} rows "
                    f"declared, {max(have - where, 0)} lines left in the file"
                )
            where += element.count if element.properties else 0
    return lines


def _read_ascii(data: bytes, offset: int, header: PlyHeader, name: str) -> dict[str, Element]:
    lines = _ascii_lines(data, offset, header, name)
    out: dict[str, Element] = {}
    start = 0
    for element in header.elements:  # one iteration per element
        if not element.properties:
            out[element.name] = {}
            continue
        rows = slice(start, start + element.count)
        out[element.name] = _ascii_element(lines, rows, element, name)
        start += element.count
    return out


def _ascii_element(lines: NumberLines, rows: slice, element: PlyElement, name: str) -> Element:
    first, tokens, lineno = lines.first[rows], lines.tokens[rows], lines.lineno[rows]
    pos = first.copy()
    stop = first + tokens
    cols: Element = {}

    def fail(bad: np.ndarray, message: str) -> ValueError:
        line = int(lineno[int(np.argmax(bad))])
        return ValueError(f"{name}:{line}: PLY element {element.name!r}: {message}")

    for p in element.properties:  # one iteration per property, over all rows at once
        if (pos >= stop).any():
            raise fail(pos >= stop, f"too few values for property {p.name!r}")
        if p.count_type is None:
            cols[p.name] = _typed(lines.values[pos], p.type, p.name, fail)
            pos = pos + 1
            continue
        counts = _typed(lines.values[pos], p.count_type, p.name + " length", fail)
        counts = counts.astype(np.int64)
        if (counts < 0).any() or (pos + 1 + counts > stop).any():
            raise fail((counts < 0) | (pos + 1 + counts > stop), f"list {p.name!r} is too short")
        total = int(counts.sum())
        index = np.repeat(pos + 1 - (np.cumsum(counts) - counts), counts) + np.arange(total)
        owner = np.repeat(np.arange(counts.size), counts)
        values = _typed(lines.values[index], p.type, p.name, fail, owner, counts.size)
        cols[p.name] = Ragged(counts, values)
        pos = pos + 1 + counts
    if (pos != stop).any():
        raise fail(pos != stop, f"more values on the line than its {len(element.properties)} "
                   "properties")  # fmt: skip
    return cols


def _typed(
    values: np.ndarray,
    code: str,
    prop: str,
    fail: Callable[[np.ndarray, str], ValueError],
    owner: np.ndarray | None = None,
    owner_rows: int = 0,
) -> np.ndarray:
    """``values`` as dtype ``code``; integers must be whole and in range (else ``fail``).

    ``owner`` maps list values to their rows (``owner_rows`` of them) for the error's line.
    """
    if code[0] == "f":
        return values.astype(code)
    info = np.iinfo(code)
    bad = (np.trunc(values) != values) | (values < info.min) | (values > info.max)
    if bad.any():
        if owner is None:
            row_bad = bad
        else:
            row_bad = np.zeros(owner_rows, dtype=bool)
            row_bad[owner[bad]] = True
        raise fail(row_bad, f"property {prop!r} must be an integer in [{info.min}, {info.max}]")
    return values.astype(code)
