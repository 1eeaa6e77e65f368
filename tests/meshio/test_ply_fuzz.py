"""Property tests: load_ply_data raises only ValueError, and agrees with a slow reference reader."""

from __future__ import annotations

import io
import struct

import numpy as np
import torch
from diffmesh.meshio import load_ply_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STRUCT = {"char": "b", "uchar": "B", "short": "h", "ushort": "H", "int": "i", "uint": "I",
          "float": "f", "double": "d"}  # fmt: skip
INT_TYPES = ["char", "uchar", "short", "ushort", "int", "uint"]


def _reference(data: bytes) -> dict:
    """One Python statement per value: header by split, binary by struct, ascii by tokens."""
    end = data.index(b"end_header") + len(b"end_header")
    end += 2 if data[end : end + 2] == b"\r\n" else 1
    header = data[:end].decode("ascii").split("\n")
    fmt = header[1].split()[1]
    elements = []
    for line in header[2:]:
        tokens = line.split()
        if tokens and tokens[0] == "element":
            elements.append((tokens[1], int(tokens[2]), []))
        elif tokens and tokens[0] == "property":
            elements[-1][2].append(tokens[1:])
    out = {}
    if fmt == "ascii":
        lines = [line.split() for line in data[end:].decode().splitlines() if line.split()]
        row_iter = iter(lines)
    order = "<" if fmt == "binary_little_endian" else ">"
    pos = end
    for name, count, props in elements:
        rows = []
        for _ in range(count):
            if fmt == "ascii":
                tokens = iter(next(row_iter))
            row = []
            for prop in props:
                if prop[0] == "list":
                    if fmt == "ascii":
                        n = int(next(tokens))
                        row.append([float(next(tokens)) for _ in range(n)])
                    else:
                        (n,) = struct.unpack_from(order + STRUCT[prop[1]], data, pos)
                        pos += struct.calcsize(STRUCT[prop[1]])
                        item = STRUCT[prop[2]]
                        row.append(list(struct.unpack_from(order + item * n, data, pos)))
                        pos += n * struct.calcsize(item)
                elif fmt == "ascii":
                    row.append(float(next(tokens)))
                else:
                    (value,) = struct.unpack_from(order + STRUCT[prop[0]], data, pos)
                    pos += struct.calcsize(STRUCT[prop[0]])
                    row.append(value)
            rows.append(row)
        out[name] = ([p[-1] for p in props], rows)
    return out


@st.composite
def ply_file(draw) -> bytes:
    """A well-formed PLY: random format, property types and order, polygons, extra elements."""
    fmt = draw(st.sampled_from(["ascii", "binary_little_endian", "binary_big_endian"]))
    num_verts = draw(st.integers(0, 8))
    extra_types = draw(st.lists(st.sampled_from(list(STRUCT)), max_size=3))
    vprops = [("float", "x"), ("float", "y"), ("double", "z")]
    vprops += [(t, f"e{i}") for i, t in enumerate(extra_types)]
    vprops = draw(st.permutations(vprops))
    count_type = draw(st.sampled_from(["uchar", "ushort", "int", "uint"]))
    index_type = draw(st.sampled_from(["int", "uint"]))
    num_faces = draw(st.integers(0, 30)) if num_verts else 0  # > 8 runs: the row scan
    header = [f"ply\nformat {fmt} 1.0\ncomment fuzz\nelement vertex {num_verts}"]
    header += [f"property {t} {n}" for t, n in vprops]
    header += [f"element face {num_faces}", f"property list {count_type} {index_type} vertex_indices",
               "property uchar flag", "element extra 1", "property short k", "end_header\n"]  # fmt: skip
    value = {
        "float": st.floats(-1e3, 1e3, width=32), "double": st.floats(-1e3, 1e3, width=32),
        "char": st.integers(-128, 127), "uchar": st.integers(0, 255),
        "short": st.integers(-(2**15), 2**15 - 1), "ushort": st.integers(0, 2**16 - 1),
        "int": st.integers(-(2**31), 2**31 - 1), "uint": st.integers(0, 2**32 - 1),
    }  # fmt: skip
    rows = []
    for _ in range(num_verts):
        rows.append([(t, draw(value[t])) for t, _ in vprops])
    for _ in range(num_faces):
        corners = draw(st.lists(st.integers(0, num_verts - 1), min_size=3, max_size=6))
        rows.append([(count_type, len(corners)), *[(index_type, c) for c in corners],
                     ("uchar", draw(value["uchar"]))])  # fmt: skip
    rows.append([("short", draw(value["short"]))])
    out = "\n".join(header).encode()
    if fmt == "ascii":
        return out + "".join(" ".join(repr(v) for _, v in row) + "\n" for row in rows).encode()
    order = "<" if fmt == "binary_little_endian" else ">"
    return out + b"".join(struct.pack(order + STRUCT[t], v) for row in rows for t, v in row)


@FAST
@given(ply_file())
def test_valid_files_match_the_reference_reader(data):
    got = load_ply_data(io.BytesIO(data))
    ref = _reference(data)
    names, rows = ref["vertex"]
    table = {n: [row[i] for row in rows] for i, n in enumerate(names)}
    expected = torch.tensor([table["x"], table["y"], table["z"]], dtype=torch.float64).T
    assert torch.equal(got.verts, expected.reshape(-1, 3).float())
    for key in names:
        if key not in "xyz":
            assert got.verts_properties[key].double().tolist() == [float(v) for v in table[key]]
    polys = [row[0] for row in ref["face"][1]]
    fan = [[p[0], p[k + 1], p[k + 2]] for p in polys for k in range(len(p) - 2)]
    assert got.faces.reshape(-1, 3).tolist() == [[int(c) for c in t] for t in fan]
    flags = [row[1] for row in ref["face"][1] for _ in range(len(row[0]) - 2)]
    assert got.faces_properties["flag"].tolist() == flags
    assert got.elements["extra"]["k"].tolist() == [ref["extra"][1][0][0]]
    assert got.comments == ["fuzz"]


def _load_or_value_error(data: bytes) -> None:
    try:
        got = load_ply_data(io.BytesIO(data))
    except ValueError as err:
        assert "<stream>" in str(err)  # every error names the file
        return
    n = got.verts.shape[0]
    assert got.faces.shape[1] == 3 and got.verts.shape[1] == 3
    if got.faces.numel():
        assert int(got.faces.min()) >= 0 and int(got.faces.max()) < n
    assert torch.isfinite(got.verts).all()


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_value_error(data):
    _load_or_value_error(b"ply\n" + data)


@FAST
@given(ply_file(), st.data())
def test_corrupted_files_only_raise_value_error(data, draw):
    raw = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 4))):  # overwrite, cut or insert bytes
        action = draw.draw(st.sampled_from(["set", "cut", "insert"]))
        at = draw.draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "set" and raw:
            raw[at] = draw.draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:]
        else:
            raw[at:at] = draw.draw(st.sampled_from([b"\n", b" ", b"-", b"9", b"\xff\xff\xff\x7f"]))
    _load_or_value_error(bytes(raw))


def test_reference_reader_agrees_on_a_fixed_file():
    """The reference reader is itself checked on a file whose content is known."""
    data = (b"ply\nformat binary_big_endian 1.0\nelement vertex 1\nproperty float x\n"
            b"property float y\nproperty float z\nend_header\n") + np.array([1, 2, 3], ">f4").tobytes()  # fmt: skip
    assert _reference(data)["vertex"] == (["x", "y", "z"], [[1.0, 2.0, 3.0]])
