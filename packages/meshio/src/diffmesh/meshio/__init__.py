"""diffmesh.meshio: OBJ/MTL loading and saving, and the icosphere.

PyTorch3D-compatible ``load_obj``, ``load_objs_as_meshes`` and ``save_obj`` (vectorized parsing,
atomic writes) and ``ico_sphere``.
"""

from .ico_sphere import ico_sphere
from .mtl import MaterialWarning, load_mtl, load_texture_image
from .obj_load import ObjAux, ObjFaces, load_obj, load_objs_as_meshes
from .obj_save import save_obj

__all__ = [
    "MaterialWarning",
    "ObjAux",
    "ObjFaces",
    "ico_sphere",
    "load_mtl",
    "load_obj",
    "load_objs_as_meshes",
    "load_texture_image",
    "save_obj",
]
