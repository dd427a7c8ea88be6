"""Cold start of each function as Lambda starts it, next to a bare `import boto3`, in fresh processes.

- A function behind AWS Lambda Web Adapter: its handler script (run.sh) is run as the adapter runs it, and
  the time is from the process's start until the app answers the adapter's readiness check (GET /, polled
  every 10 ms as the adapter does).
- A function with a plain handler: a process that imports the handler module, until it exits.
- `import boto3`: a process that does only that, until it exits.

Every figure includes the interpreter's own start. Targets are interleaved so machine noise hits them alike;
medians of `--runs` runs are printed with their ratio to `import boto3` from the same run. `--root` (repeatable)
measures other checkouts of the project (e.g. an older commit in a git worktree with its own .venv) in the same run.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WEB_ADAPTER_WRAPPER = "/opt/bootstrap"


class _Loader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !Sub...) as plain values: only literals are needed here."""


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(root: Path) -> dict[str, str]:
    return {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": f"{root / '.venv' / 'bin'}:/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(root / "layers" / "gateway"),
    }


def import_time(root: Path, statement: str) -> float:
    """Seconds from spawning a Python process that runs `statement` until it exits."""
    started = time.perf_counter()
    subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", statement], check=True, env=environment(root))
    return time.perf_counter() - started


def web_app_time(root: Path, code: Path, handler: str) -> float:
    """Seconds from starting the handler script until the app answers GET / (any HTTP status)."""
    port = free_port()
    env = {**environment(root), "LAMBDA_TASK_ROOT": str(code), "AWS_LWA_PORT": str(port)}
    started = time.perf_counter()
    process = subprocess.Popen(["/bin/sh", str(code / handler)], cwd=code, env=env, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{handler} exited with {process.returncode}") from None
                time.sleep(0.01)
                continue
            break
        return time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=10)


def targets(root: Path) -> dict[str, object]:
    template = yaml.load((root / "template.yaml").read_text(), Loader=_Loader)
    found: dict[str, object] = {"import boto3": lambda: import_time(root, "import boto3")}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        code = root / str(properties["CodeUri"])
        handler = str(properties["Handler"])
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        if variables.get("AWS_LAMBDA_EXEC_WRAPPER") == WEB_ADAPTER_WRAPPER:
            found[name] = lambda code=code, handler=handler: web_app_time(root, code, handler)
        else:
            module, _, function = handler.rpartition(".")
            statement = (
                "import importlib.util\n"
                f"spec = importlib.util.spec_from_file_location('handler_module', {str(code / (module + '.py'))!r})\n"
                "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
                f"assert callable(getattr(module, {function!r}))"
            )
            found[name] = lambda statement=statement: import_time(root, statement)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--root", type=Path, action="append", help="checkout(s) to measure, each with its .venv (default: this one)"
    )
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.root or [PROJECT_ROOT])]
    measures = {(root, name): measure for root in roots for name, measure in targets(root).items()}
    for measure in measures.values():  # warm the OS file cache once; bytecode is not written
        measure()  # type: ignore[operator]
    samples: dict[tuple[Path, str], list[float]] = {target: [] for target in measures}
    for _ in range(args.runs):  # every target of every checkout in turn, so machine noise hits them alike
        for target, measure in measures.items():
            samples[target].append(measure())  # type: ignore[operator]
    for root in roots:
        baseline = statistics.median(samples[(root, "import boto3")])
        commit = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"{root} at {commit}, python {sys.version.split()[0]}, {args.runs} runs each, fresh process per run")
        print(f"{'target':<24}{'median ms':>12}{'ratio to import boto3':>24}")
        for (owner, name), values in samples.items():
            if owner == root:
                median = statistics.median(values)
                print(f"{name:<24}{median * 1000:>12.1f}{median / baseline:>24.2f}")


if __name__ == "__main__":
    main()
