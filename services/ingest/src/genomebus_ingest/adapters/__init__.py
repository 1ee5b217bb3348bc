"""Ingest's ports implemented: PostgreSQL, S3, Kafka, HTTP, and in memory for fast tests."""
