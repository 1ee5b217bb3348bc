"""genomebus's bwa (``bwa mem -J`` on Debian's libbwa): its pins, the probe, the services' PATH,
idempotent install, and, against the installed build, records equal to Debian's bwa's and chunks
aligned apart with -J equal to one run."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genomebus_devstack import bwabuild, pins, services, tools
from genomebus_devstack.paths import Layout

pytestmark = pytest.mark.tools  # runs the real bio tools


def _fake_bwa(folder: Path, *, with_j: bool, version: str = "0.7.17-r1188") -> Path:
    """A script answering like bwa: bare `bwa` and bare `bwa mem` print usage on stderr."""
    folder.mkdir(parents=True, exist_ok=True)
    j_line = "       -J INT        reads of the whole sample before this input" if with_j else ""
    script = folder / "bwa"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = mem ]; then echo "       -K INT        process INT input bases" >&2; '
        f'echo "{j_line}" >&2; exit 1; fi\n'
        f'echo "Program: bwa" >&2; echo "Version: {version}" >&2; exit 1\n'
    )
    script.chmod(0o755)
    return script


def test_driver_source_is_shipped_and_states_the_pinned_version() -> None:
    text = bwabuild.driver_source().decode()
    assert f'#define GENOMEBUS_BWA_VERSION "{pins.BWA_VERSION_STRING}"' in text
    assert f'#define STOCK_BWA "{pins.BWA_STOCK}"' in text
    assert re.search(r"^\s*-J INT", text.replace('"', "\n"), re.MULTILINE)  # the usage line
    assert pins.BWA_PATCH_LEVEL in pins.BWA_BUILD
    assert pins.BWA_VERSION_STRING.startswith(pins.BWA_UPSTREAM_VERSION)


def test_nothing_bwa_related_names_a_host() -> None:
    """The build uses Debian packages by name only: no URL in its code, pins, source or stage."""
    repo = Path(__file__).resolve().parents[2]
    package = repo / "libs" / "devstack" / "src" / "genomebus_devstack"
    dockerfile = (repo / "deploy" / "docker" / "Dockerfile").read_text()
    stage = dockerfile[dockerfile.index("AS bwa") : dockerfile.index("AS runtime")]
    for name, text in [
        ("bwabuild.py", (package / "bwabuild.py").read_text()),
        ("pins.py", (package / "pins.py").read_text()),
        (pins.BWA_DRIVER_SOURCE, bwabuild.driver_source().decode()),
        ("Dockerfile's bwa stage", stage),
    ]:
        assert "://" not in text, name


def test_installed_follows_the_source_and_library_hashes(tmp_path: Path) -> None:
    layout = Layout(state=tmp_path / "s", tools=tmp_path / "t")
    assert not bwabuild.installed(layout)
    _fake_bwa(layout.bwa_bin_dir, with_j=True)
    now = bwabuild.fingerprint()
    assert now["source_sha256"] == hashlib.sha256(bwabuild.driver_source()).hexdigest()
    info = layout.bwa_root / bwabuild.BUILD_INFO
    info.write_text(json.dumps(now))
    assert bwabuild.installed(layout) is (now["libbwa_sha256"] is not None)
    for key in now:  # a new C source or a Debian update of libbwa.a: rebuilt
        info.write_text(json.dumps({**now, key: "0" * 64}))
        assert not bwabuild.installed(layout), key
    info.write_text(json.dumps({"patch_sha256": "an earlier build's record"}))
    assert not bwabuild.installed(layout)


def test_layout_is_keyed_by_the_build(tmp_path: Path) -> None:
    layout = Layout(state=tmp_path / "s", tools=tmp_path / "t")
    assert layout.bwa_bin == tmp_path / "t" / "bwa" / pins.BWA_BUILD / "bin" / "bwa"
    assert tools.bwa_bin_dir(layout) == layout.bwa_bin.parent


def test_probe_tells_patched_from_stock(tmp_path: Path) -> None:
    patched = _fake_bwa(tmp_path / "p", with_j=True, version=pins.BWA_VERSION_STRING)
    stock = _fake_bwa(tmp_path / "s", with_j=False)
    assert bwabuild.probe(patched) == (pins.BWA_VERSION_STRING, True)
    assert bwabuild.probe(stock) == ("0.7.17-r1188", False)
    assert bwabuild.probe(tmp_path / "absent") == (None, False)


def test_bwa_check_fails_on_a_bwa_without_j(tmp_path: Path) -> None:
    _fake_bwa(tmp_path / "p", with_j=True)
    _fake_bwa(tmp_path / "s", with_j=False)
    note, problem = tools.bwa_check(f"{tmp_path / 'p'}:{tmp_path / 's'}")
    assert problem is None and str(tmp_path / "p" / "bwa") in note
    note, problem = tools.bwa_check(f"{tmp_path / 's'}:{tmp_path / 'p'}")
    assert problem is not None and "lacks `bwa mem -J`" in problem
    assert tools.bwa_check(str(tmp_path / "empty"))[1] is not None


def test_service_path_puts_the_build_first_once(tmp_path: Path) -> None:
    layout = Layout(state=tmp_path / "s", tools=tmp_path / "t")
    first = str(layout.bwa_bin_dir)
    assert tools.service_path("/usr/bin:/bin", layout) == f"{first}:/usr/bin:/bin"
    assert tools.service_path(f"/usr/bin:{first}:/bin", layout) == f"{first}:/usr/bin:/bin"
    env = tools.with_service_path({"A": "1", "PATH": "/bin"}, layout)
    assert env == {"A": "1", "PATH": f"{first}:/bin"}


def test_use_patched_bwa_needs_the_build(tmp_path: Path) -> None:
    layout = Layout(state=tmp_path / "s", tools=tmp_path / "t")
    with pytest.raises(tools.StackError, match="genomebus stack install"):
        tools.use_patched_bwa({"PATH": "/bin"}, layout)
    _fake_bwa(layout.bwa_bin_dir, with_j=True)
    environ = {"PATH": "/bin"}
    assert tools.use_patched_bwa(environ, layout) == layout.bwa_bin_dir
    assert environ["PATH"] == f"{layout.bwa_bin_dir}:/bin"


def test_service_process_runs_with_the_build_first_in_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENOMEBUS_TOOLS_DIR", str(tmp_path / "t"))
    _fake_bwa(Layout(state=tmp_path, tools=tmp_path / "t").bwa_bin_dir, with_j=True)
    seen: dict[str, str] = {}

    class Popen:
        def __init__(self, argv: list[str], *, env: dict[str, str], **_: object) -> None:
            seen.update(env)

    monkeypatch.setattr(subprocess, "Popen", Popen)
    services.ServiceProcess("alignment", {"PATH": "/usr/bin:/bin"}, tmp_path / "logs").start()
    assert seen["PATH"] == f"{tmp_path / 't' / 'bwa' / pins.BWA_BUILD / 'bin'}:/usr/bin:/bin"


def test_alignment_refuses_to_start_without_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GENOMEBUS_TOOLS_DIR", str(tmp_path / "t"))
    with pytest.raises(services.StackError, match="patched bwa"):
        services.ServiceProcess("alignment", {}, tmp_path / "logs").start()


# --- against the installed build (`make test` installs first; fails, never skips) ---------------
def test_installed_build_takes_j_and_reinstall_is_a_no_op() -> None:
    layout = Layout.discover()
    assert bwabuild.installed(layout), f"{layout.bwa_bin} missing: run `genomebus stack install`"
    assert bwabuild.probe(layout.bwa_bin) == (pins.BWA_VERSION_STRING, True)
    started = time.monotonic()
    summary = bwabuild.install(layout, echo=lambda msg: pytest.fail(f"rebuilt: {msg}"))
    assert time.monotonic() - started < 1.0
    assert summary.startswith("cached: ")


def test_cli_install_twice_is_fast() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "genomebus_devstack.cli", "stack", "install"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    assert "install  bwa       ok              cached: " in result.stdout
    assert time.monotonic() - started < 5.0  # every step cached (apt skipped, nothing built)


def test_dockerfile_builds_the_same_bwa() -> None:
    """deploy/docker/Dockerfile's bwa stage repeats the build (no Python there): keep it equal."""
    dockerfile = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "Dockerfile"
    text = " ".join(dockerfile.read_text().replace("\\\n", " ").split())
    source = Path(pins.BWA_DRIVER_SOURCE)
    assert f"COPY libs/devstack/src/genomebus_devstack/{source} /build/" in text
    gcc = bwabuild.compile_command("gcc", Path(source.name), Path("/out/bin/bwa"))
    assert " ".join(gcc) in text
    assert f"Version: {pins.BWA_VERSION_STRING}" in text
    assert "apt-get install -y --no-install-recommends bwa libbwa-dev zlib1g-dev gcc" in text
    assert 'alignment) tools="bwa ' in text  # Debian's bwa (`bwa index`) in the runtime too
    assert "COPY --from=bwa /out/ /usr/local/" in text  # ours first in PATH: /usr/local/bin


