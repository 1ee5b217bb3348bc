"""How a service runs: broker, delivery and dead letters, inbox, outbox, HTTP, settings,
telemetry, metrics, database, object store."""
