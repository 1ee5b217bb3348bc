"""Static checks of the Compose stack and the shared service Dockerfile (no Docker engine
needed)."""
