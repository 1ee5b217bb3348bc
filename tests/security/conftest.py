"""Security tests drive the real services as a hostile caller would; they reuse the ingest
fixtures (a real PostgreSQL, MinIO and Kafka behind an ingest app)."""

from __future__ import annotations

from ..ingest.conftest import ingest_settings, lis, toy_reference  # noqa: F401  (fixtures)
