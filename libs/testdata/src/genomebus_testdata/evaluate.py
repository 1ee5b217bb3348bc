"""Accuracy of a call set against a truth set, per variant type.

Why allele matching on normalised records (not exact line comparison, not haplotype-aware
comparison like hap.py/vcfeval): both sides are run through the same ``bcftools norm`` first
(left-align, split, atomize), which makes the usual differences in how an indel is written
disappear; what remains to compare is (chrom, pos, ref, alt). That is genotype-agnostic on
purpose: "did the caller find the allele" and "did it get the zygosity right" are different
questions, so the second is reported separately as genotype concordance among the matches.
Complex variants written as different combinations of alleles can still be missed; with
mason's isolated SNVs and short indels that is rare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .vcf import Record, normalized

KINDS = ("snv", "indel")
PASSING = ("PASS", ".")

Key = tuple[str, int, str, str]


@dataclass(frozen=True)
class TypeAccuracy:
    """Counts and rates for one variant type (true/false positives, false negatives)."""

    kind: str
    tp: int
    fp: int
    fn: int
    genotype_matches: int
    false_positives: tuple[Key, ...] = field(default=(), repr=False)
    false_negatives: tuple[Key, ...] = field(default=(), repr=False)

    @property
    def truth_count(self) -> int:
        return self.tp + self.fn

    @property
    def call_count(self) -> int:
        return self.tp + self.fp

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def genotype_concordance(self) -> float:
        """Share of true positives whose ALT dosage (0/1/2 copies) matches the truth."""
        return self.genotype_matches / self.tp if self.tp else 1.0

    def line(self) -> str:
        return (
            f"{self.kind:<6} truth {self.truth_count:>6}  calls {self.call_count:>6}  "
            f"TP {self.tp:>6}  FP {self.fp:>5}  FN {self.fn:>5}  "
            f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  "
            f"GT concordance {self.genotype_concordance:.4f}"
        )


@dataclass(frozen=True)
class Accuracy:
    """SNV and indel accuracy of one call set; ``other`` counts records outside both types."""

    snv: TypeAccuracy
    indel: TypeAccuracy
    calls_vcf: Path
    truth_vcf: Path
    ignored_calls: int  # filtered (non-PASS), genotype 0/0 or ./., or of kind "other"

    def summary(self) -> str:
        return "\n".join(
            [
                f"calls {self.calls_vcf} vs truth {self.truth_vcf}",
                self.snv.line(),
                self.indel.line(),
                f"ignored call records (filtered, no ALT in genotype, other): {self.ignored_calls}",
            ]
        )

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"ignored_calls": self.ignored_calls}
        for acc in (self.snv, self.indel):
            for name in ("tp", "fp", "fn", "precision", "recall", "f1", "genotype_concordance"):
                value = getattr(acc, name)
                out[f"{acc.kind}_{name}"] = round(value, 6) if isinstance(value, float) else value
        return out


def evaluate(
    calls_vcf: Path | str,
    truth_vcf: Path | str,
    reference: Path | str,
    *,
    pass_only: bool = True,
) -> Accuracy:
    """Score ``calls_vcf`` against ``truth_vcf``; both must be on ``reference``'s contigs.

    With ``pass_only`` a call counts only if FILTER is PASS or ``.``, as a downstream user would
    see it. Calls whose genotype carries no ALT allele (``0/0``, ``./.``) are not calls.
    """
    calls_path, truth_path, ref = Path(calls_vcf), Path(truth_vcf), Path(reference)
    truth = _by_key(normalized(truth_path, ref), pass_only=False)[0]
    calls, ignored = _by_key(normalized(calls_path, ref), pass_only=pass_only)
    per_kind = {kind: _compare(kind, calls, truth) for kind in KINDS}
    ignored += sum(1 for record in calls.values() if record.kind not in KINDS)
    return Accuracy(
        snv=per_kind["snv"],
        indel=per_kind["indel"],
        calls_vcf=calls_path,
        truth_vcf=truth_path,
        ignored_calls=ignored,
    )


def _by_key(records: list[Record], *, pass_only: bool) -> tuple[dict[Key, Record], int]:
    kept: dict[Key, Record] = {}
    ignored = 0
    for record in records:
        no_alt = record.gt is not None and not record.dosage  # 0/0, ./. (None when no sample)
        if (pass_only and record.filter not in PASSING) or no_alt:
            ignored += 1
            continue
        # A sites-only VCF (gt None) still counts; it just never matches a genotype.
        kept.setdefault(record.key, record)
    return kept, ignored


def _compare(kind: str, calls: dict[Key, Record], truth: dict[Key, Record]) -> TypeAccuracy:
    call_keys = {k for k, r in calls.items() if r.kind == kind}
    truth_keys = {k for k, r in truth.items() if r.kind == kind}
    matched = call_keys & truth_keys
    gt_matches = sum(
        1 for k in matched if calls[k].dosage is not None and calls[k].dosage == truth[k].dosage
    )
    return TypeAccuracy(
        kind=kind,
        tp=len(matched),
        fp=len(call_keys - truth_keys),
        fn=len(truth_keys - call_keys),
        genotype_matches=gt_matches,
        false_positives=tuple(sorted(call_keys - truth_keys)),
        false_negatives=tuple(sorted(truth_keys - call_keys)),
    )
