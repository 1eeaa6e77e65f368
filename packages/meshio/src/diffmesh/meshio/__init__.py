"""diffmesh.meshio: mesh and point-cloud files (OBJ/MTL, PLY, OFF, GLB, XYZ/PTS), the icosphere.

PyTorch3D-compatible ``load_obj``, ``load_objs_as_meshes``, ``save_obj``, ``load_ply``,
``save_ply`` and ``IO`` (vectorized parsing, atomic writes, errors naming the file and place),
plus ``load_off``/``save_off``, ``save_glb``/``load_glb``, ``load_pointcloud``/
``save_pointcloud`` on plain tensors, and ``ico_sphere``.
"""

from .glb_io import load_glb, save_glb
from .ico_sphere import ico_sphere
from .mtl import MaterialWarning, load_mtl, load_texture_image
from .obj_load import ObjAux, ObjFaces, load_obj, load_objs_as_meshes
from .obj_save import save_obj
from .off_io import load_off, save_off
from .pluggable import IO
from .ply_load import PlyData, load_ply, load_ply_data
from .ply_save import save_ply
from .pointcloud_io import PointcloudData, load_pointcloud, save_pointcloud

__all__ = [
    "IO",
    "MaterialWarning",
    "ObjAux",
    "ObjFaces",
    "PlyData",
    "PointcloudData",
    "ico_sphere",
    "load_glb",
    "load_mtl",
    "load_obj",
    "load_objs_as_meshes",
    "load_off",
    "load_ply",
    "load_ply_data",
    "load_pointcloud",
    "load_texture_image",
    "save_glb",
    "save_obj",
    "save_off",
    "save_ply",
    "save_pointcloud",
]
