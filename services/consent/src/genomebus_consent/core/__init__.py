"""Consent's domain: the model and its pure decisions, and the use cases that apply them through
the ports (``..ports``); no driver, web or bus library."""
