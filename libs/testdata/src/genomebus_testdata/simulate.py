"""A simulated diploid sample: known variants (the truth VCF) and paired-end Illumina reads.

mason_variator (seqan-apps) draws the variants, mason_simulator applies them to the two
haplotypes and sequences fragments. Three quirks of mason 2.0.9 are fixed in between:

* its VCF has a genotype column under ``FORMAT`` = ``.`` and no ``##FORMAT=<ID=GT>`` header, so
  bcftools cannot see the genotypes; the column is relabelled ``GT``;
* it now and then writes one SNP as two records at the same position (``G>A 1|0`` then
  ``G>A 0|1``), which bcftools would count as two truth variants; these are merged;
* it draws each haplotype's SNP base independently (but never both reference), so ~1/2 of its
  SNPs are tri-allelic (``C>A,T 1|2``), ~1/2 homozygous and almost none heterozygous with the
  reference. Humans are the other way round (~2:1 het:hom, tri-allelic SNVs rare), and a caller
  scored on tri-allelic sites is scored on something it rarely meets. Each tri-allelic SNP is
  therefore rewritten as a het SNP keeping one of its two alleles (chosen with the sample's seed),
  which gives ~2:1 het:hom. mason_simulator is then fed the rewritten VCF, so the reads and the
  truth agree by construction.

Everything is deterministic for (reference content, parameters, seed, thread count): mason_simulator
seeds one random generator per thread, so the reads depend on the thread count (default 1).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import cache
from .reference import describe
from .tools import ToolArg, run

TRUTH_VCF = "truth.vcf.gz"
READS_1 = "reads_1.fq.gz"
READS_2 = "reads_2.fq.gz"
MANIFEST = "sample.json"


@dataclass(frozen=True)
class SimulatedSample:
    """Where a simulated sample's files are and what they hold."""

    reference: Path
    truth_vcf: Path  # bgzipped, with a .tbi beside it
    reads_1: Path
    reads_2: Path
    read_pairs: int
    read_length: int
    seed: int
    snv_count: int
    indel_count: int
    het_count: int
    hom_count: int
    reference_length: int

    @property
    def coverage(self) -> float:
        return 2 * self.read_pairs * self.read_length / self.reference_length

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update({k: str(v) for k, v in data.items() if isinstance(v, Path)})
        data["coverage"] = round(self.coverage, 2)
        return data


def read_pairs_for(coverage: float, length: int, read_length: int = 150) -> int:
    """Pairs needed for ``coverage`` x over ``length`` bases:
    coverage * length / (2 * read_length)."""
    return max(1, math.ceil(coverage * length / (2 * read_length)))


def simulate_sample(
    reference: Path | str,
    out_dir: Path | str,
    *,
    read_pairs: int,
    seed: int,
    snv_rate: float = 0.001,
    indel_rate: float = 0.0001,
    read_length: int = 150,
    max_indel_size: int = 6,
    fragment_mean: int = 350,
    fragment_sd: int = 35,
    threads: int = 1,
) -> SimulatedSample:
    """Make (or reuse, when the manifest and file hashes match) a sample in ``out_dir``.

    The rates are per base: human-like defaults are ~1 SNV per kb and ~1 small indel per 10 kb.
    Indels are 1..``max_indel_size`` bp, always heterozygous (mason puts each on one haplotype).
    ``threads`` speeds mason_simulator up but is part of the sample's identity: mason seeds one
    random generator per thread, so other thread counts give other (equally valid) reads.
    """
    ref = Path(reference).resolve()
    if ref.suffix not in (".fa", ".fasta"):
        raise ValueError(f"mason needs an uncompressed .fa/.fasta reference, got {ref.name}")
    if read_pairs < 1 or read_length < 1 or fragment_mean <= read_length // 2:
        raise ValueError("need read_pairs >= 1 and fragments longer than half a read")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = {
        "reference_sha256": cache.sha256_file(ref),
        "read_pairs": read_pairs,
        "seed": seed,
        "snv_rate": snv_rate,
        "indel_rate": indel_rate,
        "read_length": read_length,
        "max_indel_size": max_indel_size,
        "fragment_mean": fragment_mean,
        "fragment_sd": fragment_sd,
        "threads": threads,
    }
    manifest = out / MANIFEST
    reused = cache.load_valid(manifest, params)
    if reused is not None:
        return _sample(ref, out, params, reused["counts"])

    with tempfile.TemporaryDirectory(dir=out, prefix=".simulating-") as tmp_name:
        tmp = Path(tmp_name)
        raw_vcf, truth_vcf = tmp / "mason.vcf", tmp / "truth.vcf"
        run([
            "mason_variator", "-q", "-ir", ref, "-ov", raw_vcf, "--num-haplotypes", "2",
            "--seed", seed, "--snp-rate", snv_rate, "--small-indel-rate", indel_rate,
            "--min-small-indel-size", 1, "--max-small-indel-size", max_indel_size,
            "--sv-indel-rate", 0, "--sv-inversion-rate", 0,
            "--sv-translocation-rate", 0, "--sv-duplication-rate", 0,
        ])  # fmt: skip
        fastq_1, fastq_2 = READS_1.removesuffix(".gz"), READS_2.removesuffix(".gz")
        counts = fix_mason_vcf(raw_vcf, truth_vcf, seed=seed, reference_name=ref.name)
        # fmt: off
        simulator: list[ToolArg] = [
            "mason_simulator", "-q", "-ir", ref, "-iv", truth_vcf, "-n", read_pairs,
            "--seed", seed, "--num-threads", threads, "-o", tmp / fastq_1, "-or", tmp / fastq_2,
            "--seq-technology", "illumina", "--illumina-read-length", read_length,
            "--fragment-mean-size", fragment_mean, "--fragment-size-std-dev", fragment_sd,
        ]
        # fmt: on
        # mason spills per-haplotype temporary files into TMPDIR: keep them inside out_dir.
        run(simulator, cwd=tmp, env={"TMPDIR": str(tmp)})
        # mason's own gzip writer is slow (2/3 of the run); bgzip gives the same reads as BGZF
        # (plain gzip to every reader, and the same bytes whatever the thread count).
        for fastq in (fastq_1, fastq_2):
            run(["bgzip", "-f", "-@", _cpus(), tmp / fastq])
        run(["bgzip", "-f", truth_vcf])
        run(["tabix", "-f", "-p", "vcf", tmp / TRUTH_VCF])
        for name in (TRUTH_VCF, TRUTH_VCF + ".tbi", READS_1, READS_2):
            os.replace(tmp / name, out / name)
    files = [out / n for n in (TRUTH_VCF, TRUTH_VCF + ".tbi", READS_1, READS_2)]
    cache.write(manifest, params, files, counts=counts)
    return _sample(ref, out, params, counts)


