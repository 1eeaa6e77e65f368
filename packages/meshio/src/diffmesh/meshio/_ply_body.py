"""The body of a PLY file as numpy columns, ascii or binary, read with whole-array operations.

Binary elements without lists are one structured ``np.frombuffer``. Elements with lists
(faces) are read in runs of rows whose lists have the same lengths: the lengths of a run's
first row give a fixed-size row type, a block of rows is read with it at once, and the run
ends at the first row whose lengths differ (all-triangle files are one run). When runs stay
short (triangles and quads mixed at random), the row starts are found by one pass that reads
only the list lengths, and the values are gathered with array indexing. Ascii bodies are
parsed by one ``np.fromstring`` call; rows are lines, and list lengths are walked per property
over all lines at once.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._numbers import NumberLines, float32_unrepresentable, number_lines
from ._ply_header import PlyElement, PlyHeader, PlyProperty

__all__ = ["Ragged", "read_body"]

_FIRST_BLOCK = 1 << 30  # rows of the first run attempt (bounded by the bytes left)
_LONG_RUN = 256  # a run of fewer rows with equal list lengths is short...
_SHORT_RUNS = 8  # ...and after this many short runs in a row the rows are scanned one by one


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
    done, block, pos, short = 0, _FIRST_BLOCK, offset, 0
    dtypes: dict[tuple[int, ...], np.dtype] = {}
    while done < element.count:  # one iteration per run of rows with equal list lengths
        if short >= _SHORT_RUNS:  # mixed polygons: find the rows one by one, then gather
            rest, pos = _scan_rows(data, pos, element, order, name, done)
            return _concat(props, _join_runs(props, runs), rest), pos
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
        short = short + 1 if run < _LONG_RUN else 0
    return _join_runs(props, runs), pos


def _scan_rows(
    data: bytes, pos: int, element: PlyElement, order: str, name: str, first: int
) -> tuple[Element, int]:
    """Rows ``first..count-1`` of a list element whose list lengths vary from row to row.

    Where a row starts depends on the lengths of all rows before it, so the row starts are
    found by one pass over the rows that reads only their list lengths (a few integer
    operations per row); the values are then gathered with array indexing.
    """
    props = element.properties
    byteorder = "little" if order == "<" else "big"
    spec = [
        (
            np.dtype(p.count_type or p.type).itemsize,
            np.dtype(p.type).itemsize,
            p.count_type is not None,
            p.count_type is not None and p.count_type[0] == "i",
        )
        for p in props
    ]
    starts = [array("q") for _ in props]  # byte where each row's value or list data starts
    lengths = [array("q") for _ in props]
    end = len(data)
    if len(props) == 1 and spec[0][0] == 1 and not spec[0][3]:  # faces: one uchar-length list
        item, add_start, add_length = spec[0][1], starts[0].append, lengths[0].append
        for _ in range(first, element.count):  # row starts are sequential: see the docstring
            if pos >= end:
                break  # reported as truncated below
            n = data[pos]
            add_start(pos + 1)
            add_length(n)
            pos += 1 + n * item
        if pos > end or len(lengths[0]) < element.count - first:
            raise _truncated(name, element, first + max(len(lengths[0]) - 1, 0))
    for row in range(first + len(lengths[0]) * (len(props) == 1), element.count):
        for k, (size, item, is_list, signed) in enumerate(spec):
            if not is_list:
                starts[k].append(pos)
                pos += size
                continue
            if pos + size > end:
                raise _truncated(name, element, row)
            n = int.from_bytes(data[pos : pos + size], byteorder, signed=signed)
            if n < 0:
                raise ValueError(
                    f"{name}: PLY element {element.name!r} row {row}: list "
                    f"{props[k].name!r} has negative length {n}"
                )
            starts[k].append(pos + size)
            lengths[k].append(n)
            pos += size + n * item
        if pos > end:
            raise _truncated(name, element, row)
    raw = np.frombuffer(data, np.uint8)
    cols: Element = {}
    for k, p in enumerate(props):  # gather each property's bytes with one index array
        item = np.dtype(p.type).itemsize
        begin = np.frombuffer(starts[k], np.int64)
        if p.count_type is None:
            at = begin
        else:
            counts = np.frombuffer(lengths[k], np.int64)
            at = np.repeat(begin - (np.cumsum(counts) - counts) * item, counts)
            at = at + np.arange(at.size) * item
        values = raw[at[:, None] + np.arange(item)].view(order + p.type).reshape(-1)
        values = values.astype(p.type)
        cols[p.name] = values if p.count_type is None else Ragged(counts.copy(), values)
    return cols, pos


def _concat(props: tuple[PlyProperty, ...], head: Element, tail: Element) -> Element:
    out: Element = {}
    for p in props:
        a, b = head[p.name], tail[p.name]
        if isinstance(a, Ragged) and isinstance(b, Ragged):
            out[p.name] = Ragged(
                np.concatenate([a.counts, b.counts]), np.concatenate([a.values, b.values])
            )
        else:
            out[p.name] = np.concatenate([a, b])  # type: ignore[list-item]
    return out


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
        if code == "f4":  # ascii text may hold a finite value float32 cannot (1e39)
            over = np.isfinite(values) & float32_unrepresentable(values)
            if over.any():
                raise fail(
                    _rows_of(over, owner, owner_rows), f"property {prop!r} overflows float32"
                )
        return values.astype(code)
    info = np.iinfo(code)
    bad = (np.trunc(values) != values) | (values < info.min) | (values > info.max)
    if bad.any():
        raise fail(
            _rows_of(bad, owner, owner_rows),
            f"property {prop!r} must be an integer in [{info.min}, {info.max}]",
        )
    return values.astype(code)


def _rows_of(bad: np.ndarray, owner: np.ndarray | None, owner_rows: int) -> np.ndarray:
    """Per-row bool mask of the rows holding a ``bad`` value (list values via ``owner``)."""
    if owner is None:
        return bad
    row_bad = np.zeros(owner_rows, dtype=bool)
    row_bad[owner[bad]] = True
    return row_bad
