"""Entry point: ``genomebus-ingest`` runs the LIS API, the outbox relay and the sweep."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import IngestSettings
from .inject import Wiring, build_app

__all__ = ["Wiring", "build_app", "main"]


def main() -> None:
    settings = IngestSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
