"""Entry point: ``genomebus-heat`` runs the control loop and serves /healthz and /readyz."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import HeatSettings
from .inject import create_app


def main() -> None:
    settings = HeatSettings.load()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
