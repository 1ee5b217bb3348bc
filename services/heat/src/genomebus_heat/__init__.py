"""genomebus heat-reuse controller."""
