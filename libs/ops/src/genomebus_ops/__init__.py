"""genomebus operator tools."""
