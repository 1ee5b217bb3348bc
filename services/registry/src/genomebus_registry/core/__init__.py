"""The registry's domain, free of Kafka, S3, HTTP and SQL: how a genotype is keyed and stored
(``keys``), what a load, a removal, a consent change or a fold does to the research counts
(``counts``) and to a sample's blocks (``loading``), which counts a researcher may see
(``disclosure``), who may ask what (``access``), and the VCF rows, consent, cursors and answers
those rules speak of. The adapters carry the same rules out in SQL; the tests hold the two to
the same answers."""
