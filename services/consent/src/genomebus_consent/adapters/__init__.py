"""Consent's adapters: PostgreSQL (the store and its outbox), HTTP, Kafka, and in-memory."""
