"""``genomebus-dlq``: look into a dead-letter topic and replay it safely.

    genomebus-dlq list genomebus.sample.aligned.dlq
    genomebus-dlq replay genomebus.sample.aligned.dlq --dry-run
    genomebus-dlq replay genomebus.sample.aligned.dlq --error-code tool_missing --yes

Replay asks before it publishes unless ``--yes`` (or ``--dry-run``) is given, prints one line
per record as it goes and a JSON report at the end. Exit status: 0 when every selected record
went back (or would, in a dry run), 3 when some were skipped for good (invalid, looping).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from genomebus_common.runtime.settings import ServiceSettings

from .dlq import DEFAULT_MAX_REPLAYS, ParkedMessage, Selection, Verdict, topic_of_dlq
from .replay import list_parked, replay

EXIT_SKIPPED = 3


def _offset(text: str) -> tuple[int, int]:
    try:
        partition, offset = text.split(":")
        return int(partition), int(offset)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected PARTITION:OFFSET, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genomebus-dlq", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers (default: GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS / .stack/env)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show every parked record: why, where, dealt with?")
    listing.add_argument("dlq_topic")
    again = commands.add_parser("replay", help="send parked records back to their topic")
    again.add_argument("dlq_topic")
    again.add_argument(
        "--error-code", action="append", default=[], help="only this code (repeatable)"
    )
    again.add_argument(
        "--offset",
        action="append",
        default=[],
        type=_offset,
        help="only this PARTITION:OFFSET of the DLQ (repeatable)",
    )
    again.add_argument("--dry-run", action="store_true", help="judge and report; publish nothing")
    again.add_argument(
        "--force",
        action="store_true",
        help="replay bodies that do not parse as the topic's event (after a fix)",
    )
    again.add_argument(
        "--from-beginning",
        action="store_true",
        help="ignore how far earlier replays got; look at the whole DLQ",
    )
    again.add_argument(
        "--max-replays",
        type=int,
        default=DEFAULT_MAX_REPLAYS,
        help="refuse records already replayed this many times (loop guard)",
    )
    again.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        topic_of_dlq(args.dlq_topic)
    except ValueError as exc:
        print(f"genomebus-dlq: {exc}", file=sys.stderr)
        return 2
    # Who we are on Kafka comes from the environment like any service's identity: the
    # genomebus-ops user (its ACLs read every DLQ and write back anywhere but consent.changed),
    # or on the dev stack the administrator of .stack/env.
    overrides = {"kafka_bootstrap_servers": args.bootstrap} if args.bootstrap else {}
    settings = ServiceSettings.load(service_name="ops", **overrides)

    if args.command == "list":
        count = asyncio.run(
            list_parked(settings, args.dlq_topic, emit=lambda row: print(json.dumps(row)))
        )
        print(f"{count} record(s) in {args.dlq_topic}", file=sys.stderr)
        return 0

    if not (args.dry_run or args.yes):
        answer = input(f"replay selected records of {args.dlq_topic} to their topic? [y/N] ")
        if answer.strip().lower() not in {"y", "yes"}:
            print("nothing replayed", file=sys.stderr)
            return 1

    def progress(message: ParkedMessage, verdict: Verdict) -> None:
        if verdict is not Verdict.SKIP_FILTERED:
            action = "would replay" if args.dry_run and verdict is Verdict.REPLAY else verdict.value
            print(f"{message.partition}:{message.offset} -> {action}", file=sys.stderr)

    report = asyncio.run(
        replay(
            settings,
            args.dlq_topic,
            Selection(frozenset(args.error_code), frozenset(args.offset)),
            dry_run=args.dry_run,
            force=args.force,
            from_beginning=args.from_beginning,
            max_replays=args.max_replays,
            progress=progress,
        )
    )
    print(report.to_json())
    return EXIT_SKIPPED if report.skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
