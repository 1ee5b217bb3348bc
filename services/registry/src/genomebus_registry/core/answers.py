"""The research and treatment answers' shapes, as the API returns them.

Research counts are built through ``disclosure`` only (``AlleleCounts.disclose``): no count
leaves the registry without the small-cell rule applied to it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from . import disclosure

#: Region answers come a page at a time (keyset pagination on the answer's order), so that an
#: answer costs the same whatever the region holds and no client waits for 8,000 rows at once.
#: 100 by default (``make bench-registry`` prints what a page costs); a client that wants the
#: whole region at once asks for up to the maximum.
REGION_PAGE_DEFAULT = 100
REGION_PAGE_MAX = 10_000

#: The clinical view comes a page at a time too: a whole genome is ~4.5 million variants.
PATIENT_PAGE_DEFAULT = 1_000
PATIENT_PAGE_MAX = 10_000


class AlleleCounts(BaseModel):
    """Research counts of one allele on one reference, over research-consenting patients, as
    ``disclosure`` lets them be shown: an int is exact, a string is a bound."""

    variant_id: str
    reference_digest: str
    chrom: str
    pos: int
    ref: str
    alt: str
    carriers: int | str
    allele_count: int | str
    allele_number: int | str
    allele_frequency: float | None
    suppressed: str | None = Field(
        None, description="Why some counts are withheld (small-cell rule); absent when none is."
    )

    @classmethod
    def disclose(
        cls, *, carriers: int, allele_count: int, samples: int, threshold: int, **ident: object
    ) -> AlleleCounts:
        """The counts over ``samples`` research patients, small cells withheld (disclosure.py)."""
        shown = disclosure.disclose(disclosure.Cells(samples, carriers, allele_count), threshold)
        return cls(**shown._asdict(), **ident)  # type: ignore[arg-type]  # ident: the answer's own fields


class AlleleAnswer(BaseModel):
    chrom: str
    pos: int
    ref: str
    alt: str
    results: list[AlleleCounts]


class RegionAnswer(BaseModel):
    chrom: str
    start: int
    end: int
    variants: list[AlleleCounts]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


class PatientVariant(BaseModel):
    sample_id: str
    variant_id: str
    reference_digest: str
    chrom: str
    pos: int
    ref: str
    alt: str
    zygosity: str
    alt_count: int
    dp: int | None
    gq: int | None


class PatientSample(BaseModel):
    sample_id: str
    hospital_id: str | None
    reference_id: str
    reference_digest: str


class PatientVariants(BaseModel):
    patient_pseudonym: str
    samples: list[PatientSample]
    variants: list[PatientVariant] = Field(
        description="A page of the patient's variants, sample by sample in position order."
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


def zygosity(alt_count: int) -> str:
    """How a treating hospital reads a stored call's one or two ALT copies."""
    return "homozygous" if alt_count == 2 else "heterozygous"
