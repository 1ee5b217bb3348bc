"""Fixtures of the small simulated genome (see ``data.py``), for every test in this folder."""

from .data import aligned_bwa, small_dataset  # noqa: F401 - pytest fixtures
