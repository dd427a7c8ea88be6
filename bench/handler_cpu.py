"""Warm CPU time per chat request in the API function, as Lambda runs it, without DynamoDB; and, with `--floor`,
its wall time beside the design's floor.

The function is driven in-process with `events/api/chat-completions.json` (the echo model) after a warm-up:
behind AWS Lambda Web Adapter, each proxy event goes through the adapter's translation to the ASGI app in one
running event loop; with a plain handler, the handler is called with the event. CPU is the process's (all
threads) over `--requests` requests; `--streamed` uses the streamed event instead. Medians of `--runs` fresh
processes. Beside the CPU, the bytes per request the function writes to stdout (its EMF documents and log lines,
what CloudWatch Logs ingests and bills per byte). botocore signs requests with its own SigV4 code, as in the
deployed layer (BOTO_DISABLE_CRT, see ENV). The process is an environment on demand, as Lambda marks it
(AWS_LAMBDA_FUNCTION_NAME without AWS_LAMBDA_MAX_CONCURRENCY). `--root` measures another checkout (e.g. an older
commit in a git worktree with its own .venv), so before and after come from the same script.

`--floor` also measures, in the same run, the floor a chat request cannot go below in this design: a bare
Starlette route that validates the same body with Powertools' parser and makes the two DynamoDB UpdateItems of a
metered request through botocore, answered at botocore's send step (`before-send`: serialised and signed, no
network), with botocore's default client and with the gateway's client settings; and each checkout's own request
with its usage table answered the same way, as an environment on demand and as one of Lambda Managed Instances
(AWS_LAMBDA_MAX_CONCURRENCY set). All in one process per checkout, one request of each in turn, so that the load of
a shared machine weighs on the floor and the gateway alike: CPU per request and the median wall time of one request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Answers every DynamoDB call at botocore's send step: the request is built, serialised and signed, never sent.
CANNED_DYNAMODB = r"""
from botocore.awsrequest import AWSResponse

class _Raw:
    def stream(self, **_):
        yield b'{"Attributes":{}}'

def canned(request, **_):
    return AWSResponse(request.url, 200, {"content-type": "application/x-amz-json-1.0"}, _Raw())
"""

PROBE = r"""
import asyncio, base64, io, json, os, statistics, sys, time
root, event_name, requests, dynamodb = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "dynamodb"


class Counted(io.TextIOBase):
    # Stands in for the function's stdout (what Lambda sends to CloudWatch Logs) from before the app is imported,
    # so that its logger writes here too: counts the bytes, keeps none.
    written = 0

    def write(self, text):
        self.written += len(text.encode("utf-8", "surrogatepass"))
        return len(text)


real_stdout, sys.stdout = sys.stdout, Counted()
sys.path[:0] = [root, root + "/layers/gateway"]
from pathlib import Path
if dynamodb:
    os.environ["GATEWAY_USAGE_TABLE"] = "Usage"
    exec(sys.argv[5])
    from llm_gateway.store.dynamo import dynamodb_client
    dynamodb_client().meta.events.register("before-send.dynamodb", canned)
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

    walls = []

    async def timed(count):
        for _ in range(count):
            started = time.perf_counter()
            await one()
            walls.append(time.perf_counter() - started)

    def measure(count):
        walls.clear()
        asyncio.get_event_loop_policy().get_event_loop().run_until_complete(timed(count))
else:
    walls = []

    from emulator.lambda_context import LocalLambdaContext
    from emulator.template import load_handler
    handler = load_handler("ApiFunction", template, template_path)

    def measure(count):
        for _ in range(count):
            response = handler(event, LocalLambdaContext(function_name="ApiFunction"))
            assert response["statusCode"] == 200, response

measure(50)
written = sys.stdout.written
started = time.process_time()
measure(requests)
spent = time.process_time() - started
print(spent / requests, statistics.median(walls) if walls else 0.0, (sys.stdout.written - written) / requests,
      file=real_stdout, flush=True)
