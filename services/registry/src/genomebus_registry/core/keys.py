"""How a genotype is keyed: one integer per allele, one per call, both ordered by position.

A whole genome is ~4.5 million calls. Stored a row each, 60,000 genomes are 270 billion rows;
stored as per-sample blocks (one row per sample x bin of ``BIN_SIZE`` bp) they are ~12,000 rows
a genome, and a call is one 4-byte integer in its block's sorted array:

    call = offset-in-bin << 13 | allele code << 2 | alt count      (18 + 11 + 2 = 31 bits)

and a variant (one allele at one position of one contig) is one 8-byte key, ordered by contig,
then position, then allele, so that a region is one key range:

    key = contig_no << 43 | pos << 11 | allele code                 (20 + 32 + 11 = 63 bits)
        = contig_no << 43 | bin << 29 | call >> 2

Bins of 262,144 bp hold ~380 calls of a genome: a block row of ~3 kB, above the ~2 kB from which
PostgreSQL compresses a row (lz4), so a stored genotype costs well under its 8 raw bytes.

Allele codes 1-12 are the twelve single-base substitutions, fixed, so the ~85 % of calls that
are SNVs need no dictionary at all; every other allele at a position (indels, MNVs, bases other
than ACGT) gets a code from 16 up in the order the registry first meets it (``variant_alleles``).
The SQL functions of migration 0013 compute exactly these numbers; ``tests/registry`` holds the
two to each other.
"""

from __future__ import annotations

from typing import NamedTuple

#: Bits of a position within its bin: bins of 262,144 bp, ~12,000 per human genome.
BIN_BITS = 18
BIN_SIZE = 1 << BIN_BITS
CODE_BITS = 11
#: The highest allele code: at most 2,032 alleles other than SNVs at one position.
MAX_CODE = (1 << CODE_BITS) - 1
FIRST_DICTIONARY_CODE = 16
POS_BITS = 32
#: Where the contig number starts in a key, and where the offset starts in a call.
CONTIG_SHIFT = POS_BITS + CODE_BITS
OFFSET_SHIFT = CODE_BITS + 2
#: Contig numbers fit in the key's top 20 bits (GRCh38 with alts and decoys has ~3,400).
MAX_CONTIG_NO = (1 << (63 - CONTIG_SHIFT)) - 1
#: Positions are PostgreSQL integers (the key's top position bit stays 0).
MAX_POS = (1 << (POS_BITS - 1)) - 1
#: A block holds a call's depth and genotype quality in a byte each: up to 253 as they are,
#: ``DEEP_QUAL`` when the value is that or more (the value itself is in deep_calls), ``NOT_GIVEN``
#: when the VCF gave none.
DEEP_QUAL = 254
NOT_GIVEN = 255

BASES = "ACGT"
#: Code -> (ref, alt) of the twelve SNVs, index = code (0 and 13-15 unused).
SNVS: tuple[tuple[str, str] | None, ...] = (
    None,
    *((ref, alt) for ref in BASES for alt in BASES if ref != alt),
    None,
    None,
    None,
)
#: (ref, alt) -> code of the twelve SNVs.
SNV_CODES: dict[tuple[str, str], int] = {
    pair: code for code, pair in enumerate(SNVS) if pair is not None
}


class InvalidAllele(ValueError):
    """A position or code outside what a key can hold."""


def snv_code(ref: str, alt: str) -> int | None:
    """The fixed code of a single-base substitution of ACGT bases, or None for any other allele."""
    return SNV_CODES.get((ref, alt))


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
    return contig_no << CONTIG_SHIFT | pos << CODE_BITS | code


class Key(NamedTuple):
    contig_no: int
    pos: int
    code: int


def split_key(key: int) -> Key:
    return Key(key >> CONTIG_SHIFT, (key >> CODE_BITS) & MAX_POS, key & MAX_CODE)


def bin_of(pos: int) -> int:
    return pos >> BIN_BITS


def call(pos: int, code: int, alt_count: int) -> int:
    """A call's integer in its block (the block's bin is ``bin_of(pos)``)."""
    if alt_count not in (1, 2):
        raise InvalidAllele(f"alt count {alt_count}: a stored call carries one or two copies")
    return (pos & (BIN_SIZE - 1)) << OFFSET_SHIFT | code << 2 | alt_count


def key_of_call(contig_no: int, bin_: int, call_: int) -> int:
    return contig_no << CONTIG_SHIFT | bin_ << (BIN_BITS + CODE_BITS) | call_ >> 2


def alt_count_of(call_: int) -> int:
    return call_ & 3


def small_qual(value: int | None) -> int:
    """A depth or genotype quality as a block's byte holds it (0-255; SQL registry_small stores
    it less 128 in a "char"): the value up to 253, ``DEEP_QUAL`` for "this or more, see
    deep_calls", ``NOT_GIVEN`` for none."""
    return NOT_GIVEN if value is None else min(max(value, 0), DEEP_QUAL)
