"""Paired reads -> duplicate-marked, coordinate-sorted, indexed, checked BAM, with metrics.

One streaming pipeline, so memory is bounded by the tools' own settings and never by the
sample's size::

    FASTQ.gz streams --(Python: gunzip + count)--> FIFOs
        -> bwa mem | samtools fixmate -m | samtools sort | samtools markdup --write-index

Then the result is proven rather than trusted: every process exited 0, the BAM ends with the
BGZF EOF block, the index exists, and the BAM holds exactly one primary record per input read.
Only then are the metrics computed (flagstat, coverage) and the result returned.

The Kafka handler (elsewhere) maps the raised errors: ``ToolFailed``/``InvalidReads`` are
permanent (dead letter), ``ToolFailedTransiently`` is retried.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from genomebus_common.contracts.errors import PermanentError, ToolFailed, ToolFailedTransiently
from genomebus_common.contracts.events import AlignmentMetrics, ReadGroup, ToolProvenance
from genomebus_common.stagekit.tools import (
    Command,
    Data,
    FifoFeeder,
    Pipeline,
    display_pipeline,
    make_fifo,
    read_fai,
    require_bgzf_eof,
    require_nonempty,
    run_pipeline,
    run_tool,
    tool_version,
)
from genomebus_common.stagekit.work import ReadStream

from ..core.chunks import BWA_BATCH_BASES
from ..core.errors import ReadCountMismatch, ReferenceNotIndexed
from ..core.fastq import FastqCount, InvalidReads, counted_fastq
from ..core.results import Aligner, AlignmentResult, UnitAlignment

BWA_INDEX_SUFFIXES = (".amb", ".ann", ".bwt", ".pac", ".sa")

#: Fixed output names: a sample id in a path could read as a URL scheme to htslib ("s3:...").
BAM_NAME = "aligned.bam"
SORTED_NAME = "sorted.bam"
MARKDUP_STATS_NAME = "markdup.stats.txt"

_MIN_SORT_MEMORY_MB = 64


# --- reference preparation ---------------------------------------------------------------------


def index_reference(fasta: Path) -> None:
    """Build the bwa index and the .fai beside ``fasta``; run once per registered reference.

    bwa index takes minutes and gigabytes on a human genome, which is why alignment refuses to
    build it on the fly. minimap2 needs no prebuilt index (it indexes a 5 Mb reference in about
    a second).
    """
    fasta = Path(fasta)
    if not fasta.is_file():
        raise PermanentError(f"reference FASTA not found: {fasta}")
    run_pipeline([["bwa", "index", str(fasta)]])
    run_pipeline([["samtools", "faidx", str(fasta)]])
    _require_reference_index(fasta, "bwa")


def _require_reference_index(fasta: Path, aligner: Aligner) -> None:
    if not fasta.is_file():
        raise ReferenceNotIndexed(f"reference FASTA not found: {fasta.name}")
    needed = [Path(str(fasta) + ".fai")]
    if aligner == "bwa":
        needed += [Path(str(fasta) + s) for s in BWA_INDEX_SUFFIXES]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise ReferenceNotIndexed(
            f"reference {fasta.name} is not indexed (missing {', '.join(missing)}); "
            "run index_reference first"
        )


# --- the pipeline ------------------------------------------------------------------------------


def _read_group_line(rg: ReadGroup) -> str:
    # Literal backslash-t: bwa and minimap2 expand "\t" in -R themselves.
    fields = [f"ID:{rg.id}", f"SM:{rg.sample}", f"LB:{rg.library}", f"PL:{rg.platform}"]
    if rg.platform_unit:
        fields.append(f"PU:{rg.platform_unit}")
    return "\\t".join(["@RG", *fields])


@functools.cache
def bwa_takes_read_offset() -> bool:
    """Whether the bwa on PATH has ``-J`` (genomebus's patch to bwa 0.7.17: the index of the
    input's first read in the whole sample).

    bwa breaks ties between equally good hits with a hash of the read's index in its run, so a
    chunk aligned alone would number its reads from 0 and place some reads elsewhere than the
    whole sample aligned in one piece would. With ``-J`` each chunk numbers its reads where they
    are in the sample, and chunked output is the one-piece output, record for record.
    """
    try:
        done = subprocess.run(
            ["bwa", "mem"], check=False, capture_output=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return re.search(rb"^\s*-J INT", done.stdout + done.stderr, flags=re.MULTILINE) is not None


def _aligner_command(
    aligner: Aligner, threads: int, batch_bases: int = BWA_BATCH_BASES, *, read_offset: bool = False
) -> Command:
    r1, r2, ref, rg = Data("r1.fastq"), Data("r2.fastq"), Data("reference"), Data("read-group")
    if aligner == "bwa":
        # -K: a fixed batch of bases, so the insert-size estimate, and so the alignments, do not
        # depend on how many cores the node has (bwa's "for reproducibility"; the CCDG
        # functional-equivalence pipelines use the same 100M). A sample rerun elsewhere, after a
        # rebalance or a replay, gets the same records. -J: where this chunk's reads start in the
        # sample (see bwa_takes_read_offset).
        offset: list[str | Data] = ["-J", Data("first-read")] if read_offset else []
        return Command.of(
            "bwa", "mem", "-K", str(batch_bases), *offset, "-t", str(threads), "-R", rg, ref, r1, r2
        )
    if aligner == "minimap2":
        return Command.of("minimap2", "-ax", "sr", "-t", str(threads), "-R", rg, ref, r1, r2)
    raise ValueError(f"unknown aligner {aligner!r}")


def _sort_commands(threads: int, sort_memory_mb: int) -> list[Command]:
    """fixmate + coordinate sort of one unit's alignments: what each chunk needs before the
    gather (pairs never span chunks, so fixmate sees every mate here)."""
    # sort's -m is per sorting thread; -@ N gives N sorting threads. Keep the total at the budget.
    per_thread_mb = max(sort_memory_mb // threads, 32)
    return [
        # Uncompressed between stages: compressing a stream only to decompress it is wasted CPU.
        Command.of("samtools", "fixmate", "-u", "-m", "-", "-"),
        # -l 1: the sorted chunk is an intermediate, read once by the gather.
        Command.of(
            "samtools",
            "sort",
            "-l",
            "1",
            "-@",
            str(threads),
            "-m",
            f"{per_thread_mb}M",
            "-T",
            Data("tmp/sort"),
            "-o",
            Data("sorted.bam"),
            "-",
        ),
    ]


def _gather_commands(threads: int, units: int) -> list[Command]:
    """Merge the units' sorted BAMs (ties in unit order, which is read order: the same order
    one sort of the whole would give), then mark duplicates over the whole sample."""
    extra = str(max(threads - 1, 0))
    inputs = [Data(f"unit{i}.bam") for i in range(units)]
    return [
        Command.of("samtools", "merge", "-u", "-c", "-p", "-@", extra, "-o", "-", *inputs),
        Command.of(
            "samtools",
            "markdup",
            "-@",
            extra,
            "-T",
            Data("tmp/markdup"),
            "-f",
            Data("markdup.stats"),
            "--write-index",
            "-",
            Data("bam##idx##bai"),
        ),
    ]


def _source_reader(
    source: ReadStream | Path, stack: contextlib.ExitStack
) -> Callable[[int], bytes]:
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidReads(f"reads file not found: {path.name}")
        return stack.enter_context(open(path, "rb")).read
    return source.read


def _feed_and_align(
    reads: tuple[ReadStream | Path, ReadStream | Path],
    commands: list[Command],
    values: dict[str, str],
    fifo_dir: Path,
) -> tuple[FastqCount, FastqCount]:
    """Run the pipeline with both FIFOs fed; return the per-file counts once all is done.

    Precedence of failures, most specific first: damaged input (the pipeline is aborted at
    once), then the tools' own failures, then a tool that stopped reading early.
    """
    counts = (FastqCount("R1"), FastqCount("R2"))
    with contextlib.ExitStack() as stack:
        readers = [_source_reader(src, stack) for src in reads]
        fifos = [make_fifo(fifo_dir / "r1.fastq"), make_fifo(fifo_dir / "r2.fastq")]
        values = {**values, "r1.fastq": str(fifos[0]), "r2.fastq": str(fifos[1])}
        pipeline = Pipeline([c.argv(values) for c in commands])
        feeders = [
            FifoFeeder(fifo, counted_fastq(read, count), on_error=lambda _e: pipeline.abort())
            for fifo, read, count in zip(fifos, readers, counts, strict=True)
        ]
        tool_error: Exception | None = None
        waited = False
        try:
            pipeline.start()
            for feeder in feeders:
                feeder.start()
            try:
                waited = True
                pipeline.wait()
            except Exception as exc:  # noqa: BLE001 - reported below, after the input's verdict
                tool_error = exc
        finally:
            _stop_feeding(pipeline, feeders, fifos, waited=waited)
        _raise_failures(pipeline, feeders, counts, tool_error)
    _require_pair(counts)
    return counts


def _stop_feeding(
    pipeline: Pipeline, feeders: list[FifoFeeder], fifos: list[Path], *, waited: bool
) -> None:
    """Stop the feeders and remove the FIFOs once the tools are done (or never started)."""
    if not waited:
        # A feeder could not start (no thread to be had, say): the aligner would wait for its
        # FIFO for ever. Kill what runs and collect it before the cleanup below.
        pipeline.abort()
        with contextlib.suppress(Exception):
            pipeline.wait(check=False)
    # Every tool has exited here (or never started): feeders still waiting for a reader give
    # up, and those mid-write have already seen the reader go.
    for feeder in feeders:
        feeder.cancel()
    for feeder in feeders:
        if feeder.ident is not None:  # started
            feeder.join()
    for fifo in fifos:
        fifo.unlink(missing_ok=True)


def _raise_failures(
    pipeline: Pipeline,
    feeders: list[FifoFeeder],
    counts: tuple[FastqCount, FastqCount],
    tool_error: Exception | None,
) -> None:
    """Damaged input first, then the tools' own failures, then a tool that stopped early."""
    for feeder in feeders:
        if feeder.error is not None:
            raise feeder.error from tool_error
    if tool_error is not None:
        raise tool_error
    for count in counts:
        if not count.complete:
            # bwa, for one, stops at the end of the shorter file of a pair and exits 0 with
            # only a warning: quote it, it is the best explanation there is.
            raise ToolFailed(
                f"the aligner stopped reading {count.label} after {count.records} records "
                f"without reporting an error: {_diagnostics(pipeline.outcomes[0].stderr_tail)}"
            )


