"""Reference genomes: registered once, identified by content, cached where they are used.

A reference is named by an id (for people) and a digest (for machines): the GA4GH refget
sequence digest of each sequence (``SQ.`` + sha512t24u of the upper-cased residues) and, over
them, a sequence-collection digest computed as the GA4GH seqcol level-1/level-0 digests of the
names, lengths and sequences arrays (RFC 8785 canonical JSON), written with our ``SQC.`` prefix.
Two FASTA files with the same sequences under the same names have the same digest, whatever
their line width or file name; any other change gives another digest.

Registration stores the FASTA, its samtools .fai and its bwa index in the object store once,
with a manifest; workers download them, verified, into a local cache keyed by the digest and
reuse them for every sample. A sample naming an unknown reference, or a digest that does not
match the registered one, is a permanent error.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from genomebus_common.contracts.digests import sha512t24u
from genomebus_common.contracts.errors import (
    DataConflict,
    ObjectNotFound,
    PermanentError,
    ToolFailed,
)
from genomebus_common.contracts.events import ObjectRef, ReferenceGenome
from genomebus_common.runtime.objectstore import ObjectStore

REFERENCE_BUCKET = "genomebus-references"
FASTA_NAME = "genome.fa"
INDEX_SUFFIXES = (".fai", ".amb", ".ann", ".bwt", ".pac", ".sa")


class UnknownReference(PermanentError):
    code = "unknown_reference"


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


@dataclass(frozen=True)
class SequenceDigest:
    name: str
    length: int
    digest: str  # "SQ.<sha512t24u>"


def fasta_digests(fasta: Path) -> list[SequenceDigest]:
    """Digest every sequence of a FASTA file, streaming it line by line."""
    found: list[SequenceDigest] = []
    name: str | None = None
    hasher = hashlib.sha512()
    length = 0

    def close() -> None:
        if name is not None:
            digest = base64.urlsafe_b64encode(hasher.digest()[:24]).decode().rstrip("=")
            found.append(SequenceDigest(name, length, "SQ." + digest))

    with fasta.open("rb") as handle:
        for line in handle:
            if line.startswith(b">"):
                close()
                name = line[1:].split()[0].decode() if line[1:].strip() else ""
                if not name:
                    raise PermanentError(f"{fasta.name}: a sequence has no name")
                hasher, length = hashlib.sha512(), 0
            else:
                residues = line.strip().upper()
                hasher.update(residues)
                length += len(residues)
    close()
    if not found:
        raise PermanentError(f"{fasta.name}: no sequences (is it FASTA?)")
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise PermanentError(f"{fasta.name}: duplicate sequence names")
    return found


def collection_digest(sequences: list[SequenceDigest]) -> str:
    level1 = {
        "lengths": sha512t24u(_canonical_json([s.length for s in sequences])),
        "names": sha512t24u(_canonical_json([s.name for s in sequences])),
        "sequences": sha512t24u(_canonical_json([s.digest for s in sequences])),
    }
    return "SQC." + sha512t24u(_canonical_json(level1))


class Interval(BaseModel):
    """A 1-based, closed interval of one contig (as VCF and bcftools' ploidy files count)."""

    model_config = ConfigDict(frozen=True)

    contig: str
    start: int = Field(ge=1)
    end: int = Field(ge=1)

    @classmethod
    def parse(cls, text: str) -> Interval:
        """``chrX:10001-2781479``."""
        contig, _, span = text.rpartition(":")
        start, _, end = span.partition("-")
        try:
            interval = cls(
                contig=contig, start=int(start.replace(",", "")), end=int(end.replace(",", ""))
            )
        except ValueError as exc:
            raise ValueError(f"{text!r} is not CONTIG:START-END") from exc
        if not contig or interval.end < interval.start:
            raise ValueError(f"{text!r} is not CONTIG:START-END with START <= END")
        return interval

    def __str__(self) -> str:
        return f"{self.contig}:{self.start}-{self.end}"


class SexChromosomes(BaseModel):
    """Which contigs are X and Y, and their pseudo-autosomal regions (PARs): a male is diploid
    in the PARs and haploid on the rest of X and Y. Goes with the reference, because contig
    names and PAR coordinates differ between assemblies."""

    model_config = ConfigDict(frozen=True)

    x: str
    y: str
    pars: tuple[Interval, ...] = ()

    def problems(self, lengths: dict[str, int]) -> list[str]:
        """What does not fit the reference's sequences (empty when all fits)."""
        found = [
            f"{role} contig {name!r} is not in the FASTA"
            for role, name in (("X", self.x), ("Y", self.y))
            if name not in lengths
        ]
        for par in self.pars:
            if par.contig not in (self.x, self.y):
                found.append(f"PAR {par} is on neither X ({self.x}) nor Y ({self.y})")
            elif par.contig in lengths and par.end > lengths[par.contig]:
                found.append(f"PAR {par} ends past {par.contig}'s {lengths[par.contig]:,} bases")
        return found


#: The PARs of the two human assemblies in use (GRCh38 and GRCh37 as released by the GRC; the
#: same intervals as bcftools' built-in ploidy definitions), with UCSC-style contig names.
SEX_PRESETS: dict[str, SexChromosomes] = {
    "GRCh38": SexChromosomes(
        x="chrX",
        y="chrY",
        pars=(
            Interval(contig="chrX", start=10_001, end=2_781_479),
            Interval(contig="chrX", start=155_701_383, end=156_030_895),
            Interval(contig="chrY", start=10_001, end=2_781_479),
            Interval(contig="chrY", start=56_887_903, end=57_217_415),
        ),
    ),
    "GRCh37": SexChromosomes(
        x="chrX",
        y="chrY",
        pars=(
            Interval(contig="chrX", start=60_001, end=2_699_520),
            Interval(contig="chrX", start=154_931_044, end=155_260_560),
            Interval(contig="chrY", start=10_001, end=2_649_520),
            Interval(contig="chrY", start=59_034_050, end=59_363_566),
        ),
    ),
}


class Manifest(BaseModel):
    """What a registered reference consists of; stored beside its files."""

    model_config = ConfigDict(frozen=True)

    reference: ReferenceGenome
    sequences: list[dict[str, object]]
    files: dict[str, ObjectRef]
    #: Added after the first references were registered: those have none (unknown sex
    #: chromosomes, so every contig is called diploid, as before).
    sex_chromosomes: SexChromosomes | None = None

    @property
    def total_length(self) -> int:
        return sum(int(str(s["length"])) for s in self.sequences)


def _run(*command: str, cwd: Path) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    except FileNotFoundError as exc:
        raise ToolFailed(f"{command[0]} is not installed (run `make install`)") from exc
    except subprocess.CalledProcessError as exc:
        tail = exc.stderr.decode(errors="replace")[-1000:]
        raise ToolFailed(f"{' '.join(command[:2])} failed ({exc.returncode}): {tail}") from exc


def build_indexes(fasta: Path, say: Callable[[str], None] = lambda _: None) -> None:
    """The samtools .fai and the bwa index, built beside ``fasta`` (once per reference)."""
    say("indexing: samtools faidx")
    _run("samtools", "faidx", fasta.name, cwd=fasta.parent)
    say("indexing: bwa index (about an hour for a whole human genome)")
    _run("bwa", "index", fasta.name, cwd=fasta.parent)


class ReferenceRegistry:
    """Registered references in the object store, and a verified local cache of them."""

    def __init__(self, store: ObjectStore, cache_dir: Path, bucket: str = REFERENCE_BUCKET) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.bucket = bucket

    def _manifest_key(self, reference_id: str) -> str:
        return f"{reference_id}/manifest.json"

    def find(self, reference_id: str) -> Manifest | None:
        return self.store.read_model(self.bucket, self._manifest_key(reference_id), Manifest)

    def ids(self) -> list[str]:
        """The ids of every registered reference (those whose manifest is written)."""
        try:
            keys = self.store.list_keys(self.bucket, "")
        except ObjectNotFound:  # no bucket yet: nothing was ever registered
            return []
        return sorted(
            key.removesuffix("/manifest.json")
            for key in keys
            if key.endswith("/manifest.json") and key.count("/") == 1
        )

    def resolve(self, reference: ReferenceGenome) -> Manifest:
        """The manifest of exactly this reference, or ``UnknownReference`` saying why not."""
        manifest = self.find(reference.id)
        if manifest is None:
            raise UnknownReference(f"reference {reference.id!r} is not registered")
        if manifest.reference.digest != reference.digest:
            raise UnknownReference(
                f"reference {reference.id!r} is registered with digest "
                f"{manifest.reference.digest}, not {reference.digest}"
            )
        return manifest

    def register(
        self,
        reference_id: str,
        fasta: Path,
        workdir: Path,
        *,
        sex_chromosomes: SexChromosomes | None = None,
        say: Callable[[str], None] = lambda _: None,
    ) -> Manifest:
        """Store a FASTA with its indexes; registering the same content again changes nothing.

        Other content under a registered id, or another sex-chromosome description of the same
        content, is refused: samples already name the reference by its id, and their calls
        were made with what it said."""
        say(f"digesting the sequences of {fasta}")
        sequences = fasta_digests(fasta)
        reference = ReferenceGenome(id=reference_id, digest=collection_digest(sequences))
        if sex_chromosomes is not None:
            found = sex_chromosomes.problems({s.name: s.length for s in sequences})
            if found:
                raise PermanentError(
                    f"the sex chromosomes do not fit {fasta.name}: " + "; ".join(found),
                    code="invalid_reference_description",
                )
        existing = self.find(reference_id)
        if existing is not None:
            if existing.reference.digest != reference.digest:
                raise DataConflict(
                    f"reference {reference_id!r} is already registered with other content "
                    f"({existing.reference.digest}); register it under a new id"
                )
            if existing.sex_chromosomes != sex_chromosomes and sex_chromosomes is not None:
                raise DataConflict(
                    f"reference {reference_id!r} is already registered with another "
                    "sex-chromosome description; register it under a new id"
                )
            say(f"{reference_id} is already registered with this content ({reference.digest})")
            return existing
        self.store.ensure_bucket(self.bucket)
        staging = workdir / f"register-{reference.digest}"
        staging.mkdir(parents=True, exist_ok=True)
        local = staging / FASTA_NAME
        shutil.copyfile(fasta, local)
        build_indexes(local, say)
        prefix = f"{reference_id}/{reference.digest}"
        names = [FASTA_NAME, *(FASTA_NAME + s for s in INDEX_SUFFIXES)]
        files = {}
        for number, name in enumerate(names, 1):
            size = (staging / name).stat().st_size
            say(f"uploading {number}/{len(names)}: {name} ({size / 1e6:,.1f} MB)")
            files[name] = self.store.put_file(self.bucket, f"{prefix}/{name}", staging / name)
        manifest = Manifest(
            reference=reference,
            sequences=[{"name": s.name, "length": s.length, "digest": s.digest} for s in sequences],
            files=files,
            sex_chromosomes=sex_chromosomes,
        )
        # The manifest goes last: a reference is registered only once all its files are there.
        self.store.write_model(self.bucket, self._manifest_key(reference_id), manifest)
        shutil.rmtree(staging, ignore_errors=True)
        return manifest

    def materialise(self, reference: ReferenceGenome) -> tuple[Path, Manifest]:
        """Local path of the FASTA (indexes beside it), downloaded and verified once per digest."""
        manifest = self.resolve(reference)
        folder = self.cache_dir / reference.digest
        done = folder / ".complete"
        if done.exists():
            return folder / FASTA_NAME, manifest
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder / ".lock"):
            if not done.exists():
                for name, ref in manifest.files.items():
                    self.store.download(ref, folder / name)
                done.touch()
        return folder / FASTA_NAME, manifest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock: two workers on one node download a reference once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
