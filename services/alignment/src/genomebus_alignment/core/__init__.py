"""Alignment's decisions, free of Kafka, S3 and SQL: how a sample's reads are cut into units."""
