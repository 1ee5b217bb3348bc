"""Version parsing for the minimum tool versions the pipeline needs."""

from __future__ import annotations

import pytest

from genomebus_devstack import pins, tools


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("1.16.1", (1, 16, 1)),
        ("1.16", (1, 16)),
        ("0.7.17-r1188", (0, 7, 17)),
        ("2.24-r1122", (2, 24)),
        ("1.21+ds", (1, 21)),
    ],
)
def test_parse_version(text: str, parsed: tuple[int, ...]) -> None:
    assert tools.parse_version(text) == parsed


@pytest.mark.parametrize(
    ("found", "minimum", "ok"),
    [
        ("1.16.1", "1.16", True),
        ("1.16", "1.16", True),
        ("1.9", "1.16", False),
        ("0.7.17-r1188", "0.7.17", True),
        ("0.7.16a", "0.7.17", False),
        ("0.7.18", "0.7.17", True),
        ("2.24-r1122", "2.24", True),
        ("2.17", "2.24", False),
        ("2.28", "2.24", True),
    ],
)
def test_version_at_least(found: str, minimum: str, ok: bool) -> None:
    assert tools.version_at_least(found, minimum) is ok


def test_parse_version_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        tools.parse_version("unknown")


def test_pins_cover_the_version_checked_tools() -> None:
    assert set(pins.MIN_TOOL_VERSIONS) <= {"samtools", "bcftools", "bwa", "minimap2"}
    assert {"bwa", "minimap2", "samtools", "bcftools", "kcat"} <= set(pins.DEBIAN_PACKAGES)


def test_missing_packages_reports_unknown_package() -> None:
    assert tools.missing_packages(["genomebus-no-such-package"]) == ["genomebus-no-such-package"]
