"""Entry point: ``genomebus-consent`` runs the consent API, its outbox relay and its one
subscriber (ingest's ``sample.registered``); ``inject.py`` wires them."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import ConsentSettings
from .inject import build_app

__all__ = ["build_app", "main"]


def main() -> None:
    settings = ConsentSettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
