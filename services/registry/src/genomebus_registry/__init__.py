"""genomebus registry service."""
