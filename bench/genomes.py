"""Synthetic whole-genome variant calls for the registry bench: fast, deterministic, pure Python.

The registry bench needs ~40 genomes of ~4.5 million variant sites each, shaped like real
short-read WGS calls against GRCh38, so that table sizes, index fan-out, per-variant counts and
the overlap between samples look like production. numpy is not available, so everything here is
the standard library, written so that the heavy lifting runs in C (``array``, ``map``,
``itertools.accumulate``, ``operator.itemgetter``, list slicing, ``list.sort``) and Python-level
loops only touch the sites a genome carries (or, for common classes, the few it does not).

API: ``CONTIGS``; ``make_population(seed, sites_per_genome=4_500_000) -> Population`` (the shared
pool); ``genome(pop, index) -> list[(chrom, pos, ref, alt, alt_count, dp, gq)]``.

How each realism requirement is met, with the expected figures (measured ones: end of this
docstring):

* One shared population pool, neutral allele frequency spectrum. Pool sites have an alternate
  allele frequency ``f`` with density proportional to ``1/f`` on ``[1/(2*60000), 1]`` (the
  neutral spectrum of a constant-size population of effective size 60,000). The range is cut
  into 64 bins of equal width in ``log f``: with a ``1/f`` density every bin holds the same
  share of the pool, so a pool site's bin is one uniform random byte (no per-site float work).
  Each bin uses its exact density-weighted mean carrying and homozygous probabilities (closed
  forms), so expected counts are exact, not a bin-midpoint approximation. 61% of pool sites have
  ``f < 1%``, yet 93% of one genome's sites have ``f >= 5%``: the pool is mostly rare, a genome
  mostly common and shared (about 60% of a genome's sites are in any other given genome, 74% in
  at least one of two others, ~97% in at least one of 39 others).
* Genotypes. Hardy-Weinberg with an inbreeding-like coefficient ``F`` = 0.08:
  ``P(hom) = f^2 + F f(1-f)``, ``P(het) = 2f(1-f)(1-F)``. Plain HWE on a ``1/f`` spectrum gives
  het/hom = 2.0 (het integrates to 1, hom to 1/2), the top of the real range; real genomes sit
  lower (sub-structure, i.e. a Wahlund effect, and bottlenecked demography), and ``F`` stands in
  for both: het/hom = 2(1-F)/(1+F) = 1.70 over pool sites, ~1.73-1.75 per genome once the
  all-heterozygous private sites are added and two-allele multi-allelic carriers are made
  heterozygous.
* Private sites. Every genome also gets a uniform 20,000-50,000 (scaled with
  ``sites_per_genome``) heterozygous sites carried by no other genome. They sit on a base
  reserved in each pool slot (its last one, which pool sites never use) and the slot is
  ``Feistel(index * 50,000 + j)``, a keyed bijection: two genomes can never draw the same
  private site and no pool site shares its position. (Hence ``index < pop.max_genomes``, ~700.)
* Size. The pool size is solved from ``sites_per_genome``: a genome carries a pool site with
  mean probability 0.1248, so 4.5 M sites per genome take ~35.8 M pool sites in ~35.1 M
  positions; genomes come out within ~0.3% of the target (binomial noise only).
* Allele types. 87.5% SNVs (Ts/Tv 2.0, A/T refs slightly more common than C/G), the rest
  deletions (6%), insertions (5%) and same-length MNVs (1.5%) with ref or alt 2-20 bases, the
  first base shared, bases from ACGT, lengths geometric (1-base indels most common).
* Multi-allelic sites. 1.5% of pool positions carry 2 (80%) or 3 (20%) different ALT alleles,
  all starting with the same ref base (SNVs share the ref; an indel there has a longer ref),
  each allele in its own frequency class. A genome carrying two of them gets one row per
  allele, each with alt_count 1 (a diploid genome cannot hold three: one is dropped). About
  11,000 multi-allelic positions per genome.
* Positions. Each contig gets a number of slots proportional to its length; slot ``j`` of a
  contig of length ``L`` with ``n`` slots starts at ``j*L//n + 1`` (slots ~88 bases) and holds
  one pool position at a uniform offset, so positions cover ``[1, L]`` evenly and never repeat.
  chrX is treated as diploid like the autosomes.
* dp/gq. From a fixed table of 4,096 (dp, gq) pairs: dp follows the quantiles of a
  gamma-Poisson (negative binomial) with mean 30, sd ~9.3 (median 29, 5th-95th percentile
  16-46, at least 3), 0.1% None; gq is 99 for ~92.6% of rows, otherwise lower (20-98; 6-45 when
  dp < 8), 0.1% None.
* Order and uniqueness. A row's sort key is ``slot * 16 + s`` (``s``: 0/1 for a biallelic pool
  site het/hom, 2..7 for a multi-allelic allele by (ref, alt) rank and zygosity, 8 for a
  private site, which sits after the pool position in its slot). Keys stay below 2**30, so
  ``list.sort`` uses CPython's fast single-digit int comparison, and key order is exactly
  (contig, pos, ref, alt) order; each frequency class yields an already sorted run, so the sort
  merges ~66 runs rather than sorting from scratch.

Speed and memory. Per genome, each class of ``n`` sites with carrying probability ``p`` is
sampled as independent Bernoulli(``p``) draws (an exact binomial count, no normal
approximation) from geometric gaps between picked indices (``p <= 1/2``) or between skipped ones
(``p > 1/2``, the kept stretches copied as array slices), so Python-level work is
``O(n * min(p, 1-p))``, never ``O(pool)``; homozygous sites are marked the same way. The pool is
compact: per slot a position (``array('I')``) and an allele id (``array('H')``; ids are ordered
by weight so common alleles are CPython's cached small ints), per class the sorted keys of its
sites (``array('I')``), and a dict for the ~0.5 M multi-allelic positions: ~0.5 GB RSS. The
cyclic garbage collector is paused while a genome's rows are built: ~4.5 M tuples of str, int
and None cannot form cycles, but would trigger repeated full collections. A genome's row list
itself takes ~0.6 GB; drop it before making the next.

Determinism. The pool comes from ``random.Random(f"genomes:pool:{seed}")``, genome ``i`` from
``random.Random(f"genomes:genome:{seed}:{i}")`` (the random module turns string seeds into ints
with SHA-512, never with ``hash()``, so PYTHONHASHSEED does not matter), and the allele and
dp/gq tables from fixed string seeds: the same (seed, index) gives the same rows on every run
with the same CPython version.

Measured with ``python bench/genomes.py`` (seed 5, 3 genomes, this 2-core machine, shared with
other load): pool build 9.9-15 s (13.4 s in the last run); 3.0-3.9 s per genome;
4,484,000-4,512,000 sites per genome; het/hom 1.73-1.75; SNV fraction 0.872; ~11,000
multi-allelic positions per genome; 2.01 M sites shared by all 3, union 7.47 M; peak RSS 0.52 GB
after the pool, 1.45 GB at the end (one genome's rows plus the self-check's key sets).
"""

