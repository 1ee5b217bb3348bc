"""``python -m genomebus_testdata``: make the demo/benchmark data, score calls, run the yardstick.

Layout under ``--out``: ``reference/chrX_<start>_<end>.fa`` and
``samples/seed<S>-<C>x-<L>bp/{truth.vcf.gz,reads_1.fq.gz,reads_2.fq.gz,sample.json}``, so several
coverages and seeds can share one reference (and its bwa index).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .baseline import align_and_call
from .evaluate import evaluate
from .reference import DEFAULT_LENGTH, DEFAULT_START, make_reference
from .simulate import SimulatedSample, read_pairs_for, simulate_sample
from .tools import ToolFailed, ToolMissing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genomebus_testdata", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    for name, text in (
        ("make", "make a reference slice and a simulated sample"),
        ("baseline", "make the data, then align, call and evaluate with bwa/samtools/bcftools"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--out", type=Path, required=True)
        cmd.add_argument("--length", type=int, default=DEFAULT_LENGTH)
        cmd.add_argument("--start", type=int, default=DEFAULT_START)
        cmd.add_argument("--coverage", type=float, default=30.0)
        cmd.add_argument("--seed", type=int, default=1)
        cmd.add_argument("--snv-rate", type=float, default=0.001)
        cmd.add_argument("--indel-rate", type=float, default=0.0001)
        cmd.add_argument("--read-length", type=int, default=150)
        cmd.add_argument(
            "--sim-threads",
            type=int,
            default=1,
            help="mason_simulator threads (faster, but the reads depend on the thread count)",
        )
        cmd.add_argument("--json", action="store_true", help="print one JSON object at the end")
        if name == "baseline":
            cmd.add_argument("--threads", type=int, default=None)

    ev = sub.add_parser("evaluate", help="score a call set against a truth VCF")
    ev.add_argument("--calls", type=Path, required=True)
    ev.add_argument("--truth", type=Path, required=True)
    ev.add_argument("--reference", type=Path, required=True)
    ev.add_argument("--all-filters", action="store_true", help="count non-PASS calls too")
    ev.add_argument("--json", action="store_true")

    args = parser.parse_args(argv)
    try:
        if args.command == "evaluate":
            acc = evaluate(args.calls, args.truth, args.reference, pass_only=not args.all_filters)
            print(json.dumps(acc.as_dict()) if args.json else acc.summary())
            return 0
        return _make(args)
    except (ToolMissing, ToolFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _make(args: argparse.Namespace) -> int:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    reference = make_reference(args.out / "reference", length=args.length, start=args.start)
    timings["reference"] = time.perf_counter() - started
    say = (lambda *_: None) if args.json else print
    say(
        f"reference  {reference}  ({args.length:,} bp from GRCh37 chrX+{args.start:,})"
        f"  {timings['reference']:.1f}s"
    )

    pairs = read_pairs_for(args.coverage, args.length, args.read_length)
    sample_dir = args.out / "samples" / f"seed{args.seed}-{args.coverage:g}x-{args.read_length}bp"
    if args.sim_threads != 1:
        sample_dir = sample_dir.with_name(f"{sample_dir.name}-t{args.sim_threads}")
    started = time.perf_counter()
    sample = simulate_sample(
        reference, sample_dir, read_pairs=pairs, seed=args.seed, snv_rate=args.snv_rate,
        indel_rate=args.indel_rate, read_length=args.read_length, threads=args.sim_threads,
    )  # fmt: skip
    timings["simulate"] = time.perf_counter() - started
    say(_describe(sample, timings["simulate"]))
    result: dict[str, object] = {"sample": sample.to_dict()}

    if args.command == "baseline":
        run = align_and_call(
            reference, sample.reads_1, sample.reads_2, sample_dir / "baseline", threads=args.threads
        )
        timings.update(run.seconds)
        started = time.perf_counter()
        acc = evaluate(run.calls_vcf, sample.truth_vcf, reference)
        timings["evaluate"] = time.perf_counter() - started
        say(
            f"aligned    {run.bam}  (index {run.seconds['bwa_index']:.1f}s, "
            f"align {run.seconds['align']:.1f}s)"
        )
        say(f"called     {run.calls_vcf}  ({run.seconds['call']:.1f}s)")
        say(acc.summary())
        result["accuracy"] = acc.as_dict()
        result["calls_vcf"] = str(run.calls_vcf)

    result["seconds"] = {k: round(v, 2) for k, v in timings.items()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("seconds    " + "  ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    return 0


def _describe(sample: SimulatedSample, seconds: float) -> str:
    return (
        f"sample     {sample.truth_vcf.parent}  "
        f"{sample.read_pairs:,} pairs x {sample.read_length} bp"
        f" ({sample.coverage:.1f}x), truth {sample.snv_count:,} SNVs + {sample.indel_count:,} "
        f"indels ({sample.het_count:,} het / {sample.hom_count:,} hom)  {seconds:.1f}s\n"
        f"           {sample.reads_1.name} {sample.reads_2.name} {sample.truth_vcf.name}"
    )
