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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from genomebus_common.contracts.digests import sha512t24u
from genomebus_common.contracts.errors import DataConflict, PermanentError, ToolFailed
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


class Manifest(BaseModel):
    """What a registered reference consists of; stored beside its files."""

    model_config = ConfigDict(frozen=True)

    reference: ReferenceGenome
    sequences: list[dict[str, object]]
    files: dict[str, ObjectRef]

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


def build_indexes(fasta: Path) -> None:
    """The samtools .fai and the bwa index, built beside ``fasta`` (once per reference)."""
    _run("samtools", "faidx", fasta.name, cwd=fasta.parent)
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

    def register(self, reference_id: str, fasta: Path, workdir: Path) -> Manifest:
        """Store a FASTA with its indexes; registering the same content again changes nothing."""
        sequences = fasta_digests(fasta)
        reference = ReferenceGenome(id=reference_id, digest=collection_digest(sequences))
        existing = self.find(reference_id)
        if existing is not None:
            if existing.reference.digest != reference.digest:
                raise DataConflict(
                    f"reference {reference_id!r} is already registered with other content "
                    f"({existing.reference.digest}); register it under a new id"
                )
            return existing
        self.store.ensure_bucket(self.bucket)
        staging = workdir / f"register-{reference.digest}"
        staging.mkdir(parents=True, exist_ok=True)
        local = staging / FASTA_NAME
        shutil.copyfile(fasta, local)
        build_indexes(local)
        prefix = f"{reference_id}/{reference.digest}"
        files = {
            name: self.store.put_file(self.bucket, f"{prefix}/{name}", staging / name)
            for name in [FASTA_NAME, *(FASTA_NAME + s for s in INDEX_SUFFIXES)]
        }
        manifest = Manifest(
            reference=reference,
            sequences=[{"name": s.name, "length": s.length, "digest": s.digest} for s in sequences],
            files=files,
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
