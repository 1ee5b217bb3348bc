"""Machine-readable contracts generated from the event models: JSON Schema and AsyncAPI 3.0.

Subscribers in other languages read these instead of our Python. They are checked in, and a test
regenerates them and fails on any difference, so the documents can never drift from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from genomebus_common.contracts import __name__ as _package
from genomebus_common.contracts.events import ALL_EVENTS, json_schema, schema_id
from genomebus_common.contracts.headers import (
    H_CORRELATION_ID,
    H_DLQ_ATTEMPTS,
    H_DLQ_ERROR_CODE,
    H_DLQ_ERROR_KIND,
    H_DLQ_GROUP,
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_REASON,
    H_DLQ_TOPIC,
    H_EVENT_TYPE,
    H_SCHEMA_VERSION,
)
from genomebus_common.contracts.topics import ALL_TOPICS

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
ASYNCAPI_VERSION = "0.1.0"


def _channel_id(address: str) -> str:
    head, *rest = address.removeprefix("genomebus.").replace("_", ".").split(".")
    return head + "".join(part.capitalize() for part in rest)


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 description of every topic, its dead-letter topic and its payload."""
    _, top = models_json_schema(
        [(event, "serialization") for event in ALL_EVENTS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = dict(sorted(top.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    for event in ALL_EVENTS:
        messages[event.__name__] = {
            "name": schema_id(event),
            "title": event.__name__,
            "summary": (event.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/EventHeaders"},
            "payload": {"$ref": f"#/components/schemas/{event.__name__}"},
        }
    messages["DeadLetter"] = {
        "name": "dead-letter",
        "title": "Dead letter",
        "summary": "The original message, byte for byte, with why it could not be handled.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original payload, unchanged."},
    }
    schemas["EventHeaders"] = {
        "type": "object",
        "properties": {
            H_EVENT_TYPE: {"type": "string"},
            H_SCHEMA_VERSION: {"type": "string"},
            H_CORRELATION_ID: {"type": "string"},
            "traceparent": {"type": "string", "description": "W3C trace context."},
        },
    }
    schemas["DeadLetterHeaders"] = {
        "type": "object",
        "properties": {
            H_DLQ_REASON: {"type": "string"},
            H_DLQ_ERROR_CODE: {"type": "string"},
            H_DLQ_ERROR_KIND: {"type": "string", "enum": ["transient", "permanent"]},
            H_DLQ_TOPIC: {"type": "string"},
            H_DLQ_PARTITION: {"type": "string"},
            H_DLQ_OFFSET: {"type": "string"},
            H_DLQ_GROUP: {"type": "string"},
            H_DLQ_ATTEMPTS: {"type": "string"},
        },
    }
    channels: dict[str, Any] = {}
    for topic in ALL_TOPICS:
        name = topic.event.__name__
        channels[_channel_id(topic.name)] = {
            "address": topic.name,
            "description": f"{topic.description} Key: see "
            f"genomebus_common.contracts.topics.message_key. Partitions: {topic.partitions}.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        channels[_channel_id(topic.dlq)] = {
            "address": topic.dlq,
            "description": f"Messages from {topic.name} that could not be handled.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "genomebus events",
            "version": ASYNCAPI_VERSION,
            "description": "Events between genomebus services. Generated from "
            f"{_package}.events; do not edit by hand.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }


def rendered() -> dict[str, str]:
    """File name (relative to the contracts folder) -> exact text."""
    files = {
        f"schemas/{schema_id(event)}.json": json.dumps(json_schema(event), indent=2) + "\n"
        for event in ALL_EVENTS
    }
    files["asyncapi.json"] = json.dumps(asyncapi_document(), indent=2) + "\n"
    return files


def drift(folder: Path = CONTRACTS_DIR) -> list[str]:
    """Names of contract files missing or different from what the code generates."""
    return [
        name
        for name, text in rendered().items()
        if not (folder / name).is_file() or (folder / name).read_text() != text
    ]
