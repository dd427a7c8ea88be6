"""`sam build` of the real template, as `make build` runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python313() -> str | None:
    found = subprocess.run([ROOT / "scripts" / "find-python313"], capture_output=True, text=True, check=False)
    return found.stdout.strip() or None


@pytest.mark.build
def test_sam_build_produces_the_function_and_an_arm64_layer(tmp_path: Path) -> None:
    interpreter = python313()
    if interpreter is None:
        pytest.skip("no Python 3.13 on PATH or under pyenv; sam build needs one for the python3.13 runtime")
    sam = shutil.which("sam", path=str(Path(sys.executable).parent))
    assert sam, "sam (aws-sam-cli) is not installed in this environment"
    build_dir = tmp_path / "build"
    env = {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{Path(interpreter).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        [sam, "build", "--template", str(ROOT / "template.yaml"), "--build-dir", str(build_dir)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (build_dir / "ApiFunction" / "app.py").is_file()
    # Lambda Web Adapter executes the handler script: sam deploy zips it with the mode it has here.
    run = build_dir / "ApiFunction" / "run.sh"
    assert run.is_file() and os.access(run, os.X_OK), "run.sh must stay executable"
    layer = build_dir / "GatewayLayer" / "python"
    assert (layer / "llm_gateway" / "models.json").is_file()
    for package in ("aws_lambda_powertools", "starlette", "uvicorn"):
        assert (layer / package).is_dir(), f"{package} is missing from the layer"
    native = list((layer / "pydantic_core").glob("_pydantic_core.cpython-313-aarch64-linux-gnu.so"))
    assert native, "pydantic_core was not built for python3.13 on arm64"
