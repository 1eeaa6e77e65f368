"""List / packed / padded conversions against naive per-item references."""

from __future__ import annotations

import pytest
import torch
from diffmesh.meshcore import list_to_packed, list_to_padded, packed_to_list, padded_to_list
from diffmesh.meshcore.utils import padded_to_packed


def _items(dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(m, 2, 3, generator=g, dtype=dtype) for m in (3, 0, 5, 1)]


def test_list_to_packed_matches_naive() -> None:
    items = _items()
    packed, num, first, to_list = list_to_packed(items)
    assert torch.equal(packed, torch.cat(items))
    assert num.tolist() == [3, 0, 5, 1]
    assert first.tolist() == [0, 3, 3, 8]
    assert to_list.tolist() == [i for i, t in enumerate(items) for _ in range(len(t))]
    assert num.dtype == first.dtype == to_list.dtype == torch.int64


def test_list_to_padded_matches_naive_with_empty_idiom() -> None:
    items = [torch.rand(2, 3, dtype=torch.float64), torch.tensor([], dtype=torch.float64)]
    items.append(torch.rand(4, 1, dtype=torch.float64))
    out = list_to_padded(items, pad_value=-1.0)
    assert out.shape == (3, 4, 3)
    want = torch.full((3, 4, 3), -1.0, dtype=torch.float64)
    for i, t in enumerate(items):
        for r in range(t.shape[0]):
            for c in range(t.shape[1] if t.dim() == 2 else 0):
                want[i, r, c] = t[r, c]
    assert torch.equal(out, want)
    bigger = list_to_padded(items, pad_size=(5, 6))
    assert bigger.shape == (3, 5, 6) and torch.equal(bigger[0, :2, :3], items[0])
    same = [torch.rand(2, 3), torch.rand(2, 3)]
    assert torch.equal(list_to_padded(same, equisized=True), torch.stack(same))


def test_list_to_padded_is_differentiable() -> None:
    a = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: list_to_padded([x, y]), (a, b))


def test_list_conversion_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="empty list"):
        list_to_padded([])
    with pytest.raises(ValueError, match="empty list"):
        list_to_packed([])
    with pytest.raises(TypeError, match=r"x\[1\]"):
        list_to_packed([torch.rand(2, 3), [1, 2, 3]])
    with pytest.raises(ValueError, match="number of dimensions"):
        list_to_padded([torch.rand(2, 3), torch.rand(2, 3, 1)])
    with pytest.raises(ValueError, match="larger than pad_size"):
        list_to_padded([torch.rand(5, 3)], pad_size=(4, 3))
    with pytest.raises(ValueError, match="pad_size must have 2"):
        list_to_padded([torch.rand(5, 3)], pad_size=(5,))
    with pytest.raises(ValueError, match="split_size sums to 3"):
        packed_to_list(torch.rand(4, 3), [1, 2])


def test_packed_and_padded_round_trips() -> None:
    items = [t[:, 0] for t in _items()]  # (M_i, 3)
    packed, num, _, _ = list_to_packed(items)
    pieces = packed_to_list(packed, num.tolist())
    assert all(torch.equal(p, t) for p, t in zip(pieces, items, strict=True))
    padded = list_to_padded(items)
    back = padded_to_list(padded, num.tolist())
    assert all(torch.equal(p, t) for p, t in zip(back, items, strict=True))
    assert len(padded_to_list(padded)) == 4 and padded_to_list(padded)[1].shape == (5, 3)
    two_d = padded_to_list(torch.rand(2, 4, 5), [[1, 2], [3, 4]])
    assert [tuple(t.shape) for t in two_d] == [(1, 2), (3, 4)]
    assert torch.equal(padded_to_packed(padded, split_size=num.tolist()), packed)


def test_padded_to_packed_pad_value_and_plain() -> None:
    x = torch.tensor([[[1.0, 2.0], [-1.0, -1.0]], [[3.0, -1.0], [4.0, 5.0]]])
    assert torch.equal(padded_to_packed(x), x.reshape(4, 2))
    kept = padded_to_packed(x, pad_value=-1.0)
    assert kept.tolist() == [[1.0, 2.0], [3.0, -1.0], [4.0, 5.0]]
    with pytest.raises(ValueError, match="at most one"):
        padded_to_packed(x, split_size=[1, 2], pad_value=-1.0)
    with pytest.raises(ValueError, match=r"split_size values must lie in \[0, 2\]"):
        padded_to_packed(x, split_size=[1, 3])
    with pytest.raises(ValueError, match="2 ints"):
        padded_to_packed(x, split_size=[1])
    with pytest.raises(ValueError, match=r"\(N, M, K\)"):
        padded_to_packed(torch.rand(2, 3))


def test_padded_to_packed_gradcheck() -> None:
    x = torch.rand(3, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: padded_to_packed(t, split_size=[4, 0, 2]), (x,))
