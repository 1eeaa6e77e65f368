"""Re-export of ``diffmesh.meshcore.transforms.Transform3d`` (its home since 0.2).

Kept so that ``from diffmesh.softrender.transforms import Transform3d`` and
``diffmesh.softrender.Transform3d`` go on working; the rotation conversions and the
``Translate``/``Rotate``/``Scale`` builders live in ``diffmesh.meshcore.transforms``.
"""

from diffmesh.meshcore.transforms import Transform3d

__all__ = ["Transform3d"]
