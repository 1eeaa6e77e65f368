"""Vectorized OBJ parsing: the bytes of a file in, numpy arrays out.

The lines of each directive (``v``, ``vt``, ``vn``, ``f``) are gathered into one block (see
``_obj_lines``) and converted by a single ``np.fromstring`` call; faces are then checked,
resolved to 0-based indices and fan-triangulated with array operations. Only when a block fails
to convert does a slow per-line path run, whose job is to name the file and line of the error
(or, for number spellings numpy does not read but Python does, to convert the block after all).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._obj_lines import (
    NL,
    SLASH,
    SP,
    ZERO,
    Lines,
    find_tokens,
    gather_block,
    is_directive,
    line_heads,
    parse_numbers,
    split_lines,
)

__all__ = ["ObjArrays", "parse_obj_bytes"]

_PLURAL = {"vertex": "vertices", "texture coordinate": "texture coordinates", "normal": "normals"}
_MINUS, _PLUS = 45, 43
_MAX_INDEX = 2**62  # larger OBJ indices are reported as out of range instead of overflowing
_FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def _numbers(lines: Lines, idx: np.ndarray, skip: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Float values of the selected lines (flat, float64) and how many each line has."""
    block = gather_block(lines, idx, skip)
    tok_start, counts = find_tokens(block)
    values = parse_numbers(block, np.float64, tok_start.size)
    if values is None:  # slow path: find the offending line, or convert what numpy did not
        parts = []
        for line in idx.tolist():  # runs only for a block numpy could not convert
            tokens = lines.text(line).split()[1:]
            try:
                parts.append([float(t) for t in tokens])
            except ValueError:
                bad = next(t for t in tokens if not _is_float(t))
                raise lines.error(line, f"{what}: {bad!r} is not a number") from None
        values = np.array([v for p in parts for v in p], dtype=np.float64)
    # The values become float32 tensors: a number beyond float32's range would load as inf.
    in_range = np.abs(values) <= _FLOAT32_MAX  # False for inf and nan too
    if not in_range.all():
        first = int(np.argmin(in_range))
        line = int(idx[np.searchsorted(np.cumsum(counts), first, side="right")])
        if np.isfinite(values[first]):
            raise lines.error(
                line, f"{what}: {values[first]:g} overflows float32 (largest {_FLOAT32_MAX:.7g})"
            )
        raise lines.error(line, f"{what}: non-finite number")
    return values, counts


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _gather(values: np.ndarray, counts: np.ndarray, columns: int, first: int = 0) -> np.ndarray:
    """(lines, columns) values ``first..first+columns-1`` of each line (callers check counts)."""
    if counts.size and counts.min() == counts.max():  # one width: a strided view, no index array
        return values.reshape(-1, int(counts[0]))[:, first : first + columns]
    offsets = np.cumsum(counts) - counts
    return values[offsets[:, None] + first + np.arange(columns)]


def _check_counts(
    lines: Lines, idx: np.ndarray, counts: np.ndarray, allowed: tuple[int, ...], what: str
) -> None:
    bad = ~np.isin(counts, allowed)
    if bad.any():
        k = int(np.argmax(bad))
        expected = ", ".join(str(a) for a in allowed[:-1])
        expected = f"{expected} or {allowed[-1]}" if expected else str(allowed[-1])
        raise lines.error(int(idx[k]), f"{what} needs {expected} numbers, got {int(counts[k])}")


@dataclass(frozen=True)
class _Corners:
    """The face corners (``v/vt/vn`` tokens) of all face lines, in file order.

    ``vt``/``vn`` and ``has_vt``/``has_vn`` are None when no corner has that index.
    """

    v: np.ndarray  # (C,) int64 vertex indices as written (1-based, or negative)
    vt: np.ndarray | None  # (C,) int64, meaningful where has_vt
    vn: np.ndarray | None  # (C,) int64, meaningful where has_vn
    has_vt: np.ndarray | None  # (C,) bool
    has_vn: np.ndarray | None  # (C,) bool
    counts: np.ndarray  # (face lines,) int64 corners per line

    def line_of(self, corner: np.ndarray | int) -> np.ndarray:
        """Face-line position (into the face-line index) of corner number(s) ``corner``."""
        return np.searchsorted(np.cumsum(self.counts), corner, side="right")


def _face_corners(lines: Lines, idx: np.ndarray) -> _Corners:
    """Parse face lines: slashes are read with array operations, then one integer conversion."""
    block = gather_block(lines, idx, 1)
    tok_start, counts = find_tokens(block)
    ntok = tok_start.size
    signs = np.flatnonzero((block == _MINUS) | (block == _PLUS))
    if signs.size and not ((block[signs + 1] >= ZERO) & (block[signs + 1] <= ZERO + 9)).all():
        return _face_corners_slow(lines, idx)  # numpy reads a lone "-" as 0: let it name the line
    slashes = np.flatnonzero(block == SLASH)
    if slashes.size == 0:  # "f 1 2 3": vertex indices only
        values = parse_numbers(block, np.int64, ntok)
        if values is None:
            return _face_corners_slow(lines, idx)
        return _Corners(values, None, None, None, None, counts)
    tok_of = np.searchsorted(tok_start, slashes, side="right") - 1
    nslash = np.bincount(tok_of, minlength=ntok)
    if (slashes == tok_start[tok_of]).any() or int(nslash.max()) > 2:
        return _face_corners_slow(lines, idx)  # "/2" or "1/2/3/4": let it name the line
    rank = np.arange(slashes.size) - np.searchsorted(tok_of, tok_of, side="left")
    nxt = block[slashes + 1]
    empty_after = (nxt == SLASH) | (nxt == SP) | (nxt == NL)
    # An empty field ("1//2", "1/") becomes "0", never a valid OBJ index; slashes become blanks.
    parsed = np.insert(block, slashes[empty_after] + 1, ZERO)
    parsed[parsed == SLASH] = SP
    fields = nslash + 1
    values = parse_numbers(parsed, np.int64, int(fields.sum()))
    if values is None:
        return _face_corners_slow(lines, idx)
    if fields.min() == fields.max():  # one corner form throughout: strided views
        table = values.reshape(ntok, int(fields[0]))
        columns = [table[:, k] if k < table.shape[1] else None for k in range(3)]
    else:
        offsets = np.cumsum(fields) - fields
        last = values.size - 1
        columns = [values[np.minimum(offsets + k, last)] for k in range(3)]
    present = []
    for k in (1, 2):  # vt, vn
        empty = np.zeros(ntok, dtype=bool)
        empty[tok_of[(rank == k - 1) & empty_after]] = True
        has = (fields > k) & ~empty
        present.append(has if has.any() else None)
    vt, vn = (col if has is not None else None for col, has in zip(columns[1:], present, strict=True))
    return _Corners(columns[0], vt, vn, present[0], present[1], counts)


def _face_corners_slow(lines: Lines, idx: np.ndarray) -> _Corners:
    """Per-line reference parse of face lines; raises naming the first bad line."""
    rows: list[tuple[int, int, int, bool, bool]] = []
    counts = np.zeros(idx.size, dtype=np.int64)
    for k, line in enumerate(idx.tolist()):  # runs only for a block numpy could not convert
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
            rows.append((ints[0], ints[1], ints[2], has_vt, has_vn))
    table = np.array(rows, dtype=np.int64).reshape(-1, 5)
    has_vt, has_vn = table[:, 3].astype(bool), table[:, 4].astype(bool)
    return _Corners(
        v=table[:, 0],
        vt=table[:, 1] if has_vt.any() else None,
        vn=table[:, 2] if has_vn.any() else None,
        has_vt=has_vt if has_vt.any() else None,
        has_vn=has_vn if has_vn.any() else None,
        counts=counts,
    )


def _check_faces(lines: Lines, f_idx: np.ndarray, corners: _Corners) -> None:
    """At least 3 corners per face, and no face mixing corners with and without vt (or vn)."""
    few = corners.counts < 3
    if few.any():
        k = int(np.argmax(few))
        raise lines.error(
            int(f_idx[k]), f"a face needs at least 3 vertices, got {int(corners.counts[k])}"
        )
    first = np.cumsum(corners.counts) - corners.counts
    for flag, what in ((corners.has_vt, "texture"), (corners.has_vn, "normal")):
        if flag is not None and not flag.all():
            f8 = flag.astype(np.int8)
            mixed = np.minimum.reduceat(f8, first) != np.maximum.reduceat(f8, first)
            if mixed.any():
                raise lines.error(
                    int(f_idx[np.argmax(mixed)]),
                    f"a face mixes corners with and without {what} indices",
                )


