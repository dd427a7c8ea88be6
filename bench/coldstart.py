"""Cold-start import cost: each Lambda handler module imported in a fresh process, against `import boto3`.

Prints the median of several runs per target and its ratio to a bare `import boto3` measured in the
same run, interleaved so that machine noise hits every target alike. Compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from gatewayctl.template import PROJECT_ROOT, load_template

PROBE = """
import sys, time
sys.path.insert(0, {layer!r})
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""


def handler_statement(code_uri: str, handler: str) -> str:
    module = handler.rpartition(".")[0]
    source = PROJECT_ROOT / code_uri / f"{module}.py"
    return (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('handler_module', {str(source)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"assert callable(getattr(module, {handler.rpartition('.')[2]!r}))"
    )


def targets() -> dict[str, str]:
    found = {"import boto3": "import boto3"}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            properties = resource["Properties"]
            found[name] = handler_statement(str(properties["CodeUri"]), str(properties["Handler"]))
    return found


def measure(statement: str) -> float:
    code = PROBE.format(layer=str(PROJECT_ROOT / "layers" / "gateway"), statement=statement)
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    statements = targets()
    for statement in statements.values():  # warm the OS file cache once; bytecode is not written
        measure(statement)
    samples: dict[str, list[float]] = {name: [] for name in statements}
    for _ in range(runs):
        for name, statement in statements.items():
            samples[name].append(measure(statement))
    baseline = statistics.median(samples["import boto3"])
    print(f"python {sys.version.split()[0]}, {runs} runs each, fresh process per run, median import time")
    print(f"{'target':<22}{'median ms':>12}{'ratio to import boto3':>24}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<22}{median * 1000:>12.1f}{median / baseline:>24.2f}")


if __name__ == "__main__":
    main()