"""

FLOOR = r"""
import asyncio, io, json, os, statistics, sys, time
root, requests = sys.argv[1], int(sys.argv[2])


class Discarded(io.TextIOBase):
    def write(self, text):
        return len(text)


real_stdout, sys.stdout = sys.stdout, Discarded()
sys.path[:0] = [root, root + "/layers/gateway"]
os.environ["GATEWAY_USAGE_TABLE"] = "Usage"
exec(sys.argv[3])
from pathlib import Path
import boto3
from aws_lambda_powertools.utilities.parser import parse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from emulator.template import load_template, load_web_app
from emulator.webadapter import WebAdapterFunction, adapter_request
from llm_gateway.dialects.openai_chat.schemas import ChatCompletionRequest
from llm_gateway.store import dynamo

template_path = Path(root) / "template.yaml"
gateway = load_web_app("ApiFunction", load_template(template_path), template_path)
event = json.loads((Path(root) / "events" / "api" / "chat-completions.json").read_text())
gateway_scope, body = adapter_request(event, WebAdapterFunction("ApiFunction", gateway, 900).lambda_context())
floor_scope = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
    "path": "/chat/completions", "raw_path": b"/chat/completions", "query_string": b"", "root_path": "",
    "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
}
key = {"key_id": {"S": "key_1"}, "period": {"S": "2026-12"}}
answer = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "choices": []})


def floor_app(client):
    client.meta.events.register("before-send.dynamodb", canned)

    async def chat(request):
        parse(event=(await request.body()).decode(), model=ChatCompletionRequest)
        client.update_item(
            TableName="Usage", Key=key, UpdateExpression="ADD budget_day_07 :t",
            ConditionExpression="attribute_not_exists(budget_day_07) OR budget_day_07 <= :cap",
            ExpressionAttributeValues={":t": {"N": "100"}, ":cap": {"N": "100000"}}, ReturnValues="ALL_NEW",
        )
        client.update_item(
            TableName="Usage", Key=key, UpdateExpression="ADD budget_day_07 :t, requests_07 :one",
            ExpressionAttributeValues={":t": {"N": "-90"}, ":one": {"N": "1"}},
        )
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/chat/completions", chat, methods=["POST"])])


dynamo.dynamodb_client().meta.events.register("before-send.dynamodb", canned)
# Each request in turn, so that whatever else the machine runs hits them alike; the environment variable that Lambda
# Managed Instances set is there for that request only.
apps = {"floor": (floor_app(boto3.client("dynamodb", region_name="us-east-1")), floor_scope, False)}
if hasattr(dynamo, "dynamodb_config"):
    client = boto3.client("dynamodb", region_name="us-east-1", config=dynamo.dynamodb_config())
    apps["floor, gateway client"] = (floor_app(client), floor_scope, False)
apps["gateway"] = (gateway, gateway_scope, False)
apps["gateway, managed instances"] = (gateway, gateway_scope, True)
walls = {name: [] for name in apps}
cpus = {name: [] for name in apps}


async def one(app, scope):
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


async def run(count, recorded):
    for _ in range(count):
        for name, (app, scope, managed) in apps.items():
            if managed:
                os.environ["AWS_LAMBDA_MAX_CONCURRENCY"] = "64"
            cpu, wall = time.process_time(), time.perf_counter()
            await one(app, scope)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            os.environ.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
            if recorded:
                walls[name].append(wall)
                cpus[name].append(cpu)


