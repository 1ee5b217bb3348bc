"""The one name for "a PostgreSQL connection" in annotations.

A pool hands out proxies (``PoolConnectionProxy``), ``asyncpg.connect`` plain connections; both
serve every query the runtime makes, and the outbox, the inbox and the migrations accept either.
"""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy
