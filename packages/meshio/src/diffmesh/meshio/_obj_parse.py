"""Vectorized OBJ text parsing: the bytes of a file in, numpy arrays out.

The whole file is handled as one ``uint8`` array. Lines are classified by their directive with
array comparisons, the lines of one directive are gathered into one block, and each block is
converted to numbers by a single ``np.fromstring`` call. Only when a block fails to convert does
a slow per-line path run, whose job is to name the file and line of the error (or, for number
spellings numpy does not read but Python does, to convert the block after all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ObjArrays", "parse_obj_bytes"]

_SP, _NL, _HASH, _SLASH, _ZERO = 32, 10, 35, 47, 48
_PAD = 8  # spaces after the final newline so that directive look-ahead never reads past the end
_NOT_BLANK = re.compile(rb"[^ ]")
_PLURAL = {"vertex": "vertices", "texture coordinate": "texture coordinates", "normal": "normals"}
_MAX_INDEX = 2**62  # larger OBJ indices are reported as out of range instead of overflowing


@dataclass(frozen=True)
class ObjArrays:
    """What an OBJ file holds, as numpy arrays (0-based indices, -1 where absent).

    Attributes:
        verts: (V, 3) float64 positions.
        verts_colors: (V, 3) float64 per-vertex colours from ``v x y z r g b`` lines, or None.
        normals: (N, 3) float64 ``vn`` vectors.
        verts_uvs: (T, 2) float64 ``vt`` coordinates.
        faces_verts: (F, 3) int64 triangles (polygons fan-triangulated), indices into verts.
        faces_normals: (F, 3) int64 indices into normals, -1 for corners without one.
        faces_uvs: (F, 3) int64 indices into verts_uvs, -1 for corners without one.
        faces_materials: (F,) int64 indices into ``material_names``, -1 before any ``usemtl``.
        material_names: material names in the order of their first ``usemtl``.
        mtllibs: the text after each ``mtllib`` directive, in file order.
    """

    verts: np.ndarray
    verts_colors: np.ndarray | None
    normals: np.ndarray
    verts_uvs: np.ndarray
    faces_verts: np.ndarray
    faces_normals: np.ndarray
    faces_uvs: np.ndarray
    faces_materials: np.ndarray
    material_names: list[str] = field(default_factory=list)
    mtllibs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Lines:
    """The file as classified lines. All positions index ``buf``."""

    buf: np.ndarray  # (n + 1 + _PAD,) uint8, whitespace normalized, comments blanked
    content: np.ndarray  # (L,) int64 first byte of each line after leading blanks
    ends: np.ndarray  # (L,) int64 position of each line's newline
    joined: np.ndarray  # (J,) int64 buffer positions of newlines removed by a line continuation
    name: str

    def lineno(self, line: int) -> int:
        """1-based physical line number of logical line ``line``."""
        start = int(self.content[line])
        return line + 1 + int(np.searchsorted(self.joined, start))

    def text(self, line: int) -> str:
        """The logical line ``line`` as text (comments and leading blanks removed)."""
        raw = self.buf[self.content[line] : self.ends[line]].tobytes()
        return raw.decode("utf-8", errors="replace").strip()

    def error(self, line: int, message: str) -> ValueError:
        """``ValueError("{file}:{line}: {message} (line: '...')")`` for logical line ``line``."""
        text = " ".join(self.text(line).split())
        text = text if len(text) <= 80 else text[:77] + "..."
        return ValueError(f"{self.name}:{self.lineno(line)}: {message} (line: {text!r})")


def _split_lines(data: bytes, name: str) -> _Lines:
    raw = np.frombuffer(data, dtype=np.uint8)
    if (raw == 0).any():
        raise ValueError(f"{name}: not an OBJ text file (it contains NUL bytes)")
    if (raw >= 128).any():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{name}: not an OBJ text file (invalid UTF-8 at byte {err.start})"
            ) from err
    buf = np.full(raw.size + 1 + _PAD, _SP, dtype=np.uint8)
    buf[: raw.size] = raw
    buf[raw.size] = _NL
    # CR (so CRLF ends), tab, vertical tab and form feed are blanks like the space.
    buf[(buf == 13) | (buf == 9) | (buf == 11) | (buf == 12)] = _SP

    # Line continuation: a backslash, optional blanks, newline. Both become blanks.
    joined = np.zeros(0, dtype=np.int64)
    backslash = np.flatnonzero(buf == 92)
    if backslash.size:
        after = _skip_blanks(buf, backslash + 1)
        cont = buf[after] == _NL
        cont &= after < raw.size  # the newline appended above never continues
        buf[backslash[cont]] = _SP
        buf[after[cont]] = _SP
        joined = after[cont].astype(np.int64)

    ends = np.flatnonzero(buf[: raw.size + 1] == _NL)
    starts = np.concatenate(([0], ends[:-1] + 1))

    # Comments: blank everything from the first '#' of a line to its end.
    hashes = np.flatnonzero(buf == _HASH)
    if hashes.size:
        line_of = np.searchsorted(ends, hashes)
        first = np.concatenate(([True], line_of[1:] != line_of[:-1]))
        delta = np.zeros(buf.size + 1, dtype=np.int8)
        delta[hashes[first]] = 1
        delta[ends[line_of[first]]] = -1
        buf[np.cumsum(delta[:-1], dtype=np.int8) > 0] = _SP

    content = _skip_blanks(buf, starts)
    return _Lines(buf=buf, content=content, ends=ends, joined=joined, name=name)


def _skip_blanks(buf: np.ndarray, pos: np.ndarray, vectorized_steps: int = 16) -> np.ndarray:
    """Advance each position past the blanks (spaces) that follow it.

    Runs of up to ``vectorized_steps`` blanks (indentation, blanks before a newline) are
    skipped by array steps over all positions at once; the rare longer runs by one regex search
    each, so that a pathological file costs time linear in its size.
    """
    pos = pos.copy()
    active = np.flatnonzero(buf[pos] == _SP)
    for _ in range(vectorized_steps):
        if active.size == 0:
            return pos
        pos[active] += 1
        active = active[buf[pos[active]] == _SP]
    text = buf.tobytes()
    for k in active.tolist():  # only positions followed by more than vectorized_steps blanks
        found = _NOT_BLANK.search(text, int(pos[k]))
        pos[k] = found.start() if found else buf.size - 1
    return pos


def _heads(lines: _Lines) -> np.ndarray:
    """(L, 7) uint8 first bytes of every line (enough for ``usemtl`` and ``mtllib`` + blank)."""
    return lines.buf[lines.content[:, None] + np.arange(7)]


def _directive(heads: np.ndarray, word: bytes) -> np.ndarray:
    """(L,) bool: lines whose first token is ``word``."""
    hit = np.ones(heads.shape[0], dtype=bool)
    for k, char in enumerate(word):
        hit &= heads[:, k] == char
    after = heads[:, len(word)]
    return hit & ((after == _SP) | (after == _NL))


def _block(lines: _Lines, idx: np.ndarray, skip: int) -> np.ndarray:
    """The selected lines, directive removed, as one uint8 array of newline-ended lines."""
    if idx.size == 0:
        return np.zeros(0, dtype=np.uint8)
    stops = lines.ends[idx] + 1  # keep the newline
    breaks = np.flatnonzero(np.diff(idx) != 1)
    if breaks.size < 64:  # few runs of consecutive lines: copy each run, blank its directives
        first = np.concatenate(([0], breaks + 1))
        last = np.concatenate((breaks, [idx.size - 1]))
        run_start = lines.content[idx[first]]
        run_stop = stops[last]
        block = np.concatenate([lines.buf[a:b] for a, b in zip(run_start, run_stop, strict=True)])
        sizes = run_stop - run_start
        shift = np.repeat(np.cumsum(sizes) - sizes - run_start, last - first + 1)
        heads = lines.content[idx] + shift
        for k in range(skip):
            block[heads + k] = _SP
        return block
    delta = np.zeros(lines.buf.size + 1, dtype=np.int8)
    delta[lines.content[idx] + skip] = 1
    delta[stops] -= 1
    return lines.buf[np.cumsum(delta[:-1], dtype=np.int8) > 0]


def _tokens(block: np.ndarray, n_lines: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token start positions in ``block``, the block line of each, and tokens per line."""
    blank = (block == _SP) | (block == _NL)
    begins = ~blank
    begins[1:] &= blank[:-1]
    tok_start = np.flatnonzero(begins)
    before_end = np.searchsorted(tok_start, np.flatnonzero(block == _NL))
    counts = np.diff(before_end, prepend=0)
    return tok_start, np.repeat(np.arange(n_lines), counts), counts


