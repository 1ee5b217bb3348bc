"""Shared contracts and adapters for genomebus services."""
