"""Entry point: ``genomebus-alignment`` consumes received samples from its priority lanes."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import AlignmentSettings
from .inject import build_app


def main() -> None:
    settings = AlignmentSettings.load()
    serve(build_app(settings), settings)


__all__ = ["build_app", "main"]

if __name__ == "__main__":
    main()
