from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genomebus_testdata", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_then_evaluate(tmp_path: Path) -> None:
    made = _cli("make", "--out", str(tmp_path), "--length", "100000", "--coverage", "3",
                "--seed", "4", "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = json.loads(made.stdout)
    sample = result["sample"]
    assert sample["read_pairs"] == 1_000 and sample["coverage"] == 3.0
    assert Path(sample["reads_1"]).is_file() and Path(sample["truth_vcf"]).is_file()
    assert set(result["seconds"]) == {"reference", "simulate"}

    human = _cli("make", "--out", str(tmp_path), "--length", "100000", "--coverage", "3",
                 "--seed", "4")  # fmt: skip
    assert "reference  " in human.stdout and "1,000 pairs x 150 bp (3.0x)" in human.stdout

    scored = _cli("evaluate", "--calls", sample["truth_vcf"], "--truth", sample["truth_vcf"],
                  "--reference", sample["reference"], "--json")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["snv_f1"] == 1.0


def test_errors_are_one_line(tmp_path: Path) -> None:
    bad = _cli("make", "--out", str(tmp_path), "--start", "7600000", "--length", "100000")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
