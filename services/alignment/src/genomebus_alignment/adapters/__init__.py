"""Alignment's ways out and in: the tools (bwa, minimap2, samtools), the object store sink of
a sample's chunks, and the Kafka subscribers."""
