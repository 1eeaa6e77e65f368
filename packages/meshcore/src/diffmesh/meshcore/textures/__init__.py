"""Textures: per-vertex features and UV-mapped images."""
