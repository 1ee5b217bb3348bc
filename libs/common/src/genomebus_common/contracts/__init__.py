"""What crosses the bus: events, topics, identifiers and the error taxonomy. Imports nothing of the runtime."""
