"""Rendering for the app: the tutorial's target views, GIF frames, and image datasets.

``fit render`` writes a dataset (RGBA PNGs + ``cameras.json``) that ``fit images
--images`` reads back with :func:`load_image_dataset`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from diffmesh.fit import threads
from diffmesh.fit.cameras_io import CAMERAS_FILE, CameraSet, read_cameras_json
from diffmesh.fit.imaging import save_png
from diffmesh.meshcore import Meshes, TexturesVertex
from diffmesh.meshio import load_objs_as_meshes
from diffmesh.softrender import (
    BlendParams,
    HardPhongShader,
    MeshRasterizer,
    MeshRenderer,
    PointLights,
    RasterizationSettings,
    SoftPhongShader,
    SoftSilhouetteShader,
)
from PIL import Image

__all__ = [
    "TUTORIAL_LIGHT",
    "ImageDataset",
    "load_image_dataset",
    "load_normalized_mesh",
    "render_shaded",
    "render_soft",
    "render_targets",
    "save_rgba_views",
    "soft_settings",
    "tutorial_cameras",
]

#: The tutorial's point light, in front of the cow (which faces -z).
TUTORIAL_LIGHT: tuple[float, float, float] = (0.0, 0.0, -3.0)


def tutorial_cameras(views: int, dist: float = 2.7) -> CameraSet:
    """The tutorial's view spread: elevation 0..360 and azimuth -180..180 degrees, linearly."""
    elev = torch.linspace(0.0, 360.0, views)
    azim = torch.linspace(-180.0, 180.0, views)
    return CameraSet.look_at(dist, elev, azim)


def load_normalized_mesh(path: Path, device: torch.device, *, normalize: bool = True):
    """Load an OBJ as one mesh with textures; centre and scale it to max |coordinate| = 1.

    A mesh without a texture gets a uniform light grey vertex colour (the shaders need one).

    Args:
        path: OBJ file.
        device: where the mesh goes.
        normalize: False keeps the file's frame (centre 0, scale 1 returned).

    Returns:
        ``(mesh, center (3,) float, scale float)``: the file's vertices are
        ``mesh_verts * scale + center``.

    Raises:
        ValueError: the mesh has no faces, all its faces have zero area, or all its vertices
            coincide.
    """
    mesh = load_objs_as_meshes([str(path)], device=device)
    if int(mesh.num_faces_per_mesh()[0]) == 0:
        raise ValueError(f"{path}: the mesh has no faces")
    verts = mesh.verts_packed()
    if mesh.textures is None:
        grey = torch.full((1, verts.shape[0], 3), 0.8, device=device)
        mesh = Meshes(verts=[verts], faces=[mesh.faces_packed()], textures=TexturesVertex(verts_features=grey))
    if not bool(mesh.faces_areas_packed().sum() > 0):
        raise ValueError(f"{path}: every face has zero area; nothing to render or fit")
    center = verts.mean(0)
    scale = float((verts - center).abs().max())
    if not normalize:
        return mesh, torch.zeros(3, device=device), 1.0
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"{path}: all vertices coincide; nothing to fit")
    mesh = mesh.offset_verts(-center).scale_verts(1.0 / scale)
    return mesh, center, scale


def soft_settings(image_size: int | tuple[int, int], sigma: float, faces_per_pixel: int) -> RasterizationSettings:
    """The tutorial's soft rasterization: blur radius log(1/1e-4 - 1) * sigma."""
    return RasterizationSettings(
        image_size=image_size,
        blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma,
        faces_per_pixel=faces_per_pixel,
        perspective_correct=False,
    )


def render_soft(
    meshes: Meshes,
    cameras,
    lights: PointLights,
    settings: RasterizationSettings,
    *,
    sigma: float = 1e-4,
) -> torch.Tensor:
    """Differentiable soft Phong render (RGB and soft silhouette in alpha).

    Args:
        meshes: B meshes with vertex textures (one per camera).
        cameras: a batch of B cameras.
        lights: the lights.
        settings: rasterization settings (see :func:`soft_settings`).
        sigma: blend sharpness (BlendParams sigma and gamma).

    Returns:
        ``(B, H, W, 4)`` float images, RGB in [..., :3] and silhouette in [..., 3].
    """
    blend = BlendParams(sigma=sigma, gamma=1e-4, background_color=(1.0, 1.0, 1.0))
    renderer = MeshRenderer(
        rasterizer=MeshRasterizer(cameras=cameras, raster_settings=settings),
        shader=SoftPhongShader(device=meshes.device, cameras=cameras, lights=lights, blend_params=blend),
    )
    return renderer(meshes, cameras=cameras, lights=lights)