from __future__ import annotations

import bisect
import gc
import math
import random
import resource
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, pairwise, repeat
from operator import add, floordiv, itemgetter, mod
from typing import TypeVar

T = TypeVar("T")
Row = tuple[str, int, str, str, int, int | None, int | None]

CONTIGS: tuple[tuple[str, int], ...] = (
    ("chr1", 248_956_422),
    ("chr2", 242_193_529),
    ("chr3", 198_295_559),
    ("chr4", 190_214_555),
    ("chr5", 181_538_259),
    ("chr6", 170_805_979),
    ("chr7", 159_345_973),
    ("chr8", 145_138_636),
    ("chr9", 138_394_717),
    ("chr10", 133_797_422),
    ("chr11", 135_086_622),
    ("chr12", 133_275_309),
    ("chr13", 114_364_328),
    ("chr14", 107_043_718),
    ("chr15", 101_991_189),
    ("chr16", 90_338_345),
    ("chr17", 83_257_441),
    ("chr18", 80_373_285),
    ("chr19", 58_617_616),
    ("chr20", 64_444_167),
    ("chr21", 46_709_983),
    ("chr22", 50_818_468),
    ("chrX", 156_040_895),
)

# Population genetics knobs (see the module docstring for why these values).
_N_EFFECTIVE = 60_000
_F_MIN = 1.0 / (2 * _N_EFFECTIVE)
_N_CLASSES = 64  # a power of two, so a random byte & 63 is an unbiased class
_FIS = 0.08
_MULTI_FRACTION = 0.015  # pool positions with more than one ALT allele
_THIRD_ALLELE = 0.2  # of those, the share with three ALT alleles
_PRIVATE_MIN = 20_000  # private sites per genome at the default 4.5 M sites
_PRIVATE_MAX = 50_000
_DEFAULT_SITES = 4_500_000

# Allele mix (shares of allele draws).
_SNV_SHARE = 0.875
_DEL_SHARE = 0.06
_INS_SHARE = 0.05
_MNV_SHARE = 0.015
_MAX_ALLELE_LEN = 20

