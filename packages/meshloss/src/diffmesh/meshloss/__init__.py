"""diffmesh.meshloss."""
