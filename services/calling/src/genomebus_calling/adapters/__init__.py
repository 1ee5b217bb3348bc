"""Calling's ways out and in: the tools (samtools, bcftools, reading BAMs straight from the
object store), and the Kafka subscribers."""
