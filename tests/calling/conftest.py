"""The alignment tests' small genome and its bwa alignment, reused as calling input."""

from tests.alignment.data import aligned_bwa, small_dataset  # noqa: F401 - pytest fixtures
