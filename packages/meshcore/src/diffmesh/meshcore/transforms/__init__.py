"""diffmesh.meshcore.transforms: rotations and batched 3D transforms (PyTorch3D's API).

Mirrors ``pytorch3d.transforms``: rotation conversions between matrices, quaternions
(real part first), axis-angle vectors, Euler angles and the 6D representation; the
SO(3) exponential and logarithm; and ``Transform3d`` with its builders ``Translate``,
``Rotate``, ``Scale`` and ``RotateAxisAngle`` (row-vector convention). It lives in
meshcore, the package every other diffmesh package may import, so io, losses, the
renderer and the app can all use rotations without depending on one another.

Every function is differentiable, with exact values and finite gradients at the
angles 0 and pi (Taylor series and the quaternion route replace PyTorch3D's clamps).
"""

from .builders import Rotate, RotateAxisAngle, Scale, Translate
from .quaternions import (
    axis_angle_to_quaternion,
    matrix_to_quaternion,
    quaternion_apply,
    quaternion_invert,
    quaternion_multiply,
    quaternion_raw_multiply,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    random_quaternions,
    standardize_quaternion,
)
from .rotations import (
    axis_angle_to_matrix,
    euler_angles_to_matrix,
    matrix_to_axis_angle,
    matrix_to_euler_angles,
    matrix_to_rotation_6d,
    random_rotation,
    random_rotations,
    rotation_6d_to_matrix,
)
from .so3 import (
    hat,
    hat_inv,
    so3_exp_map,
    so3_log_map,
    so3_relative_angle,
    so3_rotation_angle,
)
from .transform3d import Transform3d

__all__ = [
    "Rotate",
    "RotateAxisAngle",
    "Scale",
    "Transform3d",
    "Translate",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "euler_angles_to_matrix",
    "hat",
    "hat_inv",
    "matrix_to_axis_angle",
    "matrix_to_euler_angles",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "quaternion_apply",
    "quaternion_invert",
    "quaternion_multiply",
    "quaternion_raw_multiply",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "random_quaternions",
    "random_rotation",
    "random_rotations",
    "rotation_6d_to_matrix",
    "so3_exp_map",
    "so3_log_map",
    "so3_relative_angle",
    "so3_rotation_angle",
    "standardize_quaternion",
]
