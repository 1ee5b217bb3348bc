"""genomebus dev stack: a real local Kafka, MinIO and PostgreSQL plus the bio tools, no Docker.

Use the ``genomebus stack ...`` CLI to run it; use :func:`endpoints` from code (test fixtures,
scripts) to find where the running stack listens.
"""

from .envfile import ENV_KEYS, StackNotUpError, endpoints

__all__ = ["ENV_KEYS", "StackNotUpError", "endpoints"]