@torch.no_grad()
def render_targets(
    mesh: Meshes,
    cameras: CameraSet,
    image_size: int,
    *,
    light_location: Sequence[float] = TUTORIAL_LIGHT,
    sigma: float = 1e-4,
    faces_per_pixel: int = 50,
    chunk: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render the tutorial's target images of one mesh from every camera.

    RGB: SoftPhongShader with hard rasterization (blur 0, one face per pixel), white
    background. Silhouette: SoftSilhouetteShader with the soft settings. Views are rendered
    ``chunk`` at a time to bound memory.

    Args:
        mesh: one mesh with textures, in the cameras' frame.
        cameras: V cameras.
        image_size: side of the square images in pixels.
        light_location: the point light.
        sigma: silhouette blend sharpness.
        faces_per_pixel: faces kept per pixel for the silhouette.
        chunk: views per render call.

    Returns:
        ``(rgb (V, H, W, 3), silhouette (V, H, W))`` float tensors on the mesh's device.
    """
    device = mesh.device
    lights = PointLights(device=device, location=[list(light_location)])
    hard = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
    soft = RasterizationSettings(
        image_size=image_size, blur_radius=math.log(1.0 / 1e-4 - 1.0) * sigma, faces_per_pixel=faces_per_pixel
    )
    rgbs, sils = [], []
    for start in range(0, len(cameras), chunk):
        threads.poll()
        idx = torch.arange(start, min(start + chunk, len(cameras)))
        cams = cameras.cameras(idx, device)
        batch = mesh.extend(int(idx.numel()))
        rgb_renderer = MeshRenderer(
            rasterizer=MeshRasterizer(cameras=cams, raster_settings=hard),
            shader=SoftPhongShader(device=device, cameras=cams, lights=lights),
        )
        sil_renderer = MeshRenderer(
            rasterizer=MeshRasterizer(cameras=cams, raster_settings=soft),
            shader=SoftSilhouetteShader(blend_params=BlendParams(sigma=sigma, gamma=1e-4)),
        )
        rgbs.append(rgb_renderer(batch, cameras=cams, lights=lights)[..., :3])
        sils.append(sil_renderer(batch, cameras=cams, lights=lights)[..., 3])
    return torch.cat(rgbs), torch.cat(sils)


@torch.no_grad()
def render_shaded(
    verts: Sequence[torch.Tensor],
    faces: Sequence[torch.Tensor],
    colors: Sequence[torch.Tensor] | Sequence[tuple[float, float, float]],
    cameras,
    *,
    image_size: int,
    light_location: Sequence[float],
) -> torch.Tensor:
    """Hard-shaded preview renders (for GIF frames), outside autograd.

    A fresh Meshes is built from detached vertices so that no cached view of a mesh being
    optimised is created under no_grad.

    Args:
        verts: B tensors ``(V_i, 3)``.
        faces: B tensors ``(F_i, 3)`` long.
        colors: B per-vertex colour tensors ``(V_i, 3)`` or B RGB triples.
        cameras: a batch of B cameras (or one, broadcast).
        image_size: side in pixels.
        light_location: the point light, world units.

    Returns:
        ``(B, H, W, 3)`` float RGB in [0, 1].
    """
    device = verts[0].device
    feats = []
    for v, c in zip(verts, colors, strict=True):
        if isinstance(c, torch.Tensor):
            feats.append(c.detach().clamp(0, 1).to(device))
        else:
            feats.append(torch.tensor(c, dtype=torch.float32, device=device).expand(v.shape[0], 3))
    meshes = Meshes(
        verts=[v.detach() for v in verts], faces=list(faces), textures=TexturesVertex(verts_features=feats)
    )
    lights = PointLights(device=device, location=[list(light_location)])
    settings = RasterizationSettings(image_size=image_size, blur_radius=0.0, faces_per_pixel=1)
    renderer = MeshRenderer(
        rasterizer=MeshRasterizer(cameras=cameras, raster_settings=settings),
        shader=HardPhongShader(device=device, cameras=cameras, lights=lights),
    )
    return renderer(meshes, cameras=cameras, lights=lights)[..., :3].clamp(0, 1)


def save_rgba_views(folder: Path, rgb: torch.Tensor, alpha: torch.Tensor, names: Sequence[str]) -> list[Path]:
    """Write RGBA PNGs (RGB as rendered, alpha = silhouette), atomically.

    Args:
        folder: destination folder.
        rgb: ``(V, H, W, 3)`` float in [0, 1].
        alpha: ``(V, H, W)`` float in [0, 1].
        names: V file names.

    Returns:
        The written paths.
    """
    rgba = torch.cat([rgb, alpha[..., None]], dim=-1).clamp(0, 1)
    pixels = (rgba * 255.0 + 0.5).to(torch.uint8).cpu().numpy()
    paths = []
    for i, name in enumerate(names):
        paths.append(save_png(folder / name, Image.fromarray(np.ascontiguousarray(pixels[i]), mode="RGBA")))
    return paths


@dataclass(frozen=True)
class ImageDataset:
    """Target images with their cameras.

    Attributes:
        cameras: V cameras.
        rgb: ``(V, H, W, 3)`` float in [0, 1]; fully transparent pixels are white.
        silhouette: ``(V, H, W)`` float in [0, 1] (the alpha channel).
        names: V names (file names, or ``view_000``... for rendered targets).
        light_location: the point light to shade with.
        normalization: ``(center (3,), scale)`` when the images show a normalized mesh
            (``fit render`` records it): the source frame is ``x * scale + center``.
    """

    cameras: CameraSet
    rgb: torch.Tensor
    silhouette: torch.Tensor
    names: list[str]
    light_location: tuple[float, float, float] = TUTORIAL_LIGHT
    normalization: tuple[torch.Tensor, float] | None = None


def load_image_dataset(folder: str | Path, device: torch.device | str = "cpu") -> ImageDataset:
    """Read a folder of RGBA PNGs and its ``cameras.json``.

    The folder must hold ``cameras.json`` and exactly the PNGs it names. RGB is taken as
    is where alpha > 0; fully transparent pixels count as white (the renderer's
    background). All images must have the same size.

    Args:
        folder: the folder.
        device: where the tensors go.

    Returns:
        The dataset.

    Raises:
        FileNotFoundError: the folder or cameras.json is missing.
        ValueError: names that do not match, images without alpha, or of different sizes.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"--images: no such folder: {str(folder)!r}")
    cameras_path = folder / CAMERAS_FILE
    if not cameras_path.is_file():
        raise FileNotFoundError(
            f"--images: {str(folder)!r} has no {CAMERAS_FILE} (make one with `fit render MESH --out {folder}`)"
        )
    cameras, names, extras = read_cameras_json(cameras_path)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ValueError(
            f"--images: {CAMERAS_FILE} names {len(missing)} image(s) missing from {str(folder)!r}: {', '.join(missing[:3])}"
        )
    listed = set(names)
    extra_pngs = sorted(p.name for p in folder.glob("*.png") if p.name not in listed)
    if extra_pngs:
        raise ValueError(
            f"--images: {str(folder)!r} holds PNGs that {CAMERAS_FILE} does not list: {', '.join(extra_pngs[:3])}"
        )
    arrays = []
    for name in names:
        try:
            with Image.open(folder / name) as im:
                if "A" not in im.getbands() and "transparency" not in im.info:
                    raise ValueError(f"--images: {name} has no alpha channel (the alpha channel is the silhouette)")
                arrays.append(np.asarray(im.convert("RGBA")))
        except OSError as exc:
            raise ValueError(f"--images: cannot read {name}: {exc}") from None
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"--images: all images must have the same size, got {sorted(sizes)}")
    size = arrays[0].shape[:2]
    if cameras.image_size is not None and tuple(cameras.image_size) != tuple(size):
        raise ValueError(f"--images: {CAMERAS_FILE} says image_size {list(cameras.image_size)} but the images are {list(size)}")
    if cameras.image_size is None:
        cameras = replace(cameras, image_size=(int(size[0]), int(size[1])))
    pixels = torch.from_numpy(np.stack(arrays)).to(device=device, dtype=torch.float32) / 255.0
    alpha = pixels[..., 3]
    rgb = torch.where((alpha > 0)[..., None], pixels[..., :3], torch.ones_like(pixels[..., :3]))
    light = extras.get("light_location", TUTORIAL_LIGHT)
    try:
        light_t = tuple(float(x) for x in light)
        if len(light_t) != 3:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{cameras_path}: light_location: expected [x, y, z], got {light!r}") from None
    normalization = None
    norm = extras.get("normalization")
    if norm is not None:
        try:
            center = torch.tensor([float(x) for x in norm["center"]], device=device)
            scale = float(norm["scale"])
            if center.shape != (3,) or not scale > 0:
                raise ValueError
        except (TypeError, ValueError, KeyError):
            raise ValueError(f"{cameras_path}: normalization: expected {{'center': [x, y, z], 'scale': s > 0}}") from None
        normalization = (center, scale)
    return ImageDataset(cameras=cameras, rgb=rgb, silhouette=alpha, names=list(names),
                        light_location=light_t, normalization=normalization)  # type: ignore[arg-type]
