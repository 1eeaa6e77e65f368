"""diffmesh.softrender."""
