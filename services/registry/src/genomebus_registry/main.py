"""Entry point: ``genomebus-registry`` loads called variants, follows consent, answers queries."""

from __future__ import annotations

from genomebus_common.runtime.service import serve

from .config import RegistrySettings
from .inject import build_app


def main() -> None:
    settings = RegistrySettings.load()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
