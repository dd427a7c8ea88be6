"""scripts/security_scan.py: a `# nosec` must name the test it silences and say why."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "security_scan.py"


@pytest.fixture(scope="module")
def scan() -> ModuleType:
    spec = importlib.util.spec_from_file_location("security_scan", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("line", "explained"),
    [
        ('x = "local"  # nosec B105 # a placeholder the local endpoints accept', True),
        ("import subprocess  # noqa: S404 # nosec B404, B603 # fixed argv, this interpreter", True),
        ('x = "local"  # nosec', False),
        ('x = "local"  # nosec B105', False),
        ('x = "local"  # nosec # a placeholder', False),
        ('x = "local"  # nosec B105 #', False),
        ('x = "local"  # a comment about nothing', True),
    ],
)
def test_a_nosec_needs_a_test_id_and_a_reason(scan: ModuleType, tmp_path: Path, line: str, explained: bool) -> None:
    source = tmp_path / "probe.py"
    source.write_text(line + "\n")
    assert (scan.unexplained_nosec([source]) == []) is explained


def test_the_code_has_no_unexplained_nosec(scan: ModuleType) -> None:
    sources = [p for folder in scan.CODE for p in (scan.ROOT / folder).rglob("*.py")]
    assert sources
    assert scan.unexplained_nosec(sources) == []