def fix_mason_vcf(src: Path, dst: Path, *, seed: int, reference_name: str) -> dict[str, int]:
    """Rewrite mason_variator's VCF into a valid, human-like truth set (see the module docstring).

    Besides the GT column and the tri-allelic SNPs it merges mason's occasional split sites (one
    SNP written as two records at the same position, ``1|0`` and ``0|1``) into one record, and
    replaces ``##reference=`` (mason writes the path it was given, which would make the bytes
    depend on where the data live). Returns counts of SNVs, indels, het and hom records.
    """
    rng = random.Random(f"genomebus-testdata-genotypes-{seed}")
    header: list[str] = []
    records: list[list[str]] = []
    with src.open() as handle:
        for line in handle:
            if line.startswith("##reference="):
                header.append(f"##reference={reference_name}\n")
            elif line.startswith("##FORMAT=<ID=GT"):
                continue
            elif line.startswith("#CHROM"):
                header.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
                header.append(line)
            elif line.startswith("#"):
                header.append(line)
            else:
                records.append(line.rstrip("\n").split("\t"))

    counts = {"snv": 0, "indel": 0, "het": 0, "hom": 0}
    body: list[str] = []
    for fields in _merge_split_snps(records):
        ref, alts = fields[3], fields[4].split(",")
        alleles = [int(a) for a in fields[9].replace("/", "|").split("|")]
        if len(alts) == 2 and len(alleles) == 2 and 0 not in alleles and alleles[0] != alleles[1]:
            keep = rng.randrange(2)
            fields[4] = alts[alleles[keep] - 1]
            alts = [fields[4]]
            alleles = [1 if i == keep else 0 for i in range(2)]
        fields[8] = "GT"
        fields[9] = "|".join(str(a) for a in alleles)
        is_snv = len(ref) == 1 and all(len(a) == 1 for a in alts)
        counts["snv" if is_snv else "indel"] += 1
        counts["hom" if len(set(alleles)) == 1 else "het"] += 1
        body.append("\t".join(fields) + "\n")
    dst.write_text("".join(header + body))
    return counts


def _merge_split_snps(records: list[list[str]]) -> list[list[str]]:
    """Join consecutive SNP records at the same position into one record with per-haplotype
    bases (the first record's ID is kept); everything else passes through unchanged."""
    merged: list[list[str]] = []
    for fields in records:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev[0] == fields[0]
            and prev[1] == fields[1]
            and prev[3] == fields[3]
            and len(fields[3]) == 1
            and all(len(a) == 1 for a in prev[4].split(",") + fields[4].split(","))
        ):
            merged[-1] = _join_snp(prev, fields)
        else:
            merged.append(list(fields))
    return merged


def _join_snp(a: list[str], b: list[str]) -> list[str]:
    def bases(fields: list[str]) -> list[str]:
        alleles = [fields[3]] + fields[4].split(",")
        return [alleles[int(i)] for i in fields[9].replace("/", "|").split("|")]

    ref = a[3]
    haplotypes = [x if x != ref else y for x, y in zip(bases(a), bases(b), strict=True)]
    alts = list(dict.fromkeys(h for h in haplotypes if h != ref))
    order = [ref, *alts]
    joined = list(a)
    joined[4] = ",".join(alts)
    joined[9] = "|".join(str(order.index(h)) for h in haplotypes)
    return joined


def _cpus() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _sample(
    ref: Path, out: Path, params: dict[str, Any], counts: dict[str, int]
) -> SimulatedSample:
    return SimulatedSample(
        reference=ref,
        truth_vcf=out / TRUTH_VCF,
        reads_1=out / READS_1,
        reads_2=out / READS_2,
        read_pairs=params["read_pairs"],
        read_length=params["read_length"],
        seed=params["seed"],
        snv_count=counts["snv"],
        indel_count=counts["indel"],
        het_count=counts["het"],
        hom_count=counts["hom"],
        reference_length=describe(ref).length,
    )
