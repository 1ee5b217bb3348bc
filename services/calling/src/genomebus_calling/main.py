"""Entry point: ``genomebus-calling`` consumes aligned samples."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import CallingSettings
from .inject import build_app


def main() -> None:
    settings = CallingSettings.load()
    serve(build_app(settings), settings)


__all__ = ["build_app", "main"]

if __name__ == "__main__":
    main()
