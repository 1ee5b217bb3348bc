"""Calling's decisions, free of Kafka, S3 and SQL: how the genome is cut into regions."""
