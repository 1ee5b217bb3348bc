"""Every service's console script gets as far as handing its app to uvicorn.

The apps are tested through their factories elsewhere; this is the part those tests skip (the
heat controller once crashed here, in ``serve``, before uvicorn started).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from fastapi import FastAPI

SERVICES = ("ingest", "alignment", "calling", "consent", "registry", "heat")


@pytest.mark.parametrize("service", SERVICES)
def test_the_console_script_starts_the_http_server(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genomebus_common.runtime import service as runtime

    monkeypatch.setenv("GENOMEBUS_PSEUDONYM_KEY", "ab" * 32)
    # The development profile, whether or not a local stack's .stack/env is there to say so:
    # the script builds its app and connects to nothing, so no stack is needed.
    monkeypatch.setenv("GENOMEBUS_PROFILE", "dev")
    monkeypatch.setattr(runtime.trace, "set_tracer_provider", lambda provider: None)
    started: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(runtime.uvicorn, "run", lambda app, **kw: started.append((app, kw)))
    importlib.import_module(f"genomebus_{service}.main").main()
    assert len(started) == 1
    app, options = started[0]
    assert isinstance(app, FastAPI) and options["lifespan"] == "on"
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/healthz", "/readyz", "/metrics"} <= paths, f"{service} serves {paths}"
