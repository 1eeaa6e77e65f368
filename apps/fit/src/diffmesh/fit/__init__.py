"""diffmesh.fit."""
