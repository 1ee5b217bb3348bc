"""The registry's adapters: SQL for what ``core`` decides."""