loop = asyncio.new_event_loop()
loop.run_until_complete(run(50, False))
loop.run_until_complete(run(requests, True))
medians = {name: [statistics.fmean(cpus[name]), statistics.median(walls[name])] for name in apps}
print(json.dumps(medians), file=real_stdout, flush=True)
"""


ENV = {
    "PATH": "/usr/bin:/bin",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    # Sign with botocore's own SigV4 code, as the deployed function does: the layer installs boto3 without the CRT
    # (layers/gateway/requirements.txt), while this virtualenv has awscrt through aws-sam-cli's boto3[crt], with
    # which botocore signs through the CRT instead (about 150 µs more per UpdateItem in the gateway's process).
    "BOTO_DISABLE_CRT": "true",
    # Set by Lambda in every environment: an environment on demand, which Lambda gives one request at a time.
    "AWS_LAMBDA_FUNCTION_NAME": "ApiFunction",
}


def probe(root: Path, *arguments: str) -> tuple[float, float, float]:
    """(CPU seconds, median wall seconds, bytes written to stdout) per request, from a fresh process of `root`'s
    virtualenv."""
    python = root / ".venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", *arguments], capture_output=True, text=True, check=True, env=ENV, cwd=root)
    cpu, wall, written = out.stdout.strip().splitlines()[-1].split()
    return float(cpu), float(wall), float(written)


def run_once(root: Path, event: str, requests: int) -> tuple[float, float]:
    """(CPU seconds, log bytes) per request."""
    cpu, _, written = probe(root, PROBE, str(root), event, str(requests), "none")
    return cpu, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, action="append", help="checkout(s) to measure (default: this one)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--streamed", action="store_true", help="measure streamed requests")
    parser.add_argument("--floor", action="store_true", help="also the design's floor and the wall time beside it")
    args = parser.parse_args()
    roots = [root.resolve() for root in (args.root or [PROJECT_ROOT])]
    event = "chat-completions-stream.json" if args.streamed else "chat-completions.json"
    samples: dict[Path, list[tuple[float, float]]] = {root: [] for root in roots}
    for _ in range(args.runs):  # interleaved, so that machine noise hits every checkout alike
        for root in roots:
            samples[root].append(run_once(root, event, args.requests))
    print(
        f"{event}, {args.requests} warm requests per process, {args.runs} processes, median CPU per request; "
        "log bytes per request (EMF documents and log lines on stdout)"
    )
    first = statistics.median(cpu for cpu, _ in samples[roots[0]])
    for root in roots:
        commit = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%h"], capture_output=True, text=True, check=False
        ).stdout.strip()
        median = statistics.median(cpu for cpu, _ in samples[root])
        written = statistics.median(written for _, written in samples[root])
        print(f"{root} at {commit}: {median * 1e6:.0f} µs ({median / first:.2f}x the first), {written:.0f} log bytes")
    if args.floor:
        floor(roots, args.requests, args.runs)
    sys.stdout.flush()


def floor(roots: list[Path], requests: int, runs: int) -> None:
    """Each checkout's chat request with its usage table answered at botocore's send step, beside the floor measured
    in the same process, one request of each in turn: the floor with botocore's default client and with the
    gateway's DynamoDB client settings where the checkout has them (store/dynamo.py's `dynamodb_config`), the
    gateway as an environment on demand and as one of Lambda Managed Instances."""
    samples: dict[Path, list[dict[str, list[float]]]] = {root: [] for root in roots}
    for _ in range(runs):  # interleaved, as above
        for root in roots:
            python = root / ".venv" / "bin" / "python"
            out = subprocess.run(
                [str(python), "-c", FLOOR, str(root), str(requests), CANNED_DYNAMODB],
                capture_output=True, text=True, check=True, env=ENV, cwd=root,
            )  # fmt: skip
            samples[root].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"with two DynamoDB UpdateItems answered at botocore's send step, {requests} requests of each kind in turn per "
        f"process, {runs} processes: CPU (mean per request) and wall (median), medians of the processes"
    )
    for root in roots:
        names = list(samples[root][0])
        cpu_of = {name: statistics.median(sample[name][0] for sample in samples[root]) for name in names}
        wall_of = {name: statistics.median(sample[name][1] for sample in samples[root]) for name in names}
        print(f"  {root}:")
        for name in names:
            cpu, wall = cpu_of[name], wall_of[name]
            print(
                f"    {name}: CPU {cpu * 1e6:.0f} µs ({cpu / cpu_of['floor']:.2f}x the floor), "
                f"wall {wall * 1e3:.2f} ms ({wall / wall_of['floor']:.2f}x the floor)"
            )


if __name__ == "__main__":
    main()
