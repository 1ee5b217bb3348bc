"""The plain bwa + samtools + bcftools pipeline, run directly on files: the yardstick.

Why it lives here: the accuracy goal of the project (SNV F1 >= 0.99, indel F1 >= 0.95 at 30x) is
only meaningful if the simulated data make it reachable with the same tools the services wrap.
This module answers that without Kafka or object storage, and gives the benchmarks a figure
to compare the event-driven pipeline's output against (they should be identical).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .tools import run, run_pipeline

# bcftools options that the measurements in the package README were made with.
MPILEUP_OPTIONS: tuple[str, ...] = ("-a", "FORMAT/AD,FORMAT/DP", "-q", "20", "-Q", "20")
CALL_OPTIONS: tuple[str, ...] = ("-m", "-v")


@dataclass(frozen=True)
class BaselineRun:
    bam: Path
    calls_vcf: Path
    seconds: dict[str, float] = field(default_factory=dict)


def bwa_index(reference: Path) -> float:
    """Index once per reference (the .bwt file is the marker); returns the seconds spent."""
    if Path(f"{reference}.bwt").is_file() and Path(f"{reference}.sa").is_file():
        return 0.0
    started = time.perf_counter()
    run(["bwa", "index", reference])
    return time.perf_counter() - started


def align_and_call(
    reference: Path | str,
    reads_1: Path | str,
    reads_2: Path | str,
    out_dir: Path | str,
    *,
    sample: str = "sample",
    threads: int | None = None,
    mpileup_options: tuple[str, ...] = MPILEUP_OPTIONS,
    call_options: tuple[str, ...] = CALL_OPTIONS,
) -> BaselineRun:
    """``bwa mem | samtools sort``, then ``bcftools mpileup | call | norm`` into calls.vcf.gz."""
    ref = Path(reference)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = threads or min(4, os.cpu_count() or 1)
    bam, vcf = out / "aligned.bam", out / "calls.vcf.gz"
    seconds = {"bwa_index": bwa_index(ref)}

    started = time.perf_counter()
    read_group = f"@RG\\tID:{sample}\\tSM:{sample}"
    run_pipeline([
        ["bwa", "mem", "-t", threads, "-R", read_group, ref, reads_1, reads_2],
        ["samtools", "sort", "-@", threads, "-m", "512M", "-T", out / "sort-tmp", "-o", bam, "-"],
    ])  # fmt: skip
    run(["samtools", "index", bam])
    seconds["align"] = time.perf_counter() - started

    started = time.perf_counter()
    run_pipeline([
        ["bcftools", "mpileup", "-f", ref, *mpileup_options, "-Ou", bam],
        ["bcftools", "call", *call_options, "-Ou"],
        ["bcftools", "norm", "-f", ref, "-m", "-any", "-Oz", "-o", vcf],
    ])  # fmt: skip
    run(["tabix", "-f", "-p", "vcf", vcf])
    seconds["call"] = time.perf_counter() - started
    return BaselineRun(bam=bam, calls_vcf=vcf, seconds=seconds)
