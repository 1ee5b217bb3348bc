"""Trust boundaries checked on the real infrastructure (database roles, ...)."""
