"""How a genotype is keyed: one integer per allele, one per call, both ordered by position.

A whole genome is ~4.5 million calls. Stored a row each, 60,000 genomes are 270 billion rows;
stored as per-sample blocks (one row per sample x bin of ``BIN_SIZE`` bp) they are ~24,000 rows
a genome, and a call is one 4-byte integer in its block's sorted array:

    call = offset-in-bin << 14 | allele code << 2 | alt count      (17 + 12 + 2 = 31 bits)

and a variant (one allele at one position of one contig) is one 8-byte key, ordered by contig,
then position, then allele, so that a region is one key range:

    key = contig_no << 44 | pos << 12 | allele code                 (19 + 32 + 12 = 63 bits)
        = contig_no << 44 | bin << 29 | call >> 2

Allele codes 1-12 are the twelve single-base substitutions, fixed, so the ~85 % of calls that
are SNVs need no dictionary at all; every other allele at a position (indels, MNVs, bases other
than ACGT) gets a code from 16 up in the order the registry first meets it (``variant_alleles``).
The SQL functions of migration 0013 compute exactly these numbers; ``tests/registry`` holds the
two to each other.
"""

from __future__ import annotations

from typing import NamedTuple

#: Bits of a position within its bin: bins of 131,072 bp (~100 kb), ~24,000 per human genome.
BIN_BITS = 17
BIN_SIZE = 1 << BIN_BITS
CODE_BITS = 12
#: The highest allele code: at most 4,080 alleles other than SNVs at one position.
MAX_CODE = (1 << CODE_BITS) - 1
FIRST_DICTIONARY_CODE = 16
#: Contig numbers fit in the key's top 19 bits (GRCh38 with alts and decoys has ~3,400).
MAX_CONTIG_NO = (1 << 19) - 1
MAX_POS = (1 << 32) - 1
#: The largest depth and genotype quality a block stores; larger values are stored as these.
MAX_QUAL = 32_766

BASES = "ACGT"
#: Code -> (ref, alt) of the twelve SNVs, index = code (0 and 13-15 unused).
SNVS: tuple[tuple[str, str] | None, ...] = (
    None,
    *((ref, alt) for ref in BASES for alt in BASES if ref != alt),
    None, None, None,
)
_SNV_CODE = {pair: code for code, pair in enumerate(SNVS) if pair is not None}


class InvalidAllele(ValueError):
    """A position or code outside what a key can hold."""


def snv_code(ref: str, alt: str) -> int | None:
    """The fixed code of a single-base substitution of ACGT bases, or None for any other allele."""
    return _SNV_CODE.get((ref, alt))


def snv_of(code: int) -> tuple[str, str] | None:
    """(ref, alt) of a fixed SNV code, None for a dictionary code."""
    return SNVS[code] if 0 <= code < FIRST_DICTIONARY_CODE else None


def variant_key(contig_no: int, pos: int, code: int) -> int:
    if not 0 <= contig_no <= MAX_CONTIG_NO:
        raise InvalidAllele(f"contig number {contig_no} does not fit a variant key")
    if not 1 <= pos <= MAX_POS:
        raise InvalidAllele(f"position {pos} does not fit a variant key")
    if not 1 <= code <= MAX_CODE:
        raise InvalidAllele(f"allele code {code} does not fit a variant key")
    return contig_no << 44 | pos << CODE_BITS | code


class Key(NamedTuple):
    contig_no: int
    pos: int
    code: int


def split_key(key: int) -> Key:
    return Key(key >> 44, (key >> CODE_BITS) & MAX_POS, key & MAX_CODE)


def bin_of(pos: int) -> int:
    return pos >> BIN_BITS


def call(pos: int, code: int, alt_count: int) -> int:
    """A call's integer in its block (the block's bin is ``bin_of(pos)``)."""
    if alt_count not in (1, 2):
        raise InvalidAllele(f"alt count {alt_count}: a stored call carries one or two copies")
    return (pos & (BIN_SIZE - 1)) << 14 | code << 2 | alt_count


def key_of_call(contig_no: int, bin_: int, call_: int) -> int:
    return contig_no << 44 | bin_ << (BIN_BITS + CODE_BITS) | call_ >> 2


def alt_count_of(call_: int) -> int:
    return call_ & 3


def qual(dp: int | None, gq: int | None) -> int:
    """Depth and genotype quality in one integer (0 = not given), each capped at ``MAX_QUAL``."""
    def one(value: int | None) -> int:
        return 0 if value is None else min(max(value, 0), MAX_QUAL) + 1

    return one(dp) << 16 | one(gq)


def dp_gq(qual_: int) -> tuple[int | None, int | None]:
    dp, gq = qual_ >> 16, qual_ & 0xFFFF
    return (dp - 1 if dp else None), (gq - 1 if gq else None)
