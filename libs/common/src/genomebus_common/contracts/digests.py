"""GA4GH digests: the identifiers of references (refget) and variants (VRS) that travel on the
bus, computed the same way by every service."""

from __future__ import annotations

import base64
import hashlib


def sha512t24u(data: bytes) -> str:
    """GA4GH's digest: SHA-512 truncated to 24 bytes, base64url without padding."""
    return base64.urlsafe_b64encode(hashlib.sha512(data).digest()[:24]).decode().rstrip("=")