def _resolve(
    lines: Lines,
    raw: np.ndarray | None,
    present: np.ndarray | None,
    defined: np.ndarray,
    f_idx: np.ndarray,
    corners: _Corners,
    what: str,
) -> np.ndarray:
    """0-based indices from OBJ ones (1-based, or negative: relative to the line); -1 if absent.

    Args:
        raw: (C,) int64 indices as written, or None if no corner has one.
        present: (C,) bool corners that have this index; None with ``raw`` None, or if all do.
        defined: (D,) int64 line numbers of the elements' definitions (``v`` lines, ...).
        f_idx: (L,) int64 line numbers of the face lines.
    """
    if raw is None:
        return np.full(corners.v.shape, -1, dtype=np.int64)
    out = raw - 1
    negative = np.flatnonzero(raw < 0)
    if negative.size:  # -1 is the last element defined before the face's line
        out[negative] = raw[negative] + np.searchsorted(defined, f_idx[corners.line_of(negative)])
    bad = (out < 0) | (out >= defined.size)  # index 0 gives -1
    if present is not None:
        bad &= present
    if bad.any():
        k = int(np.argmax(bad))
        value, line = int(raw[k]), int(f_idx[corners.line_of(k)])
        plural = _PLURAL[what]
        if value == 0:
            msg = f"{what} index 0 is invalid (OBJ indices start at 1)"
        elif value > 0:
            msg = f"{what} index {value} is out of range: the file has {defined.size} {plural}"
        else:
            before = int(np.searchsorted(defined, line))
            msg = (
                f"relative {what} index {value} is out of range: "
                f"{before} {plural} are defined before this line"
            )
        raise lines.error(line, msg)
    if present is not None and not present.all():
        out[~present] = -1
    return out


def _fan(corners: _Corners) -> tuple[np.ndarray | None, np.ndarray]:
    """Fan triangulation: a face with k corners gives (c0, c_i+1, c_i+2) for i < k - 2.

    Returns:
        (T, 3) int64 corner numbers of each triangle (None when every face is a triangle, so
        that the corner arrays reshape to (T, 3) directly) and (T,) the face line of each.
    """
    counts = corners.counts
    if counts.size == 0 or (counts == 3).all():
        return None, np.arange(counts.size)
    ntri = counts - 2
    tri_line = np.repeat(np.arange(counts.size), ntri)
    within = np.arange(tri_line.size) - np.repeat(np.cumsum(ntri) - ntri, ntri)
    c0 = (np.cumsum(counts) - counts)[tri_line]
    return np.stack([c0, c0 + within + 1, c0 + within + 2], axis=1), tri_line


def _materials(lines: Lines, use_idx: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
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
    lines = split_lines(data, name)
    heads = line_heads(lines)
    v_idx, vt_idx, vn_idx, f_idx, use_idx, lib_idx = (
        np.flatnonzero(is_directive(heads, word))
        for word in (b"v", b"vt", b"vn", b"f", b"usemtl", b"mtllib")
    )
    del heads

    values, counts = _numbers(lines, v_idx, 1, "vertex (v)")
    _check_counts(lines, v_idx, counts, (3, 4, 6), "vertex (v)")
    verts = _gather(values, counts, 3)
    colored = counts == 6
    verts_colors = None
    if colored.any():
        if not colored.all():
            raise lines.error(
                int(v_idx[np.argmin(colored)]),
                "vertex colours (v x y z r g b) must be given for all vertices or none",
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
    _check_faces(lines, f_idx, corners)
    v0 = _resolve(lines, corners.v, None, v_idx, f_idx, corners, "vertex")
    vt0 = _resolve(lines, corners.vt, corners.has_vt, vt_idx, f_idx, corners, "texture coordinate")
    vn0 = _resolve(lines, corners.vn, corners.has_vn, vn_idx, f_idx, corners, "normal")
    tri, tri_line = _fan(corners)

    names, use_lines, use_ids = _materials(lines, use_idx)
    slot = np.searchsorted(use_lines, f_idx) - 1
    line_material = use_ids[slot] if use_ids.size else np.zeros(f_idx.size, dtype=np.int64)
    line_material[slot < 0] = -1

    def triangles(corner_values: np.ndarray) -> np.ndarray:
        return (corner_values if tri is None else corner_values[tri]).reshape(-1, 3)

    mtllibs = [lines.text(line)[len("mtllib") :].strip() for line in lib_idx.tolist()]
    return ObjArrays(
        verts=verts,
        verts_colors=verts_colors,
        normals=normals,
        verts_uvs=verts_uvs,
        faces_verts=triangles(v0),
        faces_normals=triangles(vn0),
        faces_uvs=triangles(vt0),
        faces_materials=line_material[tri_line],
        material_names=names,
        mtllibs=[m for m in mtllibs if m],
    )
