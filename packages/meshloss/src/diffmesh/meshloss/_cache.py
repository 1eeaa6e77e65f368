"""Per-topology cache of the constant index and weight tensors the losses need.

meshcore's :class:`~diffmesh.meshcore.Topology` is immutable and shared by every mesh with
the same faces (``offset_verts``, ``update_padded``, ...), so what the losses derive from the
faces alone (face pairs across edges, directed edge lists, per-element weights) is computed
once per Topology and reused for every iteration of a fitting loop. Entries go away with
their Topology.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

from diffmesh.meshcore import Topology

T = TypeVar("T")

_CACHE: weakref.WeakKeyDictionary[Topology, dict[object, object]] = weakref.WeakKeyDictionary()


def cached(topology: Topology, key: object, compute: Callable[[], T]) -> T:
    """``compute()``, computed once per ``(topology, key)``."""
    entry = _CACHE.get(topology)
    if entry is None:
        entry = {}
        _CACHE[topology] = entry
    if key not in entry:
        entry[key] = compute()
    return entry[key]  # type: ignore[return-value]
