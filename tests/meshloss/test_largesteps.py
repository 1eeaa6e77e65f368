"""largesteps_matrix, to_differential, from_differential against dense float64 references."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from diffmesh.meshcore import Meshes
from diffmesh.meshio import ico_sphere
from diffmesh.meshloss import (
    LargeStepsMatrix,
    from_differential,
    largesteps_matrix,
    to_differential,
)
from diffmesh.meshloss import largesteps as largesteps_module


def reference_matrix(verts_list, faces_list, diag_weight, lap_weight):
    """Dense ``diag_weight I + lap_weight (D - A)`` of the packed batch, by loops over faces."""
    sizes = [v.shape[0] for v in verts_list]
    total = sum(sizes)
    matrix = torch.eye(total, dtype=torch.float64) * diag_weight
    offset = 0
    for size, faces in zip(sizes, faces_list, strict=True):
        edges = set()
        for face in faces.tolist():
            for k in range(3):
                a, b = face[k], face[(k + 1) % 3]
                if a != b:
                    edges.add((min(a, b) + offset, max(a, b) + offset))
        for a, b in edges:
            matrix[a, b] -= lap_weight
            matrix[b, a] -= lap_weight
            matrix[a, a] += lap_weight
            matrix[b, b] += lap_weight
        offset += size
    return matrix


def _sphere(level: int, dtype=torch.float64) -> Meshes:
    s = ico_sphere(level)
    return Meshes([s.verts_packed().to(dtype)], [s.faces_packed()])


@pytest.mark.parametrize(
    ("lambda_", "alpha", "weights"),
    [(7.0, None, (1.0, 7.0)), (0.0, None, (1.0, 0.0)), (10.0, 0.3, (0.7, 0.3))],
)
def test_matrix_matches_reference(mesh_lists, lambda_, alpha, weights):
    matrix = largesteps_matrix(Meshes(*mesh_lists), lambda_, alpha=alpha)
    expected = reference_matrix(*mesh_lists, *weights)
    assert matrix.shape == expected.shape
    torch.testing.assert_close(matrix.to_dense(), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(matrix.diagonal, expected.diagonal(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["cholesky", "banded", "cg"])
def test_products_and_solves_match_dense(mesh_lists, method):
    matrix = largesteps_matrix(Meshes(*mesh_lists), 5.0, method=method)
    dense = reference_matrix(*mesh_lists, 1.0, 5.0)
    g = torch.Generator().manual_seed(1)
    v = torch.randn(dense.shape[0], 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(to_differential(matrix, v), dense @ v)
    u = torch.randn(dense.shape[0], 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(
        from_differential(matrix, u), torch.linalg.solve(dense, u), rtol=1e-10, atol=1e-10
    )
    vector = from_differential(matrix, u[:, 0])  # (V,) in, (V,) out
    torch.testing.assert_close(vector, torch.linalg.solve(dense, u[:, 0]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("method", ["cholesky", "banded", "cg"])
def test_gradcheck(mesh_lists, method):
    verts, faces = mesh_lists  # the tetrahedron and the non-manifold mesh (11 vertices)
    matrix = largesteps_matrix(Meshes(verts[2:], faces[2:]), 3.0, method=method)
    g = torch.Generator().manual_seed(2)
    u = torch.randn(matrix.size, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: from_differential(matrix, x), (u,))
    if method != "cg":  # the backward is the same autograd Function for every method
        assert torch.autograd.gradgradcheck(lambda x: from_differential(matrix, x), (u,))
    assert torch.autograd.gradcheck(lambda x: to_differential(matrix, x), (u,))


def test_round_trip_and_warm_start():
    sphere = _sphere(2)
    matrix = largesteps_matrix(sphere, 10.0, method="cg")
    verts = sphere.verts_packed()
    u = to_differential(matrix, verts)
    torch.testing.assert_close(from_differential(matrix, u), verts, rtol=1e-12, atol=1e-12)
    cold = matrix.iterations
    assert cold > 0
    from_differential(matrix, u)  # the same right-hand side: solved by the warm start
    assert matrix.iterations <= 1  # (the recurrence's residual and the true one differ by rounding)
    moved = to_differential(matrix, verts + 1e-3 * verts[:, [1, 2, 0]])  # a small smooth step
    fresh = largesteps_matrix(sphere, 10.0, method="cg")
    from_differential(fresh, moved)
    from_differential(matrix, moved)
    assert 0 < matrix.iterations < fresh.iterations  # warm start from the last solution


def test_solvers_agree_in_float32():
    """The float32 solvers agree with the float64 solution to ``C kappa eps`` (kappa from
    the float64 eigenvalues: the forward-error bound of a backward-stable solve, and of CG
    stopped at a residual of 16 eps)."""
    sphere = _sphere(3, torch.float32)
    lambda_ = 10.0
    dense = largesteps_matrix(sphere, lambda_, dtype=torch.float64).to_dense()
    eigenvalues = torch.linalg.eigvalsh(dense)
    kappa = float(eigenvalues.max() / eigenvalues.min())
    g = torch.Generator().manual_seed(4)
    verts = sphere.verts_packed().double() + 0.1 * torch.randn(
        sphere.verts_packed().shape, generator=g, dtype=torch.float64
    )
    u = dense @ verts
    tolerance = 32 * kappa * torch.finfo(torch.float32).eps * float(verts.abs().max())
    solutions = {}
    for method in ("cholesky", "banded", "cg"):
        matrix = largesteps_matrix(sphere, lambda_, method=method)
        solutions[method] = from_differential(matrix, u.float()).double()
        assert float((solutions[method] - verts).abs().max()) <= tolerance
    for method in ("banded", "cg"):
        assert float((solutions[method] - solutions["cholesky"]).abs().max()) <= 2 * tolerance


def test_auto_method_by_size(monkeypatch):
    assert largesteps_matrix(ico_sphere(2)).method == "cholesky"
    assert largesteps_matrix(ico_sphere(4)).method == "banded"
    assert largesteps_matrix(ico_sphere(4), dtype=torch.float16).method == "cg"
    monkeypatch.setattr(largesteps_module, "BANDED_MAX_BYTES", 2**20)  # factor: 1.3 MB
    assert largesteps_matrix(ico_sphere(4)).method == "cg"


@pytest.mark.parametrize("method", ["cholesky", "banded", "cg"])
def test_zero_lambda_is_the_identity(method):
    sphere = _sphere(2)
    matrix = largesteps_matrix(sphere, 0.0, method=method)
    u = torch.randn(matrix.size, 3, dtype=torch.float64, requires_grad=True)
    v = from_differential(matrix, u)
    torch.testing.assert_close(v, u, rtol=0, atol=0)
    v.sum().backward()
    torch.testing.assert_close(u.grad, torch.ones_like(u), rtol=0, atol=0)


def test_empty_and_degenerate_meshes():
    empty = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    for method in ("cholesky", "banded", "cg"):
        matrix = largesteps_matrix(empty, method=method)
        u = torch.zeros(0, 3, requires_grad=True)
        v = from_differential(matrix, u)
        v.sum().backward()
        assert v.shape == (0, 3) and u.grad is not None and u.grad.shape == (0, 3)
    # every vertex at one point (zero-area faces), a face with a repeated index, an isolated vertex
    verts = torch.zeros(5, 3, dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 1, 3]])
    mesh = Meshes([verts], [faces])
    torch.testing.assert_close(
        largesteps_matrix(mesh, 2.0).to_dense(), reference_matrix([verts], [faces], 1.0, 2.0)
    )
    for method in ("cholesky", "banded", "cg"):
        matrix = largesteps_matrix(mesh, 2.0, method=method)
        u = to_differential(matrix, verts).requires_grad_()
        v = from_differential(matrix, u)
        v.square().sum().backward()
        assert torch.isfinite(v).all() and torch.isfinite(u.grad).all()
        assert float(v.detach().abs().max()) == 0.0
    nan = torch.full((5, 3), float("nan"), dtype=torch.float64)
    for method in ("banded", "cg"):  # NaN in, NaN out
        solved = from_differential(largesteps_matrix(mesh, 2.0, method=method), nan)
        assert torch.isnan(solved).all()


def test_bad_input():
    sphere = ico_sphere(1)
    with pytest.raises(TypeError, match="meshes"):
        largesteps_matrix(sphere.verts_packed())
    with pytest.raises(ValueError, match="lambda_"):
        largesteps_matrix(sphere, -1.0)
    with pytest.raises(ValueError, match="alpha"):
        largesteps_matrix(sphere, alpha=1.0)
    with pytest.raises(ValueError, match="method"):
        largesteps_matrix(sphere, method="lu")
    with pytest.raises(ValueError, match="rtol"):
        largesteps_matrix(sphere, rtol=0.0)
    matrix = largesteps_matrix(sphere)
    assert isinstance(matrix, LargeStepsMatrix)
    with pytest.raises(ValueError, match="u must have shape"):
        from_differential(matrix, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="float64"):
        from_differential(matrix, torch.zeros(42, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="verts"):
        to_differential(matrix, [[0.0, 0.0, 0.0]])
    with pytest.raises(TypeError, match="matrix"):
        from_differential(torch.eye(42), torch.zeros(42, 3))
    with pytest.raises(RuntimeError, match="did not reach"):
        from_differential(
            largesteps_matrix(sphere, 10.0, method="cg", max_iter=1), torch.ones(42, 3)
        )


@pytest.mark.parametrize(("method", "limit_mb"), [("auto", 200.0), ("cg", 100.0)])
def test_sparse_paths_memory_at_level_6(method, limit_mb):
    """ico_sphere(6) (40962 vertices: a dense float32 matrix would take 6.7 GB): building the
    matrix, a solve and its backward raise the peak resident memory by less than the limit
    (the banded factor, chosen by "auto", takes 83 MB; CG's vectors a few MB)."""
    script = textwrap.dedent("""
        import torch
        from diffmesh.meshio import ico_sphere
        from diffmesh.meshloss import from_differential, largesteps_matrix, to_differential
        torch.set_num_threads(1)
        sphere = ico_sphere(6)
        verts = sphere.verts_packed()
        def status(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status("VmRSS")
        matrix = largesteps_matrix(sphere, 10.0, method=METHOD)
        u = to_differential(matrix, verts).requires_grad_()
        v = from_differential(matrix, u)
        v.square().sum().backward()
        assert matrix.method == EXPECTED and torch.allclose(v.detach(), verts, atol=1e-4)
        print((status("VmHWM") - before) / 1024)
    """)
    expected = "banded" if method == "auto" else method
    script = script.replace("METHOD", repr(method)).replace("EXPECTED", repr(expected))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS")
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) < limit_mb
