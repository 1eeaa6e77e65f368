"""cameras.json: write/read round trip, the three ways to give a view, and malformed files."""

from __future__ import annotations

import json

import pytest
import torch
from diffmesh.fit.cameras_io import CameraSet, read_cameras_json, write_cameras_json
from diffmesh.softrender import FoVPerspectiveCameras, PerspectiveCameras, look_at_view_transform

EPS32 = torch.finfo(torch.float32).eps


def _write(path, views, **top):
    path.write_text(json.dumps({"views": views, **top}))
    return path


def test_round_trip(tmp_path):
    cams = CameraSet.look_at(2.7, torch.tensor([0.0, 30.0, 60.0]), torch.tensor([-180.0, 0.0, 90.0]))
    names = ["a.png", "b.png", "c.png"]
    write_cameras_json(tmp_path / "cameras.json", cams, names, image_size=(32, 32), light_location=(0, 0, -3))
    back, back_names, extras = read_cameras_json(tmp_path / "cameras.json")
    assert back_names == names and back.kind == "fov_perspective" and len(back) == 3
    assert torch.allclose(back.R, cams.R) and torch.allclose(back.T, cams.T)
    assert extras["light_location"] == [0.0, 0.0, -3.0] and back.image_size == (32, 32)
    batch = back.cameras([2, 0])
    assert isinstance(batch, FoVPerspectiveCameras)
    assert torch.allclose(batch.R, cams.R[[2, 0]])


def test_dist_elev_azim_equals_look_at(tmp_path):
    path = _write(tmp_path / "c.json", [{"image": "v.png", "dist": 2.0, "elev": 10.0, "azim": 45.0, "fov": 40}])
    cams, _, _ = read_cameras_json(path)
    R, T = look_at_view_transform(dist=2.0, elev=10.0, azim=45.0)
    assert torch.allclose(cams.R[0], R[0].float(), atol=4 * EPS32) and torch.allclose(
        cams.T[0], T[0].float(), atol=4 * EPS32 * 2.0
    )  # rounding to float32 of R (entries <= 1) and of T (|T| = dist = 2)
    assert float(cams.fov[0]) == 40.0


def test_perspective_cameras(tmp_path):
    eye = torch.eye(3).tolist()
    path = _write(tmp_path / "c.json", [
        {"image": "p.png", "R": eye, "T": [0, 0, 3], "focal_length": [2.0, 2.0], "principal_point": [0.1, 0.0]},
        {"image": "q.png", "R": eye, "T": [0, 0, 4], "focal_length": 1.5},
    ])
    cams, names, _ = read_cameras_json(path)
    assert cams.kind == "perspective" and names == ["p.png", "q.png"]
    assert cams.focal_length.tolist() == [[2.0, 2.0], [1.5, 1.5]]
    assert isinstance(cams.cameras([0, 1]), PerspectiveCameras)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"views": []}), "non-empty 'views'"),
        (json.dumps({"views": [{"R": torch.eye(3).tolist(), "T": [0, 0, 1]}]}), r"views\[0\].image"),
        (json.dumps({"views": [{"image": "a.png", "R": torch.eye(3).tolist()}]}), "together"),
        (json.dumps({"views": [{"image": "a.png", "dist": 1.0}]}), "'dist', 'elev' and 'azim'"),
        (json.dumps({"views": [{"image": "a.png", "R": [[2, 0, 0], [0, 1, 0], [0, 0, 1]], "T": [0, 0, 1]}]}), "rotation"),
        (json.dumps({"views": [{"image": "a.png", "R": [[1, 0], [0, 1]], "T": [0, 0, 1]}]}), r"views\[0\].R"),
        (json.dumps({"views": [{"image": "a.png", "dist": 2, "elev": 0, "azim": 0, "fov": 200}]}), "fov"),
        (json.dumps({"views": [{"image": "a.png", "dist": 2, "elev": 0, "azim": 0},
                               {"image": "b.png", "dist": 2, "elev": 0, "azim": 0, "focal_length": 1}]}), "same kind"),
        (json.dumps({"views": [{"image": "a.png", "dist": 2, "elev": 0, "azim": 0},
                               {"image": "a.png", "dist": 2, "elev": 0, "azim": 9}]}), "twice"),
        (json.dumps({"image_size": [0, 3], "views": [{"image": "a.png", "dist": 2, "elev": 0, "azim": 0}]}), "image_size"),
        (json.dumps({"views": [{"image": "../a.png", "dist": 2, "elev": 0, "azim": 0}]}), "file name"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, payload, message):
    path = tmp_path / "cameras.json"
    path.write_text(payload)
    with pytest.raises(ValueError, match=message):
        read_cameras_json(path)


