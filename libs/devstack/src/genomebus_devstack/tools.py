"""Debian packages: the bioinformatics tools the pipeline shells out to, and PostgreSQL; and the
PATH the stack gives its services, which puts the patched bwa (``bwabuild``) first.

Why check before calling apt: ``apt-get update`` alone takes seconds to minutes, and ``up`` runs
``install`` every time, so apt is skipped entirely when every package is already installed.
Why check versions afterwards: the services use options that older samtools/bcftools lack, and a
clear message at install time beats an obscure failure in the middle of a pipeline run.
Why the PATH: services run ``bwa`` by name, and chunked alignment needs ``bwa mem -J``, which
only the patched build has; Debian's ``bwa`` stays installed behind it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from . import bwabuild, pins
from .paths import Layout
from .procs import StackError, run_logged

# How to ask each version-checked tool for its version, and where the version is in the output.
_VERSION_COMMANDS: dict[str, tuple[list[str], str]] = {
    "samtools": (["samtools", "--version"], r"^samtools (\S+)"),
    "bcftools": (["bcftools", "--version"], r"^bcftools (\S+)"),
    "bwa": (["bwa"], r"^Version: (\S+)"),  # bwa has no --version; bare `bwa` prints usage
    "minimap2": (["minimap2", "--version"], r"^(\S+)"),
}


def missing_packages(packages: Iterable[str]) -> list[str]:
    """The Debian packages among ``packages`` that are not installed (one dpkg-query call)."""
    packages = list(packages)
    if shutil.which("dpkg-query") is None:
        raise StackError(
            "dpkg-query not found: the dev stack installs tools from Debian packages "
            "and needs a Debian/Ubuntu machine"
        )
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.strip().endswith(" installed")
    }
    return [p for p in packages if p not in installed]


@dataclass
class _AptIndex:
    """Whether this process has already run ``apt-get update``."""

    updated: bool = False


_apt_index = _AptIndex()


def apt_install(packages: list[str], layout: Layout) -> None:
    """``apt-get update`` (once per process) and install ``packages``; root only."""
    if os.geteuid() != 0:
        raise StackError(
            f"missing Debian packages: {' '.join(packages)}. Install them with\n"
            f"    sudo apt-get update && sudo apt-get install -y {' '.join(packages)}"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = layout.log("install")
    if not _apt_index.updated:
        run_logged(["apt-get", "update"], log=log, env=env, what="apt-get update", timeout=900)
        _apt_index.updated = True
    run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        log=log,
        env=env,
        what=f"apt-get install {' '.join(packages)}",
        timeout=1800,
    )


def parse_version(text: str) -> tuple[int, ...]:
    """Numeric prefix of a version string: '1.16.1' -> (1, 16, 1), '0.7.17-r1188' -> (0, 7, 17)."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    if not match:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(0).split("."))


def version_at_least(found: str, minimum: str) -> bool:
    have, need = parse_version(found), parse_version(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))


def tool_version(tool: str, path: str | None = None) -> str | None:
    """The version ``tool`` reports, or None if it is not on ``path`` (default: PATH) / prints
    nothing recognisable."""
    argv, pattern = _VERSION_COMMANDS[tool]
    found = shutil.which(argv[0], path=path)
    if found is None:
        return None
    result = subprocess.run(
        [found, *argv[1:]],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
        timeout=30,
    )
    match = re.search(pattern, result.stdout + "\n" + result.stderr, re.MULTILINE)
    return match.group(1) if match else None


@dataclass(frozen=True)
class ToolReport:
    versions: dict[str, str | None]
    problems: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        versions = ", ".join(f"{tool} {version or '?'}" for tool, version in self.versions.items())
        return "; ".join([versions, *self.notes])


def check_versions(path: str | None = None) -> ToolReport:
    """Each version-checked tool as found on ``path`` (default: PATH) against its minimum."""
    versions: dict[str, str | None] = {}
    problems: list[str] = []
    for tool, minimum in pins.MIN_TOOL_VERSIONS.items():
        version = versions[tool] = tool_version(tool, path)
        if version is None:
            problems.append(f"{tool}: not found or version unreadable (need >= {minimum})")
        elif not version_at_least(version, minimum):
            problems.append(f"{tool}: found {version}, the pipeline needs >= {minimum}")
    return ToolReport(versions, problems)


