"""Where the planner's chunks of reads go: two gzip files in scratch, uploaded to the object
store as soon as the chunk is complete, so a whole genome's reads never sit on local disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genomebus_common.stagekit.scatter import ScatterStore
from genomebus_common.stagekit.work import StageObjects


class UploadingSink:
    """A chunk's two gzip files (``ChunkSink``), written to scratch and uploaded when the chunk
    is complete; ``unit`` is then the chunk's entry in the plan."""

    def __init__(
        self, store: StageObjects, scatter: ScatterStore, workdir: Path, index: int, plan: str
    ) -> None:
        self.store, self.scatter, self.index, self.plan = store, scatter, index, plan
        self.paths = [workdir / f"chunk{index}.r{m + 1}.fq.gz" for m in range(2)]
        self.files = [p.open("wb") for p in self.paths]
        self.unit: dict[str, Any] | None = None
        self.uploaded: list[str] = []

    def write(self, mate: int, data: bytes) -> None:
        self.files[mate].write(data)

    def close_files(self) -> None:
        for handle in self.files:
            handle.close()

    def close(self, pairs: int, bases: int) -> None:
        self.close_files()
        refs = []
        for path in self.paths:
            key = self.scatter.work_key(self.index, f"{self.plan}/{path.name.split('.', 1)[1]}")
            self.uploaded.append(key)  # before the upload: a half-done one is removed too
            refs.append(
                self.store.put_file(self.scatter.bucket, key, path, content_type="application/gzip")
            )
        for path in self.paths:
            path.unlink()
        self.unit = {
            "r1": refs[0].model_dump(mode="json"),
            "r2": refs[1].model_dump(mode="json"),
            "pairs": pairs,
            "bases": bases,
        }

    def remove_uploaded(self) -> None:
        """Remove what this chunk uploaded (no plan will name it)."""
        for key in self.uploaded:
            self.store.remove(self.scatter.bucket, key)


__all__ = ["UploadingSink"]