# Sort key layout: slot * _SUB + s (s: 0/1 biallelic het/hom, 2..7 multi-allelic rank/zygosity,
# 8 private). _EXTRA_MASK picks the rows that are not plain biallelic pool sites.
_SUB = 16
_SHIFT = 4
_EXTRA_MASK = 14
_PRIVATE_S = 8

assert array("I").itemsize == 4 and array("H").itemsize == 2


# --------------------------------------------------------------------------------------------
# Fixed tables: alleles and (dp, gq). Built once from fixed seeds, so they never vary by run.
# --------------------------------------------------------------------------------------------


def _random_seq(rng: random.Random, length: int) -> str:
    """A random ACGT string: inserted/deleted sequence has no reason to favour any base here."""
    return "".join(rng.choice("ACGT") for _ in range(length))


def _geometric_len(rng: random.Random, stop: float, cap: int) -> int:
    """Indel length 1..cap with P(len = k) ~ stop*(1-stop)^(k-1): 1-base events dominate, as in
    real call sets."""
    k = 1
    while k < cap and rng.random() > stop:
        k += 1
    return k


@dataclass(frozen=True)
class _AlleleTable:
    """All (ref, alt) pairs the generator uses, plus samplers over them.

    Allele ids are ordered by weight, most common first: the 12 SNVs and the commonest indels
    get ids below 256, which CPython keeps as shared small ints, so turning a pool slot's id
    into a row allocates nothing. Where several alleles share a position (multi-allelic sites)
    they are ranked by (ref, alt) explicitly."""

    refs: tuple[str, ...]
    alts: tuple[str, ...]
    by_u16: array  # 65,536 allele ids: a uniform 16-bit draw -> an allele with the right weight
    by_first_base: dict[str, tuple[tuple[int, ...], tuple[float, ...]]]  # base -> ids, cum weights


@lru_cache(maxsize=1)
def _alleles() -> _AlleleTable:
    """Build the allele table (cached: ~0.2 s once per process).

    SNVs: ref base weights A/T 0.27, C/G 0.23; per ref, the transition gets 2/3 of the weight
    and each transversion 1/6 (Ts/Tv = 2.0, as in WGS call sets). Indels and MNVs: 20,000 draws
    of each kind from a geometric length law; duplicates merge and keep their combined weight,
    so the length distribution is preserved."""
    rng = random.Random("genomes:alleles:v1")
    weights: dict[tuple[str, str], float] = {}
    ref_w = {"A": 0.27, "C": 0.23, "G": 0.23, "T": 0.27}
    transition = {"A": "G", "G": "A", "C": "T", "T": "C"}
    for ref, rw in ref_w.items():
        for alt in "ACGT":
            if alt != ref:
                share = 2 / 3 if alt == transition[ref] else 1 / 6
                weights[(ref, alt)] = _SNV_SHARE * rw * share
    draws = 20_000
    kinds = (
        (_DEL_SHARE, "del"),
        (_INS_SHARE, "ins"),
        (_MNV_SHARE, "mnv"),
    )
    for share, kind in kinds:
        w = share / draws
        for _ in range(draws):
            base = rng.choice("ACGT")
            if kind == "mnv":
                length = _geometric_len(rng, 0.6, 3)
                a = _random_seq(rng, length)
                b = _random_seq(rng, length)
                while b == a:
                    b = _random_seq(rng, length)
                key = (base + a, base + b)
            else:
                seq = _random_seq(rng, _geometric_len(rng, 0.45, _MAX_ALLELE_LEN - 1))
                key = (base + seq, base) if kind == "del" else (base, base + seq)
            weights[key] = weights.get(key, 0.0) + w
    pairs = sorted(weights, key=lambda pair: (-weights[pair], pair))
    refs = tuple(p[0] for p in pairs)
    alts = tuple(p[1] for p in pairs)
    assert len(pairs) < 65_536
    for ref, alt in pairs:
        snv = len(ref) == len(alt) == 1 and ref != alt
        assert snv or (ref != alt and ref[0] == alt[0]), (ref, alt)
        assert 1 <= len(ref) <= _MAX_ALLELE_LEN and 1 <= len(alt) <= _MAX_ALLELE_LEN
        assert set(ref) <= set("ACGT") and set(alt) <= set("ACGT")
    total = sum(weights.values())
    cum = list(accumulate(weights[p] / total for p in pairs))
    last = len(pairs) - 1
    by_u16 = array(
        "H", (min(bisect.bisect_right(cum, (u + 0.5) / 65_536), last) for u in range(65_536))
    )
    by_first_base: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {}
    for base in "ACGT":
        ids = tuple(i for i, ref in enumerate(refs) if ref[0] == base)
        by_first_base[base] = (ids, tuple(accumulate(weights[pairs[i]] for i in ids)))
    return _AlleleTable(refs, alts, by_u16, by_first_base)