def _fromstring(block: np.ndarray, dtype: type, expected: int) -> np.ndarray | None:
    """All whitespace-separated numbers of ``block``, or None unless exactly ``expected``."""
    if expected == 0:
        return np.zeros(0, dtype=dtype)
    try:
        values = np.fromstring(block.tobytes(), dtype=dtype, sep=" ")
    except ValueError:  # numpy >= 2: "could not be read to its end"
        return None
    return values if values.size == expected else None


def _numbers(lines: _Lines, idx: np.ndarray, skip: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Float values of the selected lines (flat) and how many each line has."""
    block = _block(lines, idx, skip)
    tok_start, _, counts = _tokens(block, idx.size)
    values = _fromstring(block, np.float64, tok_start.size)
    if values is None:  # slow path: find the offending line, or convert what numpy did not
        parts = []
        for line in idx.tolist():
            tokens = lines.text(line).split()[1:]
            try:
                parts.append([float(t) for t in tokens])
            except ValueError:
                bad = next(t for t in tokens if not _is_float(t))
                raise lines.error(line, f"{what}: {bad!r} is not a number") from None
        values = np.array([v for p in parts for v in p], dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        first_bad = np.searchsorted(np.cumsum(counts), np.argmin(finite), side="right")
        raise lines.error(int(idx[first_bad]), f"{what}: non-finite number")
    return values, counts


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _gather(values: np.ndarray, counts: np.ndarray, columns: int, first: int = 0) -> np.ndarray:
    """(lines, columns) values ``first..first+columns-1`` of each line (callers check counts)."""
    offsets = np.cumsum(counts) - counts
    return values[offsets[:, None] + first + np.arange(columns)]


def _check_counts(
    lines: _Lines, idx: np.ndarray, counts: np.ndarray, allowed: tuple[int, ...], what: str
) -> None:
    bad = ~np.isin(counts, allowed)
    if bad.any():
        k = int(np.argmax(bad))
        expected = ", ".join(str(a) for a in allowed[:-1])
        expected = f"{expected} or {allowed[-1]}" if expected else str(allowed[-1])
        raise lines.error(int(idx[k]), f"{what} needs {expected} numbers, got {int(counts[k])}")


@dataclass(frozen=True)
class _Corners:
    """Per face-corner token: raw (1-based or negative) indices and which fields are present."""

    v: np.ndarray  # (C,) int64
    vt: np.ndarray  # (C,) int64, meaningful where has_vt
    vn: np.ndarray  # (C,) int64, meaningful where has_vn
    has_vt: np.ndarray  # (C,) bool
    has_vn: np.ndarray  # (C,) bool
    line: np.ndarray  # (C,) int64 position of the corner's line in the face-line index
    counts: np.ndarray  # (faces lines,) corners per line


def _face_corners(lines: _Lines, idx: np.ndarray) -> _Corners:
    block = _block(lines, idx, 1)
    tok_start, tok_line, counts = _tokens(block, idx.size)
    ntok = tok_start.size
    slashes = np.flatnonzero(block == _SLASH)
    nslash = np.zeros(ntok, dtype=np.int64)
    empty_vt = np.zeros(ntok, dtype=bool)
    empty_vn = np.zeros(ntok, dtype=bool)
    parsed = block
    ok = True
    if slashes.size:
        tok_of = np.searchsorted(tok_start, slashes, side="right") - 1
        rank = np.arange(slashes.size) - np.searchsorted(tok_of, tok_of, side="left")
        nxt = block[slashes + 1]
        empty_after = (nxt == _SLASH) | (nxt == _SP) | (nxt == _NL)
        nslash = np.bincount(tok_of, minlength=ntok)
        ok = not (slashes == tok_start[tok_of]).any() and int(nslash.max()) <= 2
        empty_vt[tok_of[(rank == 0) & empty_after]] = True
        empty_vn[tok_of[(rank == 1) & empty_after]] = True
        # An empty field becomes "0" (never a valid OBJ index), then slashes become blanks.
        parsed = np.insert(block, slashes[empty_after] + 1, _ZERO)
        parsed[parsed == _SLASH] = _SP
    fields = nslash + 1
    values = _fromstring(parsed, np.int64, int(fields.sum())) if ok else None
    if values is None:
        return _face_corners_slow(lines, idx)
    offsets = np.cumsum(fields) - fields
    last = max(values.size - 1, 0)
    v = values[offsets]
    vt = values[np.minimum(offsets + 1, last)]
    vn = values[np.minimum(offsets + 2, last)]
    has_vt = (fields >= 2) & ~empty_vt
    has_vn = (fields >= 3) & ~empty_vn
    return _Corners(v, vt, vn, has_vt, has_vn, tok_line, counts)


def _face_corners_slow(lines: _Lines, idx: np.ndarray) -> _Corners:
    """Per-line reference parse of face lines; raises naming the first bad line."""
    rows: list[tuple[int, int, int, bool, bool, int]] = []
    counts = np.zeros(idx.size, dtype=np.int64)
    for k, line in enumerate(idx.tolist()):
        tokens = lines.text(line).split()[1:]
        counts[k] = len(tokens)
        for token in tokens:
            parts = token.split("/")
            if len(parts) > 3:
                raise lines.error(line, f"face corner {token!r} has more than 3 fields (v/vt/vn)")
            if parts[0] == "":
                raise lines.error(line, f"face corner {token!r} has no vertex index")
            ints = []
            for part in parts:
                try:
                    value = int(part) if part else 0
                except ValueError:
                    raise lines.error(line, f"face index {part!r} is not an integer") from None
                if abs(value) > _MAX_INDEX:
                    raise lines.error(line, f"face index {value} is out of range")
                ints.append(value)
            ints += [0] * (3 - len(ints))
            has_vt = len(parts) >= 2 and parts[1] != ""
            has_vn = len(parts) >= 3 and parts[2] != ""
            rows.append((ints[0], ints[1], ints[2], has_vt, has_vn, k))
    table = np.array(rows, dtype=np.int64).reshape(-1, 6)
    return _Corners(
        v=table[:, 0],
        vt=table[:, 1],
        vn=table[:, 2],
        has_vt=table[:, 3].astype(bool),
        has_vn=table[:, 4].astype(bool),
        line=table[:, 5],
        counts=counts,
    )


def _resolve(
    lines: _Lines,
    raw: np.ndarray,
    present: np.ndarray | None,
    before: np.ndarray,
    total: int,
    corner_line: np.ndarray,
    what: str,
) -> np.ndarray:
    """0-based indices from OBJ ones (1-based, or negative = relative to ``before``); -1 if absent.

    Args:
        raw: (C,) int64 indices as written.
        present: (C,) bool corners that have this index; None if all do.
        before: (C,) int64 number of elements defined before each corner's line.
        total: number of elements in the file.
    """
    plural = _PLURAL[what]
    if present is not None and not present.any():
        return np.full(raw.shape, -1, dtype=np.int64)
    out = np.where(raw > 0, raw - 1, raw + before)
    bad = (raw == 0) | (out < 0) | (out >= total)
    if present is not None:
        bad &= present
    if bad.any():
        k = int(np.argmax(bad))
        value = int(raw[k])
        if value == 0:
            msg = f"{what} index 0 is invalid (OBJ indices start at 1)"
        elif value > 0:
            msg = f"{what} index {value} is out of range: the file has {total} {plural}"
        else:
            msg = (
                f"relative {what} index {value} is out of range: "
                f"{int(before[k])} {plural} are defined before this line"
            )
        raise lines.error(int(corner_line[k]), msg)
    return out if present is None else np.where(present, out, -1)


def _materials(lines: _Lines, use_idx: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names in first-use order, and for each named ``usemtl`` line its line and material id."""
    names = [lines.text(line)[len("usemtl") :].strip() for line in use_idx.tolist()]
    keep = np.array([bool(n) for n in names], dtype=bool)
    order: dict[str, int] = {}
    ids = [order.setdefault(n, len(order)) for n in names if n]
    return list(order), use_idx[keep], np.array(ids, dtype=np.int64)


def parse_obj_bytes(data: bytes, name: str) -> ObjArrays:
    """Parse the bytes of an OBJ file.

    Args:
        data: the file's content.
        name: the file name used in error messages.

    Returns:
        The file's geometry as :class:`ObjArrays`.

    Raises:
        ValueError: ``"{name}:{line}: ..."`` for a malformed line; binary or non-UTF-8 data.
    """
    lines = _split_lines(data, name)
    heads = _heads(lines)
    v_idx, vt_idx, vn_idx, f_idx, use_idx, lib_idx = (
        np.flatnonzero(_directive(heads, word))
        for word in (b"v", b"vt", b"vn", b"f", b"usemtl", b"mtllib")
    )

    values, counts = _numbers(lines, v_idx, 1, "vertex (v)")
    _check_counts(lines, v_idx, counts, (3, 4, 6), "vertex (v)")
    verts = _gather(values, counts, 3)
    colored = counts == 6
    verts_colors = None
    if colored.any():
        if not colored.all():
            k = int(np.argmin(colored))
            raise lines.error(
                int(v_idx[k]), "vertex colours (v x y z r g b) must be given for all vertices or none"
            )
        verts_colors = _gather(values, counts, 3, first=3)

    values, counts = _numbers(lines, vt_idx, 2, "texture coordinate (vt)")
    _check_counts(lines, vt_idx, counts, (1, 2, 3), "texture coordinate (vt)")
    offsets = np.cumsum(counts) - counts
    second = values[np.minimum(offsets + 1, max(values.size - 1, 0))] if values.size else values
    verts_uvs = np.stack([values[offsets], np.where(counts >= 2, second, 0.0)], axis=1)

    values, counts = _numbers(lines, vn_idx, 2, "normal (vn)")
    _check_counts(lines, vn_idx, counts, (3,), "normal (vn)")
    normals = _gather(values, counts, 3)

    corners = _face_corners(lines, f_idx)
    few = corners.counts < 3
    if few.any():
        k = int(np.argmax(few))
        raise lines.error(
            int(f_idx[k]), f"a face needs at least 3 vertices, got {int(corners.counts[k])}"
        )
    first = np.cumsum(corners.counts) - corners.counts
    for flag, what in ((corners.has_vt, "texture"), (corners.has_vn, "normal")):
        if flag.size and flag.any() and not flag.all():
            f8 = flag.astype(np.int8)
            mixed = np.minimum.reduceat(f8, first) != np.maximum.reduceat(f8, first)
            if mixed.any():
                raise lines.error(
                    int(f_idx[np.argmax(mixed)]),
                    f"a face mixes corners with and without {what} indices",
                )
    corner_global = f_idx[corners.line]
    resolved = []
    for raw, present, defined, what in (
        (corners.v, None, v_idx, "vertex"),
        (corners.vt, corners.has_vt, vt_idx, "texture coordinate"),
        (corners.vn, corners.has_vn, vn_idx, "normal"),
    ):
        before = np.searchsorted(defined, f_idx)[corners.line]  # defined before each corner's line
        resolved.append(
            _resolve(lines, raw, present, before, defined.size, corner_global, what)
        )
    v0, vt0, vn0 = resolved

    # Fan triangulation: a face with k corners gives triangles (c0, c_i+1, c_i+2), i < k - 2.
    ntri = corners.counts - 2
    tri_line = np.repeat(np.arange(f_idx.size), ntri)
    within = np.arange(tri_line.size) - np.repeat(np.cumsum(ntri) - ntri, ntri)
    c0 = first[tri_line]
    tri = np.stack([c0, c0 + within + 1, c0 + within + 2], axis=1)

    names, use_lines, use_ids = _materials(lines, use_idx)
    slot = np.searchsorted(use_lines, f_idx) - 1
    line_material = np.where(slot >= 0, use_ids[np.maximum(slot, 0)] if use_ids.size else -1, -1)

    mtllibs = [lines.text(line)[len("mtllib") :].strip()
               for line in lib_idx.tolist()]
    return ObjArrays(
        verts=verts,
        verts_colors=verts_colors,
        normals=normals,
        verts_uvs=verts_uvs,
        faces_verts=v0[tri].reshape(-1, 3),
        faces_normals=vn0[tri].reshape(-1, 3),
        faces_uvs=vt0[tri].reshape(-1, 3),
        faces_materials=line_material[tri_line].astype(np.int64),
        material_names=names,
        mtllibs=[m for m in mtllibs if m],
    )
