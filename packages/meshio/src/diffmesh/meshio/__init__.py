"""diffmesh.meshio."""