def _require_pair(counts: tuple[FastqCount, FastqCount]) -> None:
    if counts[0].records != counts[1].records:
        raise InvalidReads(
            f"R1 holds {counts[0].records} reads but R2 holds {counts[1].records}: "
            "the files are not a pair"
        )
    if counts[0].records == 0:
        raise InvalidReads("the reads files hold no reads")


def _diagnostics(stderr: str) -> str:
    """The warning and error lines of a tool's stderr, else its last line."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith(("[W::", "[E::", "ERROR"))]
    return "; ".join(lines[-5:]) if lines else (stderr.strip().splitlines() or ["no stderr"])[-1]


def _check_resources(threads: int, sort_memory_mb: int) -> None:
    if threads < 1:
        raise ValueError("threads must be at least 1")
    if sort_memory_mb < _MIN_SORT_MEMORY_MB:
        raise ValueError(f"sort_memory_mb must be at least {_MIN_SORT_MEMORY_MB}")


def _fresh_tmp(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / "tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def align_unit(
    reads_r1: ReadStream | Path,
    reads_r2: ReadStream | Path,
    reference_fasta: Path,
    read_group: ReadGroup,
    workdir: Path,
    *,
    aligner: Aligner = "bwa",
    threads: int = 2,
    sort_memory_mb: int = 256,
    batch_bases: int = BWA_BATCH_BASES,
    first_pair: int = 0,
) -> UnitAlignment:
    """Align one chunk (a gzipped FASTQ pair, paths or streams) into a sorted BAM, checked to
    hold one primary record per input read."""
    _check_resources(threads, sort_memory_mb)
    reference_fasta = Path(reference_fasta)
    _require_reference_index(reference_fasta, aligner)
    workdir = Path(workdir)
    tmp = _fresh_tmp(workdir)
    sorted_bam = workdir / SORTED_NAME
    sorted_bam.unlink(missing_ok=True)
    read_offset = aligner == "bwa" and bwa_takes_read_offset()
    if aligner == "bwa" and first_pair > 0 and not read_offset:
        raise ToolFailedTransiently(
            "the bwa on this host has no -J (the read-index offset genomebus's bwa build adds): "
            "a chunk after the first would not align as in one piece; install genomebus's bwa",
            code="tool_missing",
        )
    align_cmd = _aligner_command(aligner, threads, batch_bases, read_offset=read_offset)
    sort_cmds = _sort_commands(threads, sort_memory_mb)
    values = {
        "first-read": str(2 * first_pair),
        "reference": str(reference_fasta),
        "read-group": _read_group_line(read_group),
        "tmp/sort": str(tmp / "sort"),
        "sorted.bam": str(sorted_bam),
    }
    counts = _feed_and_align((reads_r1, reads_r2), [align_cmd, *sort_cmds], values, tmp)
    read_pairs = counts[0].records
    require_bgzf_eof(sorted_bam, "the chunk's BAM")
    primary = _flagstat(sorted_bam, threads).primary
    if primary != 2 * read_pairs:
        raise ReadCountMismatch(
            f"the chunk's BAM holds {primary} primary records but its input held "
            f"{2 * read_pairs} reads ({read_pairs} pairs)"
        )
    shutil.rmtree(tmp, ignore_errors=True)
    tools = [
        ToolProvenance(name=aligner, version=tool_version(aligner), command=align_cmd.display()),
        ToolProvenance(
            name="samtools", version=tool_version("samtools"), command=display_pipeline(sort_cmds)
        ),
    ]
    return UnitAlignment(bam=sorted_bam, read_pairs=read_pairs, tools=tools)


def gather_alignments(
    unit_bams: list[Path],
    reference_fasta: Path,
    workdir: Path,
    *,
    expected_pairs: int,
    threads: int = 2,
) -> tuple[Path, Path, Path, AlignmentMetrics, ToolProvenance]:
    """Merge the units' sorted BAMs in unit order, mark duplicates, index, and prove the result:
    BGZF EOF, an index, and one primary record per read of the whole sample.
    Returns (BAM, index, markdup stats, metrics, provenance)."""
    if not unit_bams:
        raise ValueError("nothing to gather")
    workdir = Path(workdir)
    tmp = _fresh_tmp(workdir)
    bam = workdir / BAM_NAME
    bai = workdir / (BAM_NAME + ".bai")
    stats = workdir / MARKDUP_STATS_NAME
    for stale in (bam, bai, stats):
        stale.unlink(missing_ok=True)
    commands = _gather_commands(threads, len(unit_bams))
    values = {
        **{f"unit{i}.bam": str(path) for i, path in enumerate(unit_bams)},
        "tmp/markdup": str(tmp / "markdup"),
        "markdup.stats": str(stats),
        "bam##idx##bai": f"{bam}##idx##{bai}",
    }
    run_pipeline([c.argv(values) for c in commands])
    metrics = _check_and_measure(bam, bai, reference_fasta, expected_pairs, threads)
    shutil.rmtree(tmp, ignore_errors=True)
    provenance = ToolProvenance(
        name="samtools", version=tool_version("samtools"), command=display_pipeline(commands)
    )
    return bam, bai, stats, metrics, provenance


def align(
    reads_r1: ReadStream | Path,
    reads_r2: ReadStream | Path,
    reference_fasta: Path,
    read_group: ReadGroup,
    workdir: Path,
    *,
    aligner: Aligner = "bwa",
    threads: int = 2,
    sort_memory_mb: int = 256,
    batch_bases: int = BWA_BATCH_BASES,
) -> AlignmentResult:
    """Align a whole sample's gzipped FASTQ pair (paths or readable binary streams) in one
    streaming pipeline, ``bwa | fixmate | sort | markdup``, and check the BAM: for a sample that
    is one chunk, this is its unit and its gather at once (no intermediate BAM is stored).

    ``workdir`` belongs to this call: its ``tmp`` folder is wiped first, so a retry after a kill
    never trips over the previous attempt's temporary files. The caller streams the returned BAM
    and index out of it and removes it.
    """
    _check_resources(threads, sort_memory_mb)
    reference_fasta = Path(reference_fasta)
    _require_reference_index(reference_fasta, aligner)
    workdir = Path(workdir)
    tmp = _fresh_tmp(workdir)
    bam = workdir / BAM_NAME
    bai = workdir / (BAM_NAME + ".bai")
    stats = workdir / MARKDUP_STATS_NAME
    for stale in (bam, bai, stats):
        stale.unlink(missing_ok=True)
    read_offset = aligner == "bwa" and bwa_takes_read_offset()
    align_cmd = _aligner_command(aligner, threads, batch_bases, read_offset=read_offset)
    per_thread_mb = max(sort_memory_mb // threads, 32)
    samtools_cmds = [
        Command.of("samtools", "fixmate", "-u", "-m", "-", "-"),
        Command.of(
            "samtools",
            "sort",
            "-u",
            "-@",
            str(threads),
            "-m",
            f"{per_thread_mb}M",
            "-T",
            Data("tmp/sort"),
            "-",
        ),
        # merge | markdup exactly as the gather runs them (merge re-appends each record's RG
        # tag, so even a sample of one chunk gets the byte-identical records of many chunks)
        *_gather_commands(threads, 1),
    ]
    values = {
        "first-read": "0",
        "unit0.bam": "-",
        "reference": str(reference_fasta),
        "read-group": _read_group_line(read_group),
        "tmp/sort": str(tmp / "sort"),
        "tmp/markdup": str(tmp / "markdup"),
        "markdup.stats": str(stats),
        "bam##idx##bai": f"{bam}##idx##{bai}",
    }
    counts = _feed_and_align((reads_r1, reads_r2), [align_cmd, *samtools_cmds], values, tmp)
    read_pairs = counts[0].records
    metrics = _check_and_measure(bam, bai, reference_fasta, read_pairs, threads)
    shutil.rmtree(tmp, ignore_errors=True)
    tools = [
        ToolProvenance(name=aligner, version=tool_version(aligner), command=align_cmd.display()),
        ToolProvenance(
            name="samtools",
            version=tool_version("samtools"),
            command=display_pipeline(samtools_cmds),
        ),
    ]
    return AlignmentResult(
        bam=bam, bai=bai, metrics=metrics, tools=tools, read_pairs=read_pairs, markdup_stats=stats
    )


def _check_and_measure(
    bam: Path, bai: Path, reference_fasta: Path, expected_pairs: int, threads: int
) -> AlignmentMetrics:
    """Prove the BAM (BGZF EOF, an index, one primary record per input read), then measure it."""
    require_bgzf_eof(bam, "the BAM")
    require_nonempty(bai, "the BAM index")
    flags = _flagstat(bam, threads)
    expected_reads = 2 * expected_pairs
    if flags.primary != expected_reads:
        raise ReadCountMismatch(
            f"the BAM holds {flags.primary} primary records but the input held "
            f"{expected_reads} reads ({expected_pairs} pairs)"
        )
    mapped = flags.primary_mapped
    return AlignmentMetrics(
        reads_total=flags.primary,
        mapping_rate=mapped / flags.primary,
        duplicate_rate=min(flags.primary_duplicates / mapped, 1.0) if mapped else 0.0,
        mean_coverage=mean_coverage(bam, reference_fasta),
    )


# --- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlagCounts:
    primary: int
    primary_mapped: int
    primary_duplicates: int


def _flagstat(bam: Path, threads: int) -> FlagCounts:
    """Primary, mapped and duplicate counts in one pass over the BAM.

    flagstat's "primary" is exactly ``samtools view -c -F 0x900`` (neither secondary nor
    supplementary); QC-failed reads are added back, since they are reads too.
    """
    report = json.loads(
        run_tool(["samtools", "flagstat", "-@", str(max(threads - 1, 0)), "-O", "json", str(bam)])
    )

    def total(key: str) -> int:
        return sum(int(report[group][key]) for group in ("QC-passed reads", "QC-failed reads"))

    return FlagCounts(total("primary"), total("primary mapped"), total("primary duplicates"))


def _coverage_rows(bam: Path) -> Iterator[tuple[str, int, float]]:
    for line in run_tool(["samtools", "coverage", str(bam)]).splitlines():
        if line.startswith("#") or not line.strip():
            continue
        cols = line.split("\t")
        name, start, end, meandepth = cols[0], int(cols[1]), int(cols[2]), float(cols[6])
        yield name, end - start + 1, meandepth


def mean_coverage(bam: Path, reference_fasta: Path) -> float:
    """Mean depth over the whole reference, duplicates excluded (samtools coverage's defaults).

    ``samtools coverage`` reports one mean per contig in a single pass, far cheaper than
    summing ``samtools depth -a`` in Python; weighting by contig length gives the genome mean.
    The denominator is the reference's length, so contigs without reads count as zero.
    """
    by_contig = {name: (length, depth) for name, length, depth in _coverage_rows(bam)}
    fai = Path(str(reference_fasta) + ".fai")
    lengths = dict(read_fai(fai)) if fai.is_file() else {n: ln for n, (ln, _) in by_contig.items()}
    genome = sum(lengths.values())
    if genome == 0:
        return 0.0
    covered = sum(length * depth for length, depth in by_contig.values())
    return covered / genome


__all__ = [
    "BWA_INDEX_SUFFIXES",
    "AlignmentResult",
    "ReadCountMismatch",
    "ReferenceNotIndexed",
    "UnitAlignment",
    "align",
    "align_unit",
    "bwa_takes_read_offset",
    "gather_alignments",
    "index_reference",
    "mean_coverage",
]
