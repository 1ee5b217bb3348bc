"""genomebus calling service."""
