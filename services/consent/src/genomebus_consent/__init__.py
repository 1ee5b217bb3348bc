"""genomebus consent service."""
