"""Warm CPU time per chat request in the API function, as Lambda runs it, without DynamoDB.

The function is driven in-process with `events/api/chat-completions.json` (the echo model) after a warm-up:
behind AWS Lambda Web Adapter, each proxy event goes through the adapter's translation to the ASGI app in one
running event loop; with a plain handler, the handler is called with the event. CPU is the process's (all
threads) over `--requests` requests; `--streamed` uses the streamed event instead. Medians of `--runs` fresh
processes. `--root` measures another checkout (e.g. an older commit in a git worktree with its own .venv),
so before and after come from the same script.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import asyncio, base64, contextlib, io, json, sys, time
root, event_name, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path[:0] = [root, root + "/layers/gateway"]
from pathlib import Path
from emulator.template import load_template
template_path = Path(root) / "template.yaml"
template = load_template(template_path)
event = json.loads((Path(root) / "events" / "api" / event_name).read_text())
handler_name = template["Resources"]["ApiFunction"]["Properties"]["Handler"]

if handler_name.endswith(".sh"):
    from emulator.webadapter import WebAdapterFunction, adapter_request
    from emulator.template import load_web_app
    app = load_web_app("ApiFunction", template, template_path)
    # The adapter's translation of the event runs in the adapter's own process on Lambda: done once here.
    scope, body = adapter_request(event, WebAdapterFunction("ApiFunction", app, 900).lambda_context())

    async def one():
        sent = []
        async def receive():
            if not sent:
                sent.append(1)
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()
        statuses = []
        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
        await app(dict(scope), receive, send)
        assert statuses == [200], statuses

    async def run(count):
        for _ in range(count):
            await one()

    def measure(count):
        asyncio.get_event_loop_policy().get_event_loop().run_until_complete(run(count))
else:
    from emulator.lambda_context import LocalLambdaContext
    from emulator.template import load_handler
    handler = load_handler("ApiFunction", template, template_path)

    def measure(count):
        for _ in range(count):
            response = handler(event, LocalLambdaContext(function_name="ApiFunction"))
            assert response["statusCode"] == 200, response

with contextlib.redirect_stdout(io.StringIO()):
    measure(50)
    started = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        measure(requests)
    spent = time.process_time() - started
print(spent / requests)
"""


def run_once(root: Path, event: str, requests: int) -> float:
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_METRICS_NAMESPACE": "Bench"}
    python = root / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-c", PROBE, str(root), event, str(requests)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=root,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, action="append", help="checkout(s) to measure (default: this one)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--streamed", action="store_true", help="measure streamed requests")
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.root or [PROJECT_ROOT])]
    event = "chat-completions-stream.json" if args.streamed else "chat-completions.json"
    samples: dict[Path, list[float]] = {root: [] for root in roots}
    for _ in range(args.runs):  # interleaved, so that machine noise hits every checkout alike
        for root in roots:
            samples[root].append(run_once(root, event, args.requests))
    print(f"{event}, {args.requests} warm requests per process, {args.runs} processes, median CPU per request")
    first = statistics.median(samples[roots[0]])
    for root in roots:
        commit = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, text=True, check=False
        ).stdout.strip()
        median = statistics.median(samples[root])
        print(f"{root} at {commit}: {median * 1e6:.0f} µs ({median / first:.2f}x the first)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
