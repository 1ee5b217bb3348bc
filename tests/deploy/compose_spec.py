"""Helpers for the deployment tests: the pinned Compose Specification schema and a Dockerfile
reader.

The schema is the one the Compose implementation itself embeds: ``schema/compose-spec.json`` in the
Go module ``github.com/compose-spec/compose-go/v2``. It is obtained through the Go module proxy with
``go mod download`` (a package registry this project may use) into a stable module cache, never
fetched from a web address at test time, and its SHA-256 is checked against the pinned value.

Where it is cached: ``$GENOMEBUS_TOOLS_DIR/go/mod`` (default ``~/.cache/genomebus/go/mod``).
Nothing here skips: if the schema cannot be obtained, :func:`load_compose_schema` raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMPOSE_GO_MODULE = "github.com/compose-spec/compose-go/v2"
COMPOSE_GO_VERSION = "v2.16.2"
SCHEMA_PATH_IN_MODULE = "schema/compose-spec.json"
# sha256 of schema/compose-spec.json in compose-go v2.16.2
# (module sum h1:pTp1DqQwJzFd85GzlWsSszKA1ABrV/ySqsClujIcWA8=)
SCHEMA_SHA256 = "f266dcbb043229405d7cedd5aec918f9102c2b3d5e3850808fdd8edd564a43ff"


class SchemaUnavailable(RuntimeError):
    """The pinned Compose schema could not be obtained or did not match its pinned digest."""


def tools_dir() -> Path:
    override = os.environ.get("GENOMEBUS_TOOLS_DIR")
    return Path(override) if override else Path.home() / ".cache" / "genomebus"


def _go_env(gomodcache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(gomodcache),
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",  # never download a Go toolchain
    )
    return env


def compose_schema_path() -> Path:
    """Return the path of the pinned compose-spec.json, downloading the module if needed."""
    gomodcache = tools_dir() / "go" / "mod"
    # Module cache layout: <GOMODCACHE>/<module path>@<version> (this path has no upper case, so
    # no '!' escaping is involved).
    cached = gomodcache / f"{COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION}" / SCHEMA_PATH_IN_MODULE
    if cached.is_file():
        return cached

    go = shutil.which("go")
    if go is None:
        raise SchemaUnavailable(
            f"{cached} is not cached and the `go` command is not installed, so "
            f"{COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION} cannot be downloaded"
        )
    gomodcache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION}"],
        env=_go_env(gomodcache),
        cwd=gomodcache,  # outside any Go module
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or "Dir" not in info or info.get("Error"):
        raise SchemaUnavailable(
            f"go mod download {COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION} failed "
            f"(exit {proc.returncode}): "
            f"{info.get('Error') or proc.stderr.strip() or proc.stdout.strip()}"
        )
    path = Path(info["Dir"]) / SCHEMA_PATH_IN_MODULE
    if not path.is_file():
        raise SchemaUnavailable(f"{path} missing from the downloaded module")
    return path


def load_compose_schema() -> dict[str, Any]:
    path = compose_schema_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SCHEMA_SHA256:
        raise SchemaUnavailable(
            f"{path} has sha256 {digest}, expected the pinned {SCHEMA_SHA256} "
            f"({COMPOSE_GO_MODULE}@{COMPOSE_GO_VERSION})"
        )
    return json.loads(raw)


def compose_validator(schema: dict[str, Any]):
    """A jsonschema validator for the draft the schema declares (checked to be a known draft)."""
    from jsonschema.validators import validator_for

    declared = schema.get("$schema")
    # Older compose-spec.json releases declare draft-07 without the trailing '#'; normalise it so
    # jsonschema recognises it instead of silently guessing a draft.
    if isinstance(declared, str) and re.fullmatch(
        r"https?://json-schema\.org/draft-0[4-7]/schema", declared
    ):
        schema = {**schema, "$schema": declared + "#"}
    sentinel = object()
    cls = validator_for(schema, default=sentinel)
    if cls is sentinel:
        raise SchemaUnavailable(f"unknown JSON Schema dialect {declared!r}")
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(validator, document: Any) -> list[str]:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]


# --------------------------------------------------------------------------------------------
# Dockerfile reading (enough for assertions; not a full BuildKit parser)
# --------------------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (ENTRYPOINT/CMD), or None for shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        logical: list[str] = []
        pending = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue  # comments and parser directives
            if pending and line.startswith("#"):
                continue  # comment lines inside a continued instruction are dropped
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        if pending:
            logical.append(pending)
        instructions = []
        for text in logical:
            keyword, _, args = text.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
        return cls(path, instructions)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def stages(self) -> list[list[Instruction]]:
        stages: list[list[Instruction]] = []
        for ins in self.instructions:
            if ins.keyword == "FROM":
                stages.append([])
            if stages:
                stages[-1].append(ins)
        return stages

    def final_stage(self) -> list[Instruction]:
        return self.stages()[-1]

    def run_words(self, stage: list[Instruction] | None = None) -> list[list[str]]:
        items = stage if stage is not None else self.instructions
        return [shlex.split(i.args, comments=False) for i in items if i.keyword == "RUN"]
