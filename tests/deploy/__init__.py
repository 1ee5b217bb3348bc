"""Static checks of the Compose stack and the service Dockerfiles (no Docker engine needed)."""
