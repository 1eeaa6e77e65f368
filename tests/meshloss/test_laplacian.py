"""mesh_laplacian_smoothing and cot_laplacian against loop references."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshloss import cot_laplacian, mesh_laplacian_smoothing
from diffmesh.meshloss.laplacian import _uniform_matrices


def _corner_cot(verts, face, k):
    """cot of the angle at corner k, from the two edge vectors leaving it."""
    p = verts[face[k]]
    e1, e2 = verts[face[(k + 1) % 3]] - p, verts[face[(k + 2) % 3]] - p
    return float(e1 @ e2) / float(torch.linalg.cross(e1, e2, dim=0).norm())


def reference_laplacian_term(verts, faces, method):
    """(V, 3) per-vertex Laplacian vectors of one mesh, by loops."""
    num_verts = verts.shape[0]
    term = torch.zeros(num_verts, 3, dtype=torch.float64)
    if method == "uniform":
        neighbours = [set() for _ in range(num_verts)]
        for face in faces.tolist():
            for k in range(3):
                a, b = face[k], face[(k + 1) % 3]
                neighbours[a].add(b)
                neighbours[b].add(a)
        for i in range(num_verts):
            if neighbours[i]:
                term[i] = sum(verts[j] for j in neighbours[i]) / len(neighbours[i])
            term[i] = term[i] - verts[i]
        return term
    weight: dict[tuple[int, int], float] = {}
    area = [0.0] * num_verts
    for face in faces.tolist():
        for k in range(3):
            a, b = face[(k + 1) % 3], face[(k + 2) % 3]
            c = _corner_cot(verts, face, k)
            weight[(a, b)] = weight.get((a, b), 0.0) + c
            weight[(b, a)] = weight.get((b, a), 0.0) + c
        face_area = 0.5 * float(torch.linalg.cross(verts[face[1]] - verts[face[0]],
                                                   verts[face[2]] - verts[face[0]], dim=0).norm())
        for v in face:
            area[v] += face_area
    for i in range(num_verts):
        row = {j: w for (r, j), w in weight.items() if r == i}
        lv = sum((w * verts[j] for j, w in row.items()), torch.zeros(3, dtype=torch.float64))
        row_sum = sum(row.values())
        if method == "cot":
            term[i] = (lv / row_sum if row_sum > 0 else lv * row_sum) - verts[i]
        else:
            scale = 0.25 / area[i] if area[i] > 0 else 0.0
            term[i] = (lv - row_sum * verts[i]) * scale
    return term


def reference_smoothing(verts_list, faces_list, method):
    total = 0.0
    for verts, faces in zip(verts_list, faces_list, strict=True):
        if verts.shape[0] == 0:
            continue
        term = reference_laplacian_term(verts, faces, method)
        total += float(term.norm(dim=1).sum()) / verts.shape[0]
    return total / len(verts_list)


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_matches_reference(mesh_lists, method):
    loss = mesh_laplacian_smoothing(Meshes(*mesh_lists), method=method)
    assert loss.shape == ()
    assert float(loss) == pytest.approx(reference_smoothing(*mesh_lists, method), rel=1e-5)


def test_hand_computed_uniform():
    """A fan of four triangles around a centre lifted by h: the centre's term has norm h."""
    h = 0.3
    verts = torch.tensor([[0.0, 0, h], [1.0, 0, 0], [0, 1, 0], [-1.0, 0, 0], [0, -1, 0]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    mesh = Meshes([verts], [faces])
    rim = float((verts[[0, 2, 4]].mean(0) - verts[1]).norm())  # each rim vertex: 3 neighbours
    expected = (h + 4 * rim) / 5
    assert float(mesh_laplacian_smoothing(mesh)) == pytest.approx(expected)


def test_flat_interior_has_zero_cot_term():
    """On a flat regular fan the centre's cot Laplacian vanishes."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1, 0], [-1.0, 0, 0], [0, -1, 0]],
                         dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    term = reference_laplacian_term(verts, faces, "cotcurv")
    assert float(term[0].norm()) == pytest.approx(0.0, abs=1e-12)
    loss = mesh_laplacian_smoothing(Meshes([verts], [faces]), method="cotcurv")
    assert float(loss) == pytest.approx(reference_smoothing([verts], [faces], "cotcurv"), rel=1e-6)


def test_cot_laplacian_matrix(mesh_lists):
    verts, faces = mesh_lists[0][0], mesh_lists[1][0]
    lap, inv_areas = cot_laplacian(verts, faces)
    dense = lap.to_dense()
    torch.testing.assert_close(dense, dense.t())
    face_list = faces.tolist()
    for face in face_list[:4]:
        for k in range(3):
            a, b = face[(k + 1) % 3], face[(k + 2) % 3]
            # each interior edge has two opposite angles: check the sum
            opp = [f for f in face_list if a in f and b in f]
            expected = sum(_corner_cot(verts, f, f.index(next(v for v in f if v not in (a, b))))
                           for f in opp)
            assert float(dense[a, b]) == pytest.approx(expected, rel=1e-6)
    assert inv_areas.shape == (verts.shape[0], 1) and (inv_areas > 0).all()


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_gradcheck(mesh_lists, method):
    verts_list, faces_list = mesh_lists
    sizes = [v.shape[0] for v in verts_list]
    packed = torch.cat(verts_list).requires_grad_(True)

    def fn(v):
        return mesh_laplacian_smoothing(Meshes(list(torch.split(v, sizes)), faces_list), method)

    # the cot weights are constants (computed without autograd), as in PyTorch3D: check the
    # gradient against finite differences of the loss with those weights frozen
    if method == "uniform":
        assert torch.autograd.gradcheck(fn, (packed,))
    else:
        (grad,) = torch.autograd.grad(fn(packed), packed)
        assert torch.isfinite(grad).all()
        frozen = _frozen_cot(packed.detach().clone(), sizes, faces_list, method)
        assert torch.autograd.gradcheck(frozen, (packed,))
        torch.testing.assert_close(torch.autograd.grad(frozen(packed), packed)[0], grad)


def _frozen_cot(v_frozen, sizes, faces_list, method):
    """The loss as a function of the vertices, with the Laplacian weights of ``v_frozen``."""
    operators = []
    offset = 0
    for size, faces in zip(sizes, faces_list, strict=True):
        if size > 0:
            lap, inv_areas = cot_laplacian(v_frozen[offset:offset + size], faces)
            lap = lap.to_dense()
            row_sum = lap.sum(1, keepdim=True)
            operators.append((offset, size, lap, row_sum, inv_areas))
        offset += size

    def loss(v):
        total = 0.0
        for start, size, lap, row_sum, inv_areas in operators:
            vv = v[start:start + size]
            if method == "cot":
                term = lap @ vv * torch.where(row_sum > 0, 1.0 / row_sum, row_sum) - vv
            else:
                term = (lap @ vv - row_sum * vv) * 0.25 * inv_areas
            total = total + term.norm(dim=1).sum() / size
        return total / len(sizes)
    return loss


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_degenerate_faces_are_finite(method):
    """Zero-area faces (duplicate and collinear vertices), a flat vertex with a zero term."""
    verts = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0, 1, 0], [-1.0, 0, 0], [0, -1, 0],
                          [1.0, 0, 0], [2.0, 0, 0]], requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1], [1, 5, 6], [1, 6, 5]])
    loss = mesh_laplacian_smoothing(Meshes([verts], [faces]), method=method)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(verts.grad).all()


def test_uniform_csr_is_valid_with_repeated_face_indices():
    """Faces with a repeated vertex index give self-loop edges: the cached CSR matrices must
    still have sorted, distinct columns per row (duplicates summed), as sparse CSR kernels
    assume, and the loss must match the reference."""
    verts = torch.rand(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    faces = torch.tensor([[0, 0, 1], [1, 2, 3], [2, 2, 2], [3, 4, 4]])
    mesh = Meshes([verts], [faces])
    for matrix in _uniform_matrices(mesh, torch.float64):
        crow, cols = matrix.crow_indices().long(), matrix.col_indices().long()
        rows = torch.repeat_interleave(torch.arange(5), crow.diff())
        key = rows * 5 + cols
        assert (key[1:] > key[:-1]).all()
    # PyTorch3D's uniform Laplacian from the edges: a self-loop edge (i, i) enters row i twice.
    edges = mesh.edges_packed()
    adjacency = torch.zeros(5, 5, dtype=torch.float64)
    ones = torch.ones(edges.shape[0], dtype=torch.float64)
    adjacency.index_put_((edges[:, 0], edges[:, 1]), ones, accumulate=True)
    adjacency.index_put_((edges[:, 1], edges[:, 0]), ones, accumulate=True)
    degree = adjacency.sum(1, keepdim=True)
    term = torch.where(degree > 0, adjacency @ verts / degree.clamp(min=1), 0.0) - verts
    assert float(mesh_laplacian_smoothing(mesh)) == pytest.approx(
        float(term.norm(dim=1).mean()), rel=1e-12)


def test_uniform_sparse_and_scatter_paths_agree(mesh_lists):
    """float32/64 use the cached CSR product, other dtypes the index_add path: same loss and
    gradients (compared in bfloat16 against the float32 path, with its tolerance)."""
    verts, faces = mesh_lists
    fine = [v.float().requires_grad_(True) for v in verts]
    coarse = [v.bfloat16().requires_grad_(True) for v in verts]
    loss_fine = mesh_laplacian_smoothing(Meshes(fine, faces), "uniform")
    loss_coarse = mesh_laplacian_smoothing(Meshes(coarse, faces), "uniform")
    loss_fine.backward()
    loss_coarse.backward()
    torch.testing.assert_close(loss_coarse.float(), loss_fine, rtol=2e-2, atol=1e-3)
    for a, b in zip(coarse, fine, strict=True):
        torch.testing.assert_close(a.grad.float(), b.grad, rtol=5e-2, atol=5e-2)


def test_single_triangle_and_empty():
    tri = Meshes([torch.rand(3, 3, dtype=torch.float64)], [torch.tensor([[0, 1, 2]])])
    for method in ("uniform", "cot", "cotcurv"):
        assert float(mesh_laplacian_smoothing(tri, method)) == pytest.approx(
            reference_smoothing(tri.verts_list(), tri.faces_list(), method), rel=1e-6)
    empty = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    assert float(mesh_laplacian_smoothing(empty)) == 0.0


def _right_triangle() -> torch.Tensor:
    """Legs of length 2 at vertex 0, rotated and moved out of the axis planes (float64)."""
    rotation = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.3, 0.5], [0.3, 0.0, -0.2],
                                                     [-0.5, 0.2, 0.0]], dtype=torch.float64))
    flat = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64)
    return flat @ rotation.t() + torch.tensor([0.1, -0.4, 0.7], dtype=torch.float64)


# Hand values on the right triangle v0 = 0, v1 = (2, 0), v2 = (0, 2) (area 2):
# uniform: |(v_j + v_k) / 2 - v_i| is the median from v_i: sqrt(2), sqrt(5), sqrt(5);
# cot: L01 = L02 = cot 45 = 1, L12 = cot 90 = 0, so v0 -> |(v1 + v2) / 2 - v0| = sqrt(2) and
#   v1 -> |v0 - v1| = 2, v2 -> 2;
# cotcurv: |L v - (sum_j L_ij) v_i| / (4 * 2): v0 -> |(2, 2)| / 8, v1 -> 2 / 8, v2 -> 2 / 8.
_RIGHT_TRIANGLE_LOSS = {
    "uniform": (2**0.5 + 2 * 5**0.5) / 3,
    "cot": (2**0.5 + 4) / 3,
    "cotcurv": (8**0.5 / 8 + 0.5) / 3,
}


@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_single_triangle_by_hand(method):
    verts = _right_triangle().requires_grad_(True)
    faces = torch.tensor([[0, 1, 2]])

    def fn(v):
        return mesh_laplacian_smoothing(Meshes([v], [faces]), method)

    loss = fn(verts)
    assert float(loss.detach()) == pytest.approx(_RIGHT_TRIANGLE_LOSS[method], rel=1e-10)
    (grad,) = torch.autograd.grad(loss, verts)
    assert torch.isfinite(grad).all() and (grad != 0).any()
    if method == "uniform":
        assert torch.autograd.gradcheck(fn, (verts,))
    else:  # with the cot weights frozen, as in PyTorch3D (see test_gradcheck)
        frozen = _frozen_cot(verts.detach().clone(), [3], [faces], method)
        assert torch.autograd.gradcheck(frozen, (verts,))
        torch.testing.assert_close(torch.autograd.grad(frozen(verts), verts)[0], grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["uniform", "cot", "cotcurv"])
def test_single_zero_area_triangle(method, dtype):
    """Zero-area single triangles give finite values and gradients; the values by hand:

    - collinear 0, 1, 3 on x: uniform terms |2|, |0.5|, |-2.5| -> 5 / 3; cot 0 (with the
      area clamped, the cot weights are proportional to b^2 + c^2 - a^2, and their weighted
      mean of the other two points is the vertex itself); cotcurv only finite;
    - three equal points p: uniform 0; cot weights all 0, so the term is -v_i (PyTorch3D's
      row-sum-0 rule) -> |p|; cotcurv 0.
    """
    faces = torch.tensor([[0, 1, 2]])
    point = [0.5, -1.0, 2.0]
    cases = {
        "collinear": ([[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]],
                      {"uniform": 5 / 3, "cot": 0.0, "cotcurv": None}),
        "point": ([point] * 3, {"uniform": 0.0, "cot": sum(x * x for x in point) ** 0.5,
                                "cotcurv": 0.0}),
    }
    for name, (corners, values) in cases.items():
        verts = torch.tensor(corners, dtype=dtype, requires_grad=True)
        loss = mesh_laplacian_smoothing(Meshes([verts], [faces]), method)
        (grad,) = torch.autograd.grad(loss, verts)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), name
        expected = values[method]
        if expected is not None:
            tol = 1e-5 if dtype == torch.float32 else 1e-9
            assert float(loss.detach()) == pytest.approx(expected, rel=tol, abs=tol), name


def test_bad_input_raises():
    mesh = Meshes([torch.rand(3, 3)], [torch.tensor([[0, 1, 2]])])
    with pytest.raises(ValueError, match="method must be"):
        mesh_laplacian_smoothing(mesh, method="cotan")
    with pytest.raises(TypeError, match="meshes must be a Meshes"):
        mesh_laplacian_smoothing(None)
    with pytest.raises(ValueError, match="verts must have shape"):
        cot_laplacian(torch.rand(3, 2), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="faces must index"):
        cot_laplacian(torch.rand(3, 3), torch.tensor([[0, 1, 3]]))
