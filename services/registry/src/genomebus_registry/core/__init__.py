"""The registry's decisions, free of Kafka, S3 and SQL: how a genotype is keyed and stored in a
sample's blocks (``keys``), and what a load, a removal, a consent change or a fold does to the
research counts (``counts``). The adapters carry the same rules out in SQL; the tests hold the
two to the same answers."""
