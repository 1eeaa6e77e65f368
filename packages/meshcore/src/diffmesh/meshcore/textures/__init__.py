"""Textures: per-vertex features and UV-mapped images."""

from .base import TexturesBase
from .uv import TexturesUV
from .vertex import TexturesVertex

__all__ = ["TexturesBase", "TexturesUV", "TexturesVertex"]
