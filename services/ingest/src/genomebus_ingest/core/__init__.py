"""The domain of this service: pure decisions, no I/O.

``states`` is the one place that says which moves a sample may make; ``decisions`` says what a
consent or a check means for a sample; ``ingest`` carries out the use cases through ``ports``.
Nothing here imports a driver, a web framework or a bus client (an import-linter contract).
"""