_VIEW = {"image": "a.png", "dist": 2, "elev": 0, "azim": 0}
_EYE = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


@pytest.mark.parametrize(
    ("top", "view", "field"),
    [
        ({}, {"image": "a.png", "R": _EYE, "T": [0, 0, 1], "focal_length": 1.0, "in_ndc": "false"}, r"views\[0\].in_ndc"),
        ({}, {"image": "a.png", "R": _EYE, "T": [0, 0, 1], "focal_length": 1.0, "in_ndc": 0}, r"views\[0\].in_ndc"),
        ({}, {**_VIEW, "fov": True}, r"views\[0\].fov"),
        ({}, {**_VIEW, "fov": "60"}, r"views\[0\].fov"),
        ({}, {**_VIEW, "dist": "2"}, r"views\[0\].dist"),
        ({}, {**_VIEW, "elev": None}, r"views\[0\].elev"),
        ({}, {"image": "a.png", "R": _EYE, "T": [0, 0, True]}, r"views\[0\].T"),
        ({}, {"image": "a.png", "R": _EYE, "T": "001"}, r"views\[0\].T"),
        ({}, {"image": "a.png", "R": _EYE, "T": [0, 0, 1], "focal_length": [1.0, "2"]}, r"views\[0\].focal_length"),
        ({}, {"image": "a.png", "R": _EYE, "T": [0, 0, float("nan")]}, r"views\[0\].T"),
        ({"light_location": "123"}, _VIEW, "light_location"),
        ({"light_location": [0, 0, float("nan")]}, _VIEW, "light_location"),
        ({"light_location": [0, 0]}, _VIEW, "light_location"),
        ({"normalization": {"center": [0, 0, float("nan")], "scale": 1.0}}, _VIEW, "normalization.center"),
        ({"normalization": {"center": [0, 0, 0], "scale": float("inf")}}, _VIEW, "normalization.scale"),
        ({"normalization": {"center": [0, 0, 0], "scale": -1}}, _VIEW, "normalization.scale"),
        ({"normalization": {"center": "000", "scale": 1}}, _VIEW, "normalization.center"),
        ({"normalization": [0, 0, 0]}, _VIEW, "normalization"),
        ({"format": "something-else"}, _VIEW, "format"),
        ({"format": "diffmesh-fit-cameras", "version": 2}, _VIEW, "version"),
        ({"version": "1"}, _VIEW, "version"),
        ({"image_size": [True, True]}, _VIEW, "image_size"),
    ],
)
def test_wrong_types_and_non_finite_values_name_file_view_and_field(tmp_path, top, view, field):
    """`"in_ndc": "false"` read as true, `"fov": true` as 1 degree, `"light_location": "123"` as
    (1, 2, 3), NaN found only once the fit went NaN: every field is checked up front."""
    path = tmp_path / "cameras.json"
    path.write_text(json.dumps({**top, "views": [view]}))
    with pytest.raises(ValueError, match=field) as info:
        read_cameras_json(path)
    assert str(path) in str(info.value)


def test_valid_header_and_extras_are_accepted(tmp_path):
    path = tmp_path / "cameras.json"
    payload = {"format": "diffmesh-fit-cameras", "version": 1, "light_location": [0, 1, 2],
               "normalization": {"center": [1, 2, 3], "scale": 2, "note": "x"}, "views": [_VIEW]}
    path.write_text(json.dumps(payload))
    _, _, extras = read_cameras_json(path)
    assert extras["light_location"] == [0.0, 1.0, 2.0]
    assert extras["normalization"]["center"] == [1.0, 2.0, 3.0] and extras["normalization"]["scale"] == 2.0
