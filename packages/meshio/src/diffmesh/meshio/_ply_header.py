"""The header of a PLY file: its format, elements and properties, checked against the file size."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["TYPES", "PlyElement", "PlyHeader", "PlyProperty", "parse_header", "type_name"]

# PLY type names (both spellings) -> numpy dtype codes without byte order.
TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint",
          "f4": "float", "f8": "double"}  # fmt: skip
_FORMATS = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}
_MAX_HEADER = 1 << 20  # a header longer than 1 MiB is not a PLY header


def type_name(code: str) -> str:
    """The PLY name (``uchar``, ``float``, ...) of a numpy dtype code such as ``"u1"``."""
    return _NAMES[code]


@dataclass(frozen=True)
class PlyProperty:
    """One property: ``count_type`` is None for a scalar, the list-length type for a list."""

    name: str
    type: str  # numpy dtype code of the values, e.g. "f4"
    count_type: str | None = None


@dataclass(frozen=True)
class PlyElement:
    """One element (``vertex``, ``face``, ...): its row count and properties in file order."""

    name: str
    count: int
    properties: tuple[PlyProperty, ...]

    @property
    def has_lists(self) -> bool:
        return any(p.count_type is not None for p in self.properties)

    def min_row_bytes(self) -> int:
        """Bytes of the shortest possible binary row (every list empty)."""
        sizes = [np.dtype(p.count_type or p.type).itemsize for p in self.properties]
        return int(sum(sizes))


@dataclass(frozen=True)
class PlyHeader:
    """A parsed header; ``byte_order`` is ``""`` (ascii), ``"<"`` or ``">"``."""

    byte_order: str
    elements: tuple[PlyElement, ...]
    comments: list[str] = field(default_factory=list)

    @property
    def ascii(self) -> bool:
        return self.byte_order == ""


def _header_end(data: bytes, name: str) -> tuple[int, int]:
    """(end of the ``end_header`` line's text, offset of the first body byte)."""
    if not data.startswith(b"ply"):
        raise ValueError(f"{name}: not a PLY file (it does not start with 'ply')")
    pos = data.find(b"\nend_header", 0, _MAX_HEADER) + 1  # at the start of a line
    while pos > 0 and data[pos + 10 : pos + 11] not in (b"", b"\n", b"\r", b" ", b"\t"):
        pos = data.find(b"\nend_header", pos, _MAX_HEADER) + 1  # 'end_headers' is not it
    if pos <= 0:
        raise ValueError(f"{name}: PLY header has no 'end_header' line in its first 1 MiB")
    stop = pos + len(b"end_header")
    rest = data[stop : stop + 2]
    if rest.startswith(b"\r\n"):
        return stop, stop + 2
    if rest[:1] in (b"\n", b"\r"):
        return stop, stop + 1
    if rest == b"" or rest[:1] in (b" ", b"\t"):
        newline = data.find(b"\n", stop, stop + 64)  # 'end_header   \n'
        if rest == b"":
            return stop, stop
        if newline >= 0 and not data[stop:newline].strip():
            return stop, newline + 1
    raise ValueError(f"{name}: PLY header: 'end_header' must end its line")


def _count(token: str, name: str, element: str) -> int:
    if not token.isdigit():
        raise ValueError(f"{name}: PLY header: element {element!r} count must be an integer >= 0, "
                         f"got {token!r}")  # fmt: skip
    return int(token)


def _type(token: str, name: str, where: str) -> str:
    if token not in TYPES:
        raise ValueError(
            f"{name}: PLY header: {where} has unknown type {token!r} (expected one of "
            f"{', '.join(sorted(TYPES))})"
        )
    return TYPES[token]


def parse_header(data: bytes, name: str) -> tuple[PlyHeader, int]:
    """Parse the header of a PLY file held in ``data``.

    Returns:
        The header and the offset of the first byte of the body.

    Raises:
        ValueError: naming ``name`` and the element or line, for anything but a well-formed
            header (unknown format or type, a property outside an element, a repeated element
            or property name, a list with a float length, a missing ``end_header``).
    """
    text_end, body = _header_end(data, name)
    try:
        text = data[:text_end].decode("ascii")
    except UnicodeDecodeError as err:
        raise ValueError(f"{name}: PLY header is not ASCII text (byte {err.start})") from None
    lines = text.replace("\r", "").split("\n")
    if lines[0].strip() != "ply":
        raise ValueError(f"{name}: not a PLY file (its first line is not 'ply')")
    byte_order: str | None = None
    comments: list[str] = []
    elements: list[tuple[str, int, list[PlyProperty]]] = []
    for number, line in enumerate(lines[1:], start=2):  # one iteration per header line
        tokens = line.split()
        if not tokens or tokens[0] == "end_header":
            continue
        key = tokens[0]
        where = f"{name}: PLY header line {number}"
        if key in ("comment", "obj_info"):
            comments.append(line.split(None, 1)[1] if len(tokens) > 1 else "")
        elif key == "format":
            if (
                len(tokens) != 3
                or tokens[1] not in _FORMATS
                or tokens[2] not in ("1.0", "1")
                or byte_order is not None
            ):
                raise ValueError(f"{where}: expected one 'format ascii|binary_little_endian|"
                                 f"binary_big_endian 1.0', got {line.strip()!r}")  # fmt: skip
            byte_order = _FORMATS[tokens[1]]
        elif key == "element":
            if len(tokens) != 3:
                raise ValueError(f"{where}: expected 'element NAME COUNT', got {line.strip()!r}")
            if any(e[0] == tokens[1] for e in elements):
                raise ValueError(f"{where}: element {tokens[1]!r} is declared twice")
            elements.append((tokens[1], _count(tokens[2], name, tokens[1]), []))
        elif key == "property":
            if not elements:
                raise ValueError(f"{where}: property before any element")
            element, _, props = elements[-1]
            if len(tokens) == 5 and tokens[1] == "list":
                what = f"element {element!r} property {tokens[4]!r}"
                count_type = _type(tokens[2], name, what)
                if count_type[0] == "f":
                    raise ValueError(f"{where}: {what} has a float list length type")
                prop = PlyProperty(tokens[4], _type(tokens[3], name, what), count_type)
            elif len(tokens) == 3:
                what = f"element {element!r} property {tokens[2]!r}"
                prop = PlyProperty(tokens[2], _type(tokens[1], name, what))
            else:
                raise ValueError(f"{where}: expected 'property TYPE NAME' or 'property list "
                                 f"COUNT_TYPE TYPE NAME', got {line.strip()!r}")  # fmt: skip
            if any(p.name == prop.name for p in props):
                raise ValueError(f"{where}: element {element!r} declares {prop.name!r} twice")
            props.append(prop)
        else:
            raise ValueError(f"{where}: unknown keyword {key!r}")
    if byte_order is None:
        raise ValueError(f"{name}: PLY header has no 'format' line")
    header = PlyHeader(
        byte_order=byte_order,
        elements=tuple(PlyElement(n, c, tuple(p)) for n, c, p in elements),
        comments=comments,
    )
    _check_sizes(header, len(data) - body, name)
    return header, body


def _check_sizes(header: PlyHeader, body_bytes: int, name: str) -> None:
    """Declared counts that the body cannot hold are an error before anything is allocated."""
    needed = 0
    for element in header.elements:  # one iteration per element
        # ascii: every value takes at least one character and one separator
        row = len(element.properties) * 2 if header.ascii else element.min_row_bytes()
        needed += element.count * row
        if needed > body_bytes + (1 if header.ascii else 0):
            raise ValueError(
                f"{name}: PLY element {element.name!r} declares {element.count} rows, more than "
                f"the {body_bytes} bytes after the header can hold (truncated file or wrong count)"
            )
