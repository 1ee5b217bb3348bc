"""genomebus alignment service."""
