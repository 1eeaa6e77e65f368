"""Property tests: load_obj never fails except with ValueError, and agrees with the reference."""

from __future__ import annotations

import io
import warnings

from diffmesh.meshio import MaterialWarning, load_obj
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OBJ_ALPHABET = "vtnfusemlib/ -+.0123456789e#\\\t\r\n\x0b"


def _load_or_value_error(data: bytes) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MaterialWarning)
            verts, faces, aux = load_obj(io.BytesIO(data), load_textures=False)
    except ValueError as err:
        assert "<stream>" in str(err)  # every error names the file
        return
    # whatever loads is consistent
    n = verts.shape[0]
    assert faces.verts_idx.shape[1] == 3 and faces.materials_idx.shape[0] == faces.verts_idx.shape[0]
    if faces.verts_idx.numel():
        assert int(faces.verts_idx.min()) >= 0 and int(faces.verts_idx.max()) < n
    for idx, values in ((faces.textures_idx, aux.verts_uvs), (faces.normals_idx, aux.normals)):
        limit = 0 if values is None else values.shape[0]
        assert ((idx == -1) | ((idx >= 0) & (idx < limit))).all()


@FAST
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_value_error(data):
    _load_or_value_error(data)


@FAST
@given(st.text(alphabet=OBJ_ALPHABET, max_size=300))
def test_obj_like_text_only_raises_value_error(text):
    _load_or_value_error(text.encode())


@st.composite
def valid_obj(draw) -> str:
    """A well-formed OBJ: random elements, polygons, index forms, whitespace and comments."""
    counts = {"v": 0, "vt": 0, "vn": 0}
    colored = draw(st.booleans())
    number = st.floats(-1e4, 1e4, allow_nan=False, width=32).map(lambda x: repr(float(x)))
    blank = st.sampled_from([" ", "  ", "\t", " \t "])
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["v", "v", "vt", "vn", "f", "f", "usemtl", "#", "", "g"]))
        sep = draw(blank)
        if kind == "v":
            size = 6 if colored else draw(st.sampled_from([3, 4]))  # x y z [w] or x y z r g b
            nums = draw(st.lists(number, min_size=size, max_size=size))
            lines.append("v" + sep + sep.join(nums))
            counts["v"] += 1
        elif kind == "vt":
            lines.append("vt " + " ".join(draw(st.lists(number, min_size=1, max_size=3))))
            counts["vt"] += 1
        elif kind == "vn":
            lines.append("vn " + " ".join(draw(st.lists(number, min_size=3, max_size=3))))
            counts["vn"] += 1
        elif kind == "usemtl":
            lines.append("usemtl " + draw(st.sampled_from(["a", "b", "c d"])))
        elif kind == "#":
            lines.append("# comment f 1 2")
        elif kind == "g":
            lines.append("g part")
        elif kind == "f" and counts["v"]:
            form = draw(st.sampled_from(["v", "v/vt", "v//vn", "v/vt/vn"]))
            if ("vt" in form and not counts["vt"]) or ("vn" in form and not counts["vn"]):
                form = "v"
            corners = []
            for _ in range(draw(st.integers(3, 6))):
                parts = []
                for key in ("v", "vt", "vn"):
                    if key == "vn" and form == "v//vn":
                        parts.append("")
                    if key in form.split("/"):
                        i = draw(st.integers(1, counts[key]))
                        parts.append(str(i) if draw(st.booleans()) else str(i - counts[key] - 1))
                corners.append("/".join(parts) if form != "v//vn" else f"{parts[0]}//{parts[2]}")
            lines.append("f" + sep + sep.join(corners) + draw(st.sampled_from(["", " ", " # c"])))
        elif kind == "f":  # no vertex yet: a continued blank line instead
            lines.append("\\")
    indents = st.sampled_from(["", "", " ", "\t "])
    lines = [draw(indents) + line for line in lines]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from(["", newline]))


@FAST
@given(valid_obj())
def test_valid_files_match_the_reference_reader(assert_matches_reference, text):
    verts, faces, aux = load_obj(io.BytesIO(text.encode()), load_textures=False)
    assert_matches_reference(text, verts, faces, aux)
