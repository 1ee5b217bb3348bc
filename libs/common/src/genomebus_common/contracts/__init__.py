"""What crosses the bus: events, topics, identifiers, headers and the error taxonomy.

Imports nothing of the runtime and no driver (an import-linter contract holds it).
"""
