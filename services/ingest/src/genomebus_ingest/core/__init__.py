"""The domain of this service: pure decisions, no I/O."""
