"""Content-hashed manifests, so data are only remade when they are missing or wrong.

Why hashes rather than "the file exists": a demo interrupted mid-write, or a file edited by hand,
must not be reused silently. Every output is written first, the manifest last; a run is reused
only if its parameters match and every listed file still has the recorded SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_valid(manifest: Path, params: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's contents if ``params`` match and all its files are intact, else None."""
    try:
        data: dict[str, Any] = json.loads(manifest.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if data.get("params") != params:
        return None
    for name, digest in data.get("files", {}).items():
        path = manifest.parent / name
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return data


def write(manifest: Path, params: dict[str, Any], files: list[Path], **extra: Any) -> None:
    """Record ``files`` (relative to the manifest's folder) with their hashes, atomically."""
    data = {
        "params": params,
        "files": {str(p.relative_to(manifest.parent)): sha256_file(p) for p in files},
        **extra,
    }
    tmp = manifest.with_name(manifest.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, manifest)
