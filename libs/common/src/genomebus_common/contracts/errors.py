"""The error hierarchy, by cause.

Retry and dead-letter decisions key on these classes alone: a handler never inspects a driver's
exception. Each adapter (broker, object store, database) maps its driver's errors into this tree
at its boundary, the way httpx maps transport errors into its own exceptions.

- ``TransientError``: the same work may succeed if tried again later (a dependency is down,
  a connection dropped, a deadlock was detected). Retried with backoff, a bounded number of times.
- ``PermanentError``: trying again cannot help (the event is malformed, a checksum does not
  match, a referenced object or reference genome does not exist). Goes to the dead-letter topic
  with its reason at once, so the partition keeps flowing.
"""

from __future__ import annotations


class GenomebusError(Exception):
    """Base of every error genomebus raises on purpose."""

    #: Short, stable machine-readable cause, used in dead-letter headers and metrics.
    code: str = "genomebus_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        return str(self)


class TransientError(GenomebusError):
    """Worth retrying: the cause lies outside the message (a dependency is unavailable)."""

    code = "transient"


class PermanentError(GenomebusError):
    """Not worth retrying: the message itself, or what it points at, is wrong."""

    code = "permanent"


# --- transient causes -------------------------------------------------------------------------


class BrokerUnavailable(TransientError):
    code = "broker_unavailable"


class ObjectStoreUnavailable(TransientError):
    code = "object_store_unavailable"


class DatabaseUnavailable(TransientError):
    code = "database_unavailable"


class TopicsMissing(TransientError):
    """Topics an operator (Strimzi's topic operator) should have created are not there yet."""

    code = "topics_missing"


class ToolFailedTransiently(TransientError):
    """An external tool died from a cause outside its input (killed, out of disk, ...)."""

    code = "tool_failed_transiently"


# --- permanent causes -------------------------------------------------------------------------


class InvalidEvent(PermanentError):
    """The message is not a valid event of the contract its topic carries."""

    code = "invalid_event"


class ChecksumMismatch(PermanentError):
    code = "checksum_mismatch"


class ObjectNotFound(PermanentError):
    code = "object_not_found"


class ObjectStoreRejected(PermanentError):
    """The object store refused the request for a reason retrying cannot fix (access, naming)."""

    code = "object_store_rejected"


class DataConflict(PermanentError):
    """The same identity arrived with different content (e.g. a sample id reused)."""

    code = "data_conflict"


class DatabaseRejected(PermanentError):
    """The database refused the data itself (constraint, type, syntax)."""

    code = "database_rejected"


class ToolFailed(PermanentError):
    """An external tool rejected its input (exit status with a diagnostic on stderr)."""

    code = "tool_failed"


# --- mapping driver errors at the adapter boundaries -------------------------------------------
