"""``genomebus-reference add|list|show``: the reference genomes an operator registers.

A sample names its reference by id; the id stands for one content (the seqcol digest of its
sequences) and one sex-chromosome description, for good. ``add`` digests the FASTA, builds the
samtools and bwa indexes (about an hour for a whole human genome: it says what it is doing) and
stores everything in the object store, the manifest last. Adding the same content again is a
no-op; other content, or another description, under a registered id is refused.

The object store comes from the usual ``GENOMEBUS_S3_*`` settings (and ``.stack/env`` on the
local stack); the indexes are built under ``GENOMEBUS_WORK_DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from genomebus_common.contracts.errors import GenomebusError
from genomebus_common.runtime.objectstore import ObjectStore
from genomebus_common.runtime.settings import ObjectStoreSettings, WorkDirSettings
from genomebus_common.stagekit.reference import (
    SEX_PRESETS,
    Interval,
    Manifest,
    ReferenceRegistry,
    SexChromosomes,
)


class ReferenceSettings(ObjectStoreSettings, WorkDirSettings):
    """What the command reads: the object store and a scratch folder."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genomebus-reference", description="register and inspect reference genomes"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="register a FASTA under an id (idempotent)")
    add.add_argument("reference_id", metavar="ID", help="the id samples will name, e.g. GRCh38")
    add.add_argument("fasta", type=Path, metavar="FASTA", help="plain (not gzipped) FASTA")
    sex = add.add_argument_group(
        "sex chromosomes (for sex-aware calling; without them every contig is called diploid)"
    )
    sex.add_argument(
        "--preset", choices=sorted(SEX_PRESETS), help="X, Y and the PARs of a human assembly"
    )
    sex.add_argument("--x", help="the X contig's name (e.g. chrX)")
    sex.add_argument("--y", help="the Y contig's name (e.g. chrY)")
    sex.add_argument(
        "--par",
        action="append",
        default=[],
        metavar="CONTIG:START-END",
        help="a pseudo-autosomal region, 1-based and closed; repeat for each",
    )
    commands.add_parser("list", help="the registered references, one a line")
    show = commands.add_parser("show", help="one reference's manifest")
    show.add_argument("reference_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the manifest as stored")
    return parser


def _sex_chromosomes(args: argparse.Namespace) -> SexChromosomes | None:
    if args.preset:
        if args.x or args.y or args.par:
            raise ValueError("--preset says X, Y and the PARs: give it alone")
        return SEX_PRESETS[args.preset]
    if not (args.x or args.y or args.par):
        return None
    if not (args.x and args.y):
        raise ValueError("--x and --y go together (and --par needs both)")
    return SexChromosomes(x=args.x, y=args.y, pars=tuple(Interval.parse(p) for p in args.par))


def _describe(manifest: Manifest) -> list[str]:
    lines = [
        f"id        {manifest.reference.id}",
        f"digest    {manifest.reference.digest}",
        f"sequences {len(manifest.sequences):,} ({manifest.total_length:,} bases)",
    ]
    sex = manifest.sex_chromosomes
    if sex is None:
        lines.append("sex       not described (every contig called diploid)")
    else:
        pars = ", ".join(map(str, sex.pars)) or "none"
        lines.append(f"sex       X={sex.x} Y={sex.y}; PARs: {pars}")
    files = sorted(manifest.files.items())
    lines += [f"file      {name} ({ref.size:,} bytes)" for name, ref in files]
    return lines


def run(args: argparse.Namespace, registry: ReferenceRegistry, workdir: Path) -> int:
    """One command against ``registry``; returns the exit status."""
    if args.command == "add":
        if not args.fasta.is_file():
            print(f"genomebus-reference: error: {args.fasta} is not a file", file=sys.stderr)
            return 2
        started = time.monotonic()

        def say(step: str) -> None:
            print(f"[{time.monotonic() - started:7.1f}s] {step}", flush=True)

        manifest = registry.register(
            args.reference_id, args.fasta, workdir, sex_chromosomes=_sex_chromosomes(args), say=say
        )
        print("\n".join(_describe(manifest)))
        return 0
    if args.command == "list":
        for reference_id in registry.ids():
            found = registry.find(reference_id)
            if found is not None:
                print(f"{reference_id}\t{found.reference.digest}\t{found.total_length:,} bases")
        return 0
    shown = registry.find(args.reference_id)
    if shown is None:
        print(f"genomebus-reference: no reference {args.reference_id!r}", file=sys.stderr)
        return 1
    print(shown.model_dump_json(indent=2) if args.json else "\n".join(_describe(shown)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = ReferenceSettings.load()
        workdir = Path(settings.work_dir) / "references"
        registry = ReferenceRegistry(ObjectStore.from_settings(settings), workdir / "cache")
        return run(args, registry, workdir)
    except (GenomebusError, ValueError) as exc:
        print(f"genomebus-reference: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ReferenceSettings", "main", "run"]
