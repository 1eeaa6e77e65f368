"""diffmesh.meshcore."""
