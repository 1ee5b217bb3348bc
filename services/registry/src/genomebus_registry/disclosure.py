"""The disclosure rules' old address, kept only because ``config.py`` (owned elsewhere) and
tests/security import it: the rules are ``core.disclosure``. Remove once those import that."""

from __future__ import annotations

from .core.disclosure import (
    DEFAULT_MIN_CELL,
    MIN_CELL_FLOOR,
    Cells,
    Disclosed,
    check_threshold,
    disclose,
    listed,
)

__all__ = [
    "DEFAULT_MIN_CELL",
    "MIN_CELL_FLOOR",
    "Cells",
    "Disclosed",
    "check_threshold",
    "disclose",
    "listed",
]