_DP_MEAN = 30.0
_DP_SHAPE = 16.0  # gamma shape of the Poisson mean: sd = sqrt(30 + 30**2/16) ~ 9.3


@lru_cache(maxsize=1)
def _dpgq() -> tuple[tuple[int | None, int | None], ...]:
    """(dp, gq) pairs a row takes its values from: 4,096 distinct pairs, repeated 16 times so
    that a uniform 16-bit draw picks one (one C-level ``itemgetter`` call for a whole genome,
    far cheaper than a draw per row; 4,096 pairs stay in the CPU cache, 65,536 would not, and
    unpacking them per row would then cost a third of the row building).

    dp: the 4,096 quantiles of a gamma-Poisson (negative binomial) with mean 30 and shape 16,
    i.e. sd ~9.3, over-dispersed like real WGS depth; at least 3. gq: 99 unless the depth is
    very low (< 8: 6-45) or, for ~7% of pairs, 20-98. 4 pairs (0.098%) have dp None and 4
    others gq None. Cached; a few ms once per process."""
    size = 4_096
    r = _DP_SHAPE
    q = _DP_MEAN / (r + _DP_MEAN)
    pmf = (1.0 - q) ** r
    cum: list[float] = []
    total = 0.0
    for k in range(1_000):
        total += pmf
        cum.append(total)
        pmf *= (k + r) / (k + 1) * q
    rng = random.Random("genomes:dpgq:v2")
    out: list[tuple[int | None, int | None]] = []
    for i in range(size):
        dp = max(3, min(bisect.bisect_right(cum, (i + 0.5) / size), len(cum) - 1))
        if dp < 8:
            gq = rng.randint(6, 45)
        elif rng.random() < 0.07:
            gq = rng.randint(20, 98)
        else:
            gq = 99
        out.append((dp, gq))
    rng.shuffle(out)
    n_none = round(size * 0.001)
    for i in range(n_none):
        out[i] = (None, out[i][1])
        out[n_none + i] = (out[n_none + i][0], None)
    return tuple(out) * (65_536 // size)


def _pick(table: Sequence[T], idx: Sequence[int]) -> list[T]:
    """``[table[i] for i in idx]`` done in C by ``operator.itemgetter`` (about 3x faster);
    itemgetter returns a scalar for one index and refuses none, hence the guard."""
    if len(idx) < 2:
        return [table[i] for i in idx]
    return list(itemgetter(*idx)(table))


# --------------------------------------------------------------------------------------------
# Sampling primitives.
# --------------------------------------------------------------------------------------------


def _bernoulli_indices(rng: random.Random, n: int, p: float) -> list[int]:
    """Sorted indices of range(n), each kept independently with probability p.

    Why: the gap between kept indices is geometric(p), so drawing gaps costs O(n*p) instead of
    a draw per index; the gaps are drawn in batches by a comprehension and summed in C
    (``accumulate``), and the batch is cut where it passes n."""
    if n <= 0 or p <= 0.0:
        return []
    if p >= 1.0:
        return list(range(n))
    inv = 1.0 / math.log1p(-p)
    rnd = rng.random
    log = math.log
    out: list[int] = []
    last = -1
    while True:
        expect = (n - 1 - last) * p
        batch = int(expect + 4.0 * math.sqrt(expect) + 16)
        gaps = [int(log(1.0 - rnd()) * inv) + 1 for _ in repeat(None, batch)]
        idx = list(accumulate(gaps, initial=last))
        cut = bisect.bisect_left(idx, n, 1)
        out += idx[1:cut]
        if cut < len(idx):
            return out
        last = idx[-1]


def _bernoulli_subset(rng: random.Random, keys: array, p: float) -> list[int]:
    """The elements of ``keys`` (kept in order) each taken independently with probability p.

    For p > 1/2 the *skipped* elements are drawn instead and the stretches between them are
    copied as array slices in C, so the Python work is O(n * min(p, 1-p))."""
    if p <= 0.5:
        return _pick(keys, _bernoulli_indices(rng, len(keys), p))
    out: list[int] = []
    prev = 0
    for skip in _bernoulli_indices(rng, len(keys), 1.0 - p):
        out += keys[prev:skip]
        prev = skip + 1
    out += keys[prev:]
    return out


def _mark_homozygous(rng: random.Random, carried: list[int], h: float) -> list[int]:
    """Set the zygosity bit (key + 1 = homozygous) on each carried key with probability h,
    touching only min(h, 1-h) of them in Python."""
    if h <= 0.5:
        for i in _bernoulli_indices(rng, len(carried), h):
            carried[i] += 1
        return carried
    carried = [k + 1 for k in carried]
    for i in _bernoulli_indices(rng, len(carried), 1.0 - h):
        carried[i] -= 1
    return carried


# --------------------------------------------------------------------------------------------
# The population pool.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FreqClass:
    """Pool sites whose allele frequency falls in one log-width bin, with the bin's exact
    density-weighted carrying probability and homozygous share among carriers."""

    f_low: float
    f_high: float
    p_carry: float
    p_hom_given_carry: float
    sites: array = field(repr=False)  # sorted keys (slot*16) of biallelic pool sites
    multi_sites: array = field(repr=False)  # sorted keys (slot*16 + 2 + 2*rank) of multi alleles


@dataclass(frozen=True, eq=False)
class Population:
    """The shared site pool: every genome of the population draws from it.

    Compact on purpose (~12 bytes per site): a slot's 1-based position and allele id live in
    two flat arrays indexed by slot number, each frequency class keeps the sorted keys of its
    sites, and only the ~1.5% multi-allelic positions use a dict. ``eq=False`` keeps identity
    equality/hash (comparing or hashing tens of millions of array entries makes no sense)."""

    seed: int
    sites_per_genome: int
    slot_starts: tuple[int, ...]  # first slot number of each contig, then the total
    slot_widths: tuple[int, ...]  # per contig: minimum slot width (length // slots)
    classes: tuple[FreqClass, ...] = field(repr=False)
    pos: array = field(repr=False)  # slot -> 1-based position of its pool site(s)
    aid: array = field(repr=False)  # slot -> allele id of its biallelic pool site
    multi_alleles: dict[int, tuple[int, ...]] = field(repr=False)  # slot -> ids by (ref, alt)
    private_min: int
    private_max: int
    feistel_keys: tuple[int, ...] = field(repr=False)
    feistel_half_bits: int

    @property
    def n_slots(self) -> int:
        """Number of pool positions (slots)."""
        return self.slot_starts[-1]

    @property
    def n_sites(self) -> int:
        """Number of pool sites (a multi-allelic position counts once per ALT allele)."""
        return sum(len(c.sites) + len(c.multi_sites) for c in self.classes)

    @property
    def max_genomes(self) -> int:
        """How many genome indices have private sites guaranteed disjoint from all others."""
        return self.n_slots // self.private_max

    def expected_sites(self) -> float:
        """Expected rows per genome (pool sites x carrying probability + mean private count)."""
        pool = sum((len(c.sites) + len(c.multi_sites)) * c.p_carry for c in self.classes)
        return pool + (self.private_min + self.private_max) / 2


def _class_bins() -> list[tuple[float, float, float, float]]:
    """(f_low, f_high, P(carry), P(hom | carry)) for each log-width bin.

    With density 1/f on a bin, the mean of g(f) is (integral of g(f)/f df) / ln(f_high/f_low);
    for P(carry) = (2-F) f - (1-F) f^2 and P(hom) = F f + (1-F) f^2 those integrals are closed
    forms, so the per-bin figures are exact."""
    out = []
    span = math.log(1.0 / _F_MIN)
    for c in range(_N_CLASSES):
        lo = _F_MIN * math.exp(span * c / _N_CLASSES)
        hi = _F_MIN * math.exp(span * (c + 1) / _N_CLASSES) if c < _N_CLASSES - 1 else 1.0
        width = math.log(hi / lo)
        d1 = hi - lo
        d2 = (hi * hi - lo * lo) / 2
        carry = ((2 - _FIS) * d1 - (1 - _FIS) * d2) / width
        hom = (_FIS * d1 + (1 - _FIS) * d2) / width
        out.append((lo, hi, carry, hom / carry))
    return out


def _feistel(x: int, keys: tuple[int, ...], half_bits: int, limit: int) -> int:
    """A keyed bijection of range(limit): a balanced Feistel network on 2*half_bits bits with
    cycle walking back into range. Why: private sites must be scattered pseudo-randomly yet
    never collide between genomes, and a permutation gives that with no shared state."""
    mask = (1 << half_bits) - 1
    while True:
        left, right = x >> half_bits, x & mask
        for k in keys:
            f = ((right * 0x9E3779B1 + k) & 0xFFFFFFFFFFFF) * 0x85EBCA77
            left, right = right, left ^ ((f >> 17) & mask)
        x = (left << half_bits) | right
        if x < limit:
            return x


def make_population(seed: int, *, sites_per_genome: int = _DEFAULT_SITES) -> Population:
    """A pool of variant sites shared by every genome the population yields.

    The pool size is solved so that a genome carries ``sites_per_genome`` rows in expectation.
    Per contig, C-level ``map`` chains compute the slots' positions and allele ids from bulk
    random bytes; one Python loop over slots drops each slot's key into its class (a random
    byte). Deterministic for ``seed``."""
    if sites_per_genome < 1_000:
        raise ValueError("sites_per_genome must be at least 1000")
    tables = _alleles()
    rng = random.Random(f"genomes:pool:{seed}")
    bins = _class_bins()
    mean_carry = sum(b[2] for b in bins) / len(bins)
    alleles_per_slot = 1 + _MULTI_FRACTION * (1 + _THIRD_ALLELE)
    scale = sites_per_genome / _DEFAULT_SITES
    private_min = max(1, round(_PRIVATE_MIN * scale))
    private_max = max(private_min, round(_PRIVATE_MAX * scale))
    pool_target = sites_per_genome - (private_min + private_max) / 2
    total_len = sum(length for _, length in CONTIGS)
    slots_target = pool_target / (mean_carry * alleles_per_slot)
    slot_width = total_len / slots_target
    if slot_width < 4 or slots_target * _SUB >= 1 << 30:
        # Beyond ~8.5 M sites per genome the sort keys would pass 2**30 and lose CPython's
        # fast int comparison (see the module docstring).
        raise ValueError("sites_per_genome too large (at most ~8.5 M)")

    sites_apps = [array("I") for _ in range(_N_CLASSES + 1)]  # the extra one takes multi slots
    multi_apps = [array("I") for _ in range(_N_CLASSES)]
    class_of = bytes(b % _N_CLASSES for b in range(256))
    pos_all = array("I")
    aid_all = array("H")
    multi_alleles: dict[int, tuple[int, ...]] = {}
    slot_starts = [0]
    slot_widths = []
    first_base_of = [ref[0] for ref in tables.refs]
    for _, length in CONTIGS:
        n = max(1, round(length / slot_width))
        width = length // n
        g0 = slot_starts[-1]
        slot_starts.append(g0 + n)
        slot_widths.append(width)
        # Position: slot start (j*L//n + 1) + uniform offset in [0, width-2]; width-1 is reserved
        # for private sites. 32-bit draws mod width-1: bias < width/2**32, i.e. nil.
        if width - 1 <= 1 << 16:
            offsets = map(mod, array("I", rng.randbytes(4 * n)), repeat(width - 1))
        else:
            offsets = (rng.randrange(width - 1) for _ in range(n))
        starts = map(floordiv, range(n, n * length + n, length), repeat(n))
        pos_all.extend(array("I", map(add, starts, offsets)))
        aids = array("H", map(tables.by_u16.__getitem__, array("H", rng.randbytes(2 * n))))
        aid_all.extend(aids)
        cls = bytearray(rng.randbytes(n).translate(class_of))
        n_multi = min(n, round(n * _MULTI_FRACTION))
        multi_local = sorted(rng.sample(range(n), n_multi))
        for j in multi_local:
            cls[j] = _N_CLASSES
        apps = [a.append for a in sites_apps]
        for key, c in zip(range(g0 * _SUB, (g0 + n) * _SUB, _SUB), cls, strict=True):
            apps[c](key)
        del sites_apps[_N_CLASSES][:]
        for j in multi_local:
            g = g0 + j
            first = aids[j]
            ids, cum = tables.by_first_base[first_base_of[first]]
            chosen = {first}
            want = 3 if rng.random() < _THIRD_ALLELE else 2
            while len(chosen) < want:
                chosen.add(rng.choices(ids, cum_weights=cum)[0])
            ranked = tuple(sorted(chosen, key=lambda a: (tables.refs[a], tables.alts[a])))
            multi_alleles[g] = ranked
            for rank in range(len(ranked)):
                multi_apps[rng.getrandbits(6) % _N_CLASSES].append(g * _SUB + 2 + 2 * rank)
    assert slot_starts[-1] * _SUB < 1 << 30, "keys must stay single-digit ints for a fast sort"
    classes = tuple(
        FreqClass(lo, hi, carry, hom, sites_apps[c], multi_apps[c])
        for c, (lo, hi, carry, hom) in enumerate(bins)
    )
    half_bits = max(1, ((slot_starts[-1] - 1).bit_length() + 1) // 2)
    feistel_keys = tuple(rng.getrandbits(48) for _ in range(4))
    return Population(
        seed=seed,
        sites_per_genome=sites_per_genome,
        slot_starts=tuple(slot_starts),
        slot_widths=tuple(slot_widths),
        classes=classes,
        pos=pos_all,
        aid=aid_all,
        multi_alleles=multi_alleles,
        private_min=private_min,
        private_max=private_max,
        feistel_keys=feistel_keys,
        feistel_half_bits=half_bits,
    )


# --------------------------------------------------------------------------------------------
# Genomes.
# --------------------------------------------------------------------------------------------


def _private_sites(
    pop: Population, index: int, rng: random.Random, tables: _AlleleTable
) -> list[tuple[int, tuple[str, int, str, str, int]]]:
    """Genome ``index``'s private sites as (key, row without dp and gq), in draw order: slots
    from a keyed bijection of index*cap + j, at the slot's reserved last base, so no other
    genome and no pool site has them."""
    starts = pop.slot_starts
    base = index * pop.private_max
    sites = []
    for j in range(rng.randint(pop.private_min, pop.private_max)):
        slot = _feistel(base + j, pop.feistel_keys, pop.feistel_half_bits, pop.n_slots)
        ci = bisect.bisect_right(starts, slot) - 1
        chrom, length = CONTIGS[ci]
        n_slots = starts[ci + 1] - starts[ci]
        pos = (slot - starts[ci]) * length // n_slots + pop.slot_widths[ci]
        aid = tables.by_u16[rng.getrandbits(16)]
        sites.append(
            (slot * _SUB + _PRIVATE_S, (chrom, pos, tables.refs[aid], tables.alts[aid], 1))
        )
    return sites


def genome(pop: Population, index: int) -> list[Row]:
    """Genome number ``index`` (deterministic for (seed, index)): rows (chrom, pos, ref, alt,
    alt_count, dp, gq), sorted by (contig order in CONTIGS, pos, ref, alt), at most one row per
    (chrom, pos, ref, alt), alt_count in {1, 2} (1 = heterozygous, 2 = homozygous alt).

    Each frequency class contributes an exact Bernoulli(p_carry) subset of its sites (a sorted
    run of keys), then homozygous marks; multi-allelic carriers are reconciled per position,
    private sites added; one sort merges the runs, and one comprehension per contig turns keys
    into rows."""
    if not 0 <= index < pop.max_genomes:
        raise ValueError(f"index must be in [0, {pop.max_genomes}) so private sites stay unique")
    tables = _alleles()
    refs, alts = tables.refs, tables.alts
    dpgq = _dpgq()
    rng = random.Random(f"genomes:genome:{pop.seed}:{index}")
    pos_of, aid_of = pop.pos, pop.aid
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        keys: list[int] = []
        multi: list[int] = []
        for cls in pop.classes:
            carried = _bernoulli_subset(rng, cls.sites, cls.p_carry)
            keys += _mark_homozygous(rng, carried, cls.p_hom_given_carry)
            if cls.multi_sites:
                multi += _mark_homozygous(
                    rng, _bernoulli_subset(rng, cls.multi_sites, cls.p_carry), cls.p_hom_given_carry
                )
        # Rows that are not plain biallelic pool sites, by key, without (dp, gq): the
        # comprehension below appends those. Few (~4%), so plain Python is fine here.
        extra: dict[int, tuple[str, int, str, str, int]] = {}
        starts = pop.slot_starts
        # Multi-allelic positions: a diploid genome holds at most two ALT alleles at a position,
        # and holding two means heterozygous for each.
        multi.sort()
        i = 0
        n_multi = len(multi)
        while i < n_multi:
            slot = multi[i] >> _SHIFT
            j = i + 1
            while j < n_multi and multi[j] >> _SHIFT == slot:
                j += 1
            group = multi[i:j]
            if j - i > 1:
                if j - i > 2:
                    del group[rng.randrange(j - i)]
                group = [k & ~1 for k in group]
            ranked = pop.multi_alleles[slot]
            chrom = CONTIGS[bisect.bisect_right(starts, slot) - 1][0]
            pos = pos_of[slot]
            for k in group:
                aid = ranked[((k & 15) - 2) >> 1]
                extra[k] = (chrom, pos, refs[aid], alts[aid], (k & 1) + 1)
            keys += group
            i = j
        private = _private_sites(pop, index, rng, tables)
        extra.update(private)
        keys += (key for key, _ in private)

        keys.sort()
        n = len(keys)
        draws = _pick(dpgq, array("H", rng.randbytes(2 * n)))
        rows: list[Row] = []
        for ci, (chrom, _) in enumerate(CONTIGS):
            lo = bisect.bisect_left(keys, starts[ci] * _SUB)
            hi = bisect.bisect_left(keys, starts[ci + 1] * _SUB, lo)
            rows += [
                extra[k] + (dp, gq)
                if k & _EXTRA_MASK
                else (
                    chrom,
                    pos_of[g := k >> _SHIFT],
                    refs[a := aid_of[g]],
                    alts[a],
                    1 + (k & 1),
                    dp,
                    gq,
                )
                for k, (dp, gq) in zip(keys[lo:hi], draws[lo:hi], strict=True)
            ]
        return rows
    finally:
        if gc_was_enabled:
            gc.enable()


# --------------------------------------------------------------------------------------------
# Self-check: python bench/genomes.py
# --------------------------------------------------------------------------------------------


def _rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _main() -> int:
    """Build seed 5, generate 3 genomes, print the realism and speed figures, and check the
    row contract (order, uniqueness, ranges); exit status 1 if a figure misses its target."""
    tables = _alleles()
    # Rank of each (ref, alt) in string order, so that key order is the required row order.
    allele_id = {
        pair: i for i, pair in enumerate(sorted(zip(tables.refs, tables.alts, strict=True)))
    }
    contig_id = {name: i for i, (name, _) in enumerate(CONTIGS)}
    lengths = dict(CONTIGS)
    t0 = time.perf_counter()
    pop = make_population(5)
    build_s = time.perf_counter() - t0
    print(
        f"pool: {pop.n_slots:,} positions, {pop.n_sites:,} sites, built in {build_s:.1f} s, "
        f"expected {pop.expected_sites():,.0f} sites/genome, peak RSS {_rss_mb():,.0f} MB"
    )
    ok = build_s <= 60
    key_sets: list[array] = []
    for index in range(3):
        t0 = time.perf_counter()
        rows = genome(pop, index)
        gen_s = time.perf_counter() - t0
        n = len(rows)
        het = sum(1 for r in rows if r[4] == 1)
        hom = sum(1 for r in rows if r[4] == 2)
        snv = sum(1 for r in rows if len(r[2]) == 1 and len(r[3]) == 1)
        dp_none = sum(1 for r in rows if r[5] is None)
        gq99 = sum(1 for r in rows if r[6] == 99)
        dps = sorted(r[5] for r in rows[::97] if r[5] is not None)
        # (contig, pos, (ref, alt) rank) packed in one int: compact, and ordered like the rows.
        keys = array("q", [(contig_id[r[0]] << 28 | r[1]) << 14 | allele_id[r[2:4]] for r in rows])
        assert het + hom == n
        assert all(a < b for a, b in pairwise(keys)), "rows not sorted/unique"
        assert all(1 <= r[1] <= lengths[r[0]] for r in rows)
        same = [a >> 14 == b >> 14 for a, b in pairwise(keys)]
        multi_pos = sum(1 for i, s in enumerate(same) if s and (i == 0 or not same[i - 1]))
        ratio = het / hom
        print(
            f"genome {index}: {n:,} sites in {gen_s:.2f} s; het/hom {ratio:.3f}; "
            f"SNV fraction {snv / n:.4f}; multi-allelic positions {multi_pos:,}; "
            f"dp median {dps[len(dps) // 2]} "
            f"(5%-95%: {dps[len(dps) // 20]}-{dps[len(dps) - 1 - len(dps) // 20]}), "
            f"dp None {dp_none / n:.4%}, gq 99 {gq99 / n:.1%}"
        )
        ok &= abs(n / 4_500_000 - 1) <= 0.05 and 1.5 <= ratio <= 2.0 and 0.85 <= snv / n <= 0.90
        ok &= gen_s <= 6.0
        key_sets.append(keys)
        del rows
    others = set(key_sets[1])
    others.update(key_sets[2])
    seen_elsewhere = sum(1 for k in key_sets[0] if k in others)
    del others
    shared = set(key_sets[0])
    shared.intersection_update(key_sets[1])
    shared.intersection_update(key_sets[2])
    n_shared = len(shared)
    del shared
    union = set(key_sets[0])
    union.update(key_sets[1])
    union.update(key_sets[2])
    n_union = len(union)
    del union
    print(
        f"shared by all 3: {n_shared:,}; union of 3: {n_union:,}; genome 0's sites also in "
        f"genome 1 or 2: {seen_elsewhere / len(key_sets[0]):.1%}"
    )
    print(f"pool build: {build_s:.1f} s; peak RSS: {_rss_mb():,.0f} MB")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_main())
