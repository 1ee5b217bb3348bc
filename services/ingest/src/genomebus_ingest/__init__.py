"""genomebus ingest service."""