# --- the build itself, against Debian's bwa, on a small generated sample ------------------------
PAIRS = 2000  # mason's reads are 150 bases: a batch of -K 60000 bases is 200 pairs
BATCH = "60000"
FIRST_PAIRS = 1000  # the first chunk: five whole batches
READ_GROUP = "@RG\\tID:s1\\tSM:s1"


@pytest.fixture(scope="module")
def driver() -> Path:
    layout = Layout.discover()
    assert bwabuild.installed(layout), f"{layout.bwa_bin} missing: run `genomebus stack install`"
    return layout.bwa_bin


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, driver: Path) -> Path:
    """A real 200 kb slice of chrX plus a second contig repeating 30 kb of it (so that many reads
    tie between two places), 2000 simulated pairs, plain and gzipped, whole and in two chunks,
    indexed by `bwa index` through our bwa (which runs Debian's)."""
    from genomebus_testdata.reference import make_reference
    from genomebus_testdata.simulate import simulate_sample

    work = tmp_path_factory.mktemp("bwa-sample")
    source = make_reference(work / "source", length=200_000)
    sequence = "".join(source.read_text().splitlines()[1:])
    with open(work / "ref.fa", "w") as fasta:
        for name, seq in (("main", sequence), ("copy", sequence[50_000:80_000])):
            lines = (seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
            fasta.write(f">{name}\n" + "".join(lines))
    reads = simulate_sample(work / "ref.fa", work / "sim", read_pairs=PAIRS, seed=7)
    for mate, gz in (("1", reads.reads_1), ("2", reads.reads_2)):
        shutil.copy(gz, work / f"r{mate}.fq.gz")
        lines = gzip.decompress(gz.read_bytes()).decode().splitlines(keepends=True)
        assert len(lines) == 4 * PAIRS
        (work / f"r{mate}.fq").write_text("".join(lines))
        (work / f"a{mate}.fq").write_text("".join(lines[: 4 * FIRST_PAIRS]))
        (work / f"b{mate}.fq").write_text("".join(lines[4 * FIRST_PAIRS :]))
    done = subprocess.run(
        [str(driver), "index", "ref.fa"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "[bwa_index]" in done.stderr and (work / "ref.fa.sa").is_file()
    return work


def _mem(bwa: Path | str, args: list[str], cwd: Path) -> tuple[list[str], list[str]]:
    """(header lines, records) of `bwa mem args`."""
    done = subprocess.run(
        [str(bwa), "mem", *args], cwd=cwd, capture_output=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    lines = done.stdout.decode().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("@")]
    return header, lines[len(header) :]


@pytest.mark.parametrize(
    "args",
    [
        ["-K", BATCH, "-t", "2", "-R", READ_GROUP, "ref.fa", "r1.fq", "r2.fq"],
        ["-K", BATCH, "-t", "1", "-R", READ_GROUP, "ref.fa", "r1.fq", "r2.fq"],
        ["-K", "100000000", "-t", "2", "-R", READ_GROUP, "ref.fa", "r1.fq", "r2.fq"],
        ["-t", "2", "-R", READ_GROUP, "ref.fa", "r1.fq", "r2.fq"],
        ["-K", BATCH, "-t", "2", "-R", READ_GROUP, "ref.fa", "r1.fq.gz", "r2.fq.gz"],
        ["-K", BATCH, "-t", "2", "ref.fa", "r1.fq"],
    ],
    ids=["K-t2", "K-t1", "one-batch", "no-K", "gzip", "single-end"],
)
def test_records_equal_debian_bwa(driver: Path, sample: Path, args: list[str]) -> None:
    stock_header, stock = _mem(pins.BWA_STOCK, args, sample)
    ours_header, ours = _mem(driver, args, sample)
    assert len(ours) >= 2 * PAIRS if "r2.fq" in " ".join(args) else len(ours) >= PAIRS
    assert ours == stock  # byte for byte, in order
    pg = [i for i, line in enumerate(ours_header) if line.startswith("@PG")]
    assert pg == [len(ours_header) - 1]  # bwa's order: @SQ, @RG, then @PG
    assert ours_header[:-1] == stock_header[:-1]
    assert ours_header[-1].startswith(f"@PG\tID:bwa\tPN:bwa\tVN:{pins.BWA_VERSION_STRING}\tCL:")
    assert stock_header[-1].startswith("@PG\tID:bwa\tPN:bwa\tVN:0.7.17-r1188\tCL:")


def test_chunks_with_j_equal_one_run(driver: Path, sample: Path) -> None:
    common = ["-K", BATCH, "-t", "2", "-R", READ_GROUP, "ref.fa"]
    _, whole = _mem(driver, [*common, "r1.fq", "r2.fq"], sample)
    _, first = _mem(driver, [*common, "a1.fq", "a2.fq"], sample)
    _, rest = _mem(driver, ["-J", str(2 * FIRST_PAIRS), *common, "b1.fq", "b2.fq"], sample)
    assert first + rest == whole
    # Without -J the second chunk numbers its reads from 0: the data has ties, they move.
    _, stock_rest = _mem(pins.BWA_STOCK, [*common, "b1.fq", "b2.fq"], sample)
    moved = sum(a != b for a, b in zip(first + stock_rest, whole, strict=True))
    assert moved > 20, moved
    _, zero = _mem(driver, ["-J", "0", *common, "a1.fq", "a2.fq"], sample)
    assert zero == first  # -J 0 is bwa's own numbering


def test_usage_version_and_refusals(driver: Path) -> None:
    bare = subprocess.run([str(driver)], capture_output=True, text=True, check=False)
    assert bare.returncode == 1
    assert re.search(r"Version:\s*(\S+)", bare.stderr)[1] == pins.BWA_VERSION_STRING
    mem = subprocess.run([str(driver), "mem"], capture_output=True, text=True, check=False)
    assert mem.returncode == 1 and re.search(r"^\s*-J INT", mem.stderr, re.MULTILINE)
    for args in (
        ["-J", "x", "r.fa", "1.fq"],
        ["-J", "-2", "r.fa", "1.fq"],
        ["-M", "r.fa", "1.fq"],
        ["-R", "no-rg-line", "r.fa", "1.fq"],
        ["-K"],
    ):
        refused = subprocess.run(
            [str(driver), "mem", *args], capture_output=True, text=True, check=False
        )
        assert refused.returncode == 1 and refused.stdout == "", args
    assert "not offered" in refused.stderr or "needs a value" in refused.stderr
    other = subprocess.run([str(driver), "index"], capture_output=True, text=True, check=False)
    stock = subprocess.run([pins.BWA_STOCK, "index"], capture_output=True, text=True, check=False)
    assert (other.returncode, other.stderr) == (stock.returncode, stock.stderr)
