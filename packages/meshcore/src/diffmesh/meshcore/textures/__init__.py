"""Textures: per-vertex features, UV-mapped images and per-face atlases."""

from .atlas import TexturesAtlas
from .base import TexturesBase
from .uv import TexturesUV
from .vertex import TexturesVertex

__all__ = ["TexturesAtlas", "TexturesBase", "TexturesUV", "TexturesVertex"]