def install(layout: Layout) -> str:
    """Install the missing Debian packages, then enforce the minimum versions. Returns a summary."""
    missing = missing_packages(pins.DEBIAN_PACKAGES)
    if missing:
        apt_install(missing, layout)
        still = missing_packages(missing)
        if still:
            raise StackError(f"apt-get install finished but these are still missing: {still}")
    report = check_versions()
    if not report.ok:
        raise StackError(
            "tool versions too old for the pipeline:\n  "
            + "\n  ".join(report.problems)
            + "\n  (this Debian release's packages are too old: use Debian 12+)"
        )
    how = (
        f"installed {' '.join(missing)}"
        if missing
        else f"all {len(pins.DEBIAN_PACKAGES)} Debian packages present"
    )
    return f"{how}; {report.summary()}"


# --- the services' PATH: the patched bwa first ---------------------------------------------------
def bwa_bin_dir(layout: Layout | None = None) -> Path:
    """The folder holding the patched bwa (``<tools>/bwa/<BWA_BUILD>/bin``); first in the PATH
    of every process the stack starts. Exists once ``genomebus stack install`` has run."""
    return (layout or Layout.discover()).bwa_bin_dir


def service_path(path: str | None = None, layout: Layout | None = None) -> str:
    """``path`` (default: this process's PATH) with :func:`bwa_bin_dir` first, not repeated."""
    first = str(bwa_bin_dir(layout))
    rest = os.environ.get("PATH", "") if path is None else path
    return os.pathsep.join([first, *(p for p in rest.split(os.pathsep) if p and p != first)])


def with_service_path(env: Mapping[str, str], layout: Layout | None = None) -> dict[str, str]:
    """A copy of ``env`` whose PATH puts the patched bwa first (what services are started with)."""
    return {**env, "PATH": service_path(env.get("PATH", os.defpath), layout)}


def use_patched_bwa(
    environ: MutableMapping[str, str] | None = None, layout: Layout | None = None
) -> Path:
    """Put the patched bwa first in ``environ``'s PATH (default: this process's, e.g. from a
    test session's conftest) and return its folder; a StackError if it is not built."""
    layout = layout or Layout.discover()
    if not layout.bwa_bin.is_file():
        raise StackError(f"{layout.bwa_bin} is missing: run `genomebus stack install`")
    environ = os.environ if environ is None else environ
    environ["PATH"] = service_path(environ.get("PATH", os.defpath), layout)
    return layout.bwa_bin_dir


def bwa_check(path: str) -> tuple[str, str | None]:
    """(note, problem) about the first ``bwa`` on ``path``: which one it is, and whether it
    lacks ``bwa mem -J``, which chunked alignment passes."""
    found = shutil.which("bwa", path=path)
    if found is None:
        return "bwa: none on PATH", "no `bwa` on the services' PATH: run `genomebus stack install`"
    version, has_j = bwabuild.probe(found)
    note = (
        f"services' first bwa: {found} ({version or 'version ?'}, {'with' if has_j else 'no'} -J)"
    )
    if not has_j:
        return note, (
            f"{found}, first `bwa` on the services' PATH, lacks `bwa mem -J` (needs "
            f"{pins.BWA_VERSION_STRING}): run `genomebus stack install`"
        )
    return note, None


def health(layout: Layout | None = None) -> ToolReport:
    """For ``status``: packages present, versions new enough, and the services' first ``bwa``
    takes ``-J`` (no installing). Tools are looked up on the PATH services get."""
    path = service_path(layout=layout)
    missing = missing_packages(pins.DEBIAN_PACKAGES)
    report = check_versions(path)
    problems = [f"missing Debian packages: {' '.join(missing)}"] if missing else []
    note, problem = bwa_check(path)
    notes = [note]
    own = shutil.which("bwa")
    if own is not None and own != shutil.which("bwa", path=path):
        notes.append(
            f'this shell\'s PATH finds {own} first (`eval "$(genomebus stack env)"` '
            f"puts the patched one first)"
        )
    return ToolReport(
        report.versions, problems + report.problems + ([problem] if problem else []), notes
    )
