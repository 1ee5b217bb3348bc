"""The registry's adapters: PostgreSQL (``postgres``) for what ``core`` decides, the HTTP API
(``http``) and the Kafka subscriptions (``kafka``)."""
