"""`gatewayctl serve`: start DynamoDB/API Gateway on loopback, provision template.yaml, serve the stage."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulator import PROJECT_ROOT
from emulator.apigateway import ApiDefinition
from emulator.aws import MotoProcess
from emulator.console import CONSOLE_DIST, CONSOLE_PATH
from emulator.control import LocalApiGatewayControl, SharedUsagePlanEnforcer
from emulator.events import Stage
from emulator.lambda_context import LambdaFunction
from emulator.provision import UsagePlanSpec, provision, usage_plans
from emulator.server import LocalApiGateway
from emulator.serving import DropMetrics, GatewayServer
from emulator.template import (
    PSEUDO_PARAMETERS,
    Resolver,
    function_environment,
    function_setting,
    functions,
    is_web_adapter_function,
    load_handler,
    load_template,
    load_web_app,
    translate_template,
)
from emulator.usageplans import ApiKeys
from emulator.webadapter import WebAdapterFunction
from gatewayctl.deployment import plans_from_outputs
from gatewayctl.local.models import local_registry
from llm_gateway.domain.key_admin import IssuedKey, KeyAdmin
from llm_gateway.domain.keys import generate_key, hash_key
from llm_gateway.domain.stores import KeyRecords
from llm_gateway.store.keys import KeyStore
from llm_gateway.store.sqlite.database import DATABASE_FILE, database
from llm_gateway.store.sqlite.keys import SqliteKeyStore

STACK_NAME = "llm-gateway-local"
DEMO_TENANT = "demo"
DEMO_PLAN = "standard"
# The local gateway's state (its SQLite database and the demo key), kept across restarts; .gitignored.
DEFAULT_DATA_DIR = PROJECT_ROOT / ".gateway-data"
DEMO_KEY_FILE = "demo-key"
# The local admin key: stands in for IAM credentials on the admin API's routes (Authorization: Bearer).
ADMIN_KEY_FILE = "admin-key"
ADMIN_KEY_PREFIX = "llmgw-admin-"


@dataclass
class ServeOptions:
    port: int = 3000
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    dynamodb_endpoint: str | None = None
    data_dir: Path | None = None
    demo_key: str | None = None
    # Worker processes serving requests (data directory mode); more help only with more cores.
    workers: int = 1
    metrics: bool = False
    quiet: bool = False
    models_file: Path | None = None


def _client(service: str, endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 # nosec B106 # a placeholder; the local endpoints accept any
    )


def _process_environment(env: dict[str, str], dynamodb_endpoint: str, region: str) -> None:
    """The handlers run in this process: give them the functions' variables and the local endpoint (none with the
    embedded store).

    Only DynamoDB is redirected (AWS_ENDPOINT_URL_DYNAMODB is read by boto3 itself); other AWS calls, such
    as Bedrock, still go to AWS with the developer's own credentials when there are any.
    """
    os.environ.update(env)
    os.environ.setdefault("AWS_REGION", region)
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    if not dynamodb_endpoint:
        return  # keys and usage in the embedded store: nothing reaches DynamoDB
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
        # The local DynamoDB needs signed requests but accepts any credentials.
        os.environ["AWS_ACCESS_KEY_ID"] = "local"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "local"  # noqa: S105 # nosec B105 # a placeholder, as above


def sdk_snippet(base_url: str, key: str, model: str) -> str:
    code = (
        f"from openai import OpenAI; client = OpenAI(base_url={json.dumps(base_url)}, api_key={json.dumps(key)}); "
        f"print(client.chat.completions.create(model={json.dumps(model)}, "
        'messages=[{"role": "user", "content": "Hello, gateway"}]).choices[0].message.content)'
    )
    return f".venv/bin/python -c {shlex.quote(code)}"


def banner(
    base_url: str,
    models: list[str],
    key: str,
    plan: UsagePlanSpec,
    keys_hint: str,
    *,
    state: str = "",
    admin_key: str = "",
) -> str:
    model = "echo" if "echo" in models or not models else models[0]
    origin = base_url.rsplit("/", 1)[0]
    console = (
        f"console: {origin}{CONSOLE_PATH}/  (sign in with the admin key)\n"
        if (CONSOLE_DIST / "index.html").exists()
        else "console: not built (make console, or make run, builds it)\n"
    )
    body = shlex.quote(f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello, gateway"}}]}}')
    return f"""
llm-gateway is serving template.yaml on {base_url}  (API Gateway emulated in-process, no Docker)
models: {", ".join(models)}
demo key (tenant {DEMO_TENANT}, plan {DEMO_PLAN}: {plan.rate_limit:g} req/s, burst {plan.burst_limit}, \
{plan.quota_limit} per {str(plan.quota_period).lower()}):

    {key}

curl {base_url}/chat/completions -H "x-api-key: {key}" -H "content-type: application/json" -d {body}

{sdk_snippet(base_url, key, model)}

ANTHROPIC_BASE_URL={base_url.removesuffix("/v1")} ANTHROPIC_API_KEY={key} claude -p "Hello, gateway" --model {model}

{keys_hint}
admin API: {base_url}/admin  (Authorization: Bearer {admin_key})
{console}{state}Ctrl-C stops the gateway and everything it started.
"""


def local_functions(
    template: dict[str, Any], resolver: Resolver | None = None
) -> dict[str, LambdaFunction | WebAdapterFunction]:
    """Every function of the template, loaded the way Lambda would run it: a plain handler, or the ASGI app
    that Lambda Web Adapter forwards to. `resolver` gives parameter values (MemorySize may be one)."""
    resolver = resolver or Resolver(template)
    handlers_lock = threading.Lock()
    loaded: dict[str, LambdaFunction | WebAdapterFunction] = {}
    for name in functions(template):
        timeout = float(function_setting(template, name, "Timeout") or 3)
        if is_web_adapter_function(template, name):
            memory = int(resolver.resolve(function_setting(template, name, "MemorySize")) or 128)
            loaded[name] = WebAdapterFunction(name, load_web_app(name, template), timeout, memory)
        else:
            loaded[name] = LambdaFunction(name, load_handler(name, template), timeout, handlers_lock)
    return loaded


def serve(options: ServeOptions) -> int:
    try:
        server = GatewayServer(options.port)
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{options.port} ({error}); pass --port or set PORT", file=sys.stderr)
        return 1
    # With a DynamoDB endpoint, API Gateway's side lives in moto: started first, so that the child imports moto
    # while this process reads the template. Else everything lives in the data directory.
    moto = MotoProcess() if options.dynamodb_endpoint else None
    try:
        return _serve(options, server, moto)
    finally:
        if moto is not None:
            moto.stop()


@dataclass
class LocalState:
    """Where the local gateway keeps its state: the data directory (API Gateway's side included), or a DynamoDB
    endpoint with API Gateway's side in moto."""

    data_dir: Path | None
    apigateway: Any
    dynamodb: Any = None
    dynamodb_url: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    enforcer: SharedUsagePlanEnforcer | None = None


def _local_state(options: ServeOptions, moto: MotoProcess | None, region: str) -> LocalState:
    if moto is None:
        data_dir = (options.data_dir or DEFAULT_DATA_DIR).resolve()
        control = LocalApiGatewayControl(data_dir)
        return LocalState(data_dir, control, enforcer=SharedUsagePlanEnforcer(control))
    url = str(options.dynamodb_endpoint)
    return LocalState(
        None,
        _client("apigateway", moto.url, region),
        _client("dynamodb", url, region),
        url,
        {"apigateway": moto.url, "dynamodb": url},
    )


def _serve(options: ServeOptions, server: GatewayServer, moto: MotoProcess | None) -> int:
    template = load_template()
    cfn = translate_template(template)
    region, account = str(PSEUDO_PARAMETERS["AWS::Region"]), str(PSEUDO_PARAMETERS["AWS::AccountId"])
    state = _local_state(options, moto, region)
    data_dir, apigateway, dynamodb = state.data_dir, state.apigateway, state.dynamodb
    provisioned = provision(dynamodb, apigateway, STACK_NAME, options.parameter_overrides, template)
    outputs = provisioned.outputs

    port = server.port
    base_url = f"http://127.0.0.1:{port}/{outputs['StageName']}"
    resolver = Resolver(template, options.parameter_overrides, provisioned.physical)
    environment: dict[str, str] = {}
    for name in functions(template):
        environment.update(function_environment(template, name, resolver))
    environment["GATEWAY_MODELS_JSON"] = json.dumps(local_registry(os.environ, options.models_file))
    if data_dir is not None:
        environment.update({"GATEWAY_STORE": "sqlite", "GATEWAY_DATA_DIR": str(data_dir)})
    _process_environment(environment, state.dynamodb_url, region)

    lambdas = local_functions(template, resolver)
    admin_key = _admin_side(apigateway, admin_key_file(data_dir, options))
    records: KeyRecords = (
        KeyStore(dynamodb, outputs["KeysTableName"]) if data_dir is None else SqliteKeyStore(database(data_dir))
    )
    admin = KeyAdmin(records, apigateway, plans_from_outputs(outputs))
    reattached = admin.reattach()
    if reattached:
        print(f"keys from earlier runs, back on their usage plans: {len(reattached)}", flush=True)
    demo = demo_key(admin, records, data_dir, options.demo_key)
    stage = Stage(outputs["RestApiId"], outputs["StageName"], region, account, f"127.0.0.1:{port}")
    outputs["ApiBaseUrl"] = base_url
    outputs["AdminApiUrl"] = f"{base_url}/admin"
    local_stack = {
        "region": region,
        "endpoints": state.endpoints,
        "outputs": outputs,
        "data_dir": None if data_dir is None else str(data_dir),
        # Where gatewayctl on this machine reads the admin key: a path, never the key itself.
        "admin_key_file": str(admin_key_file(data_dir, options)),
    }
    gateway = LocalApiGateway(
        ApiDefinition.from_template(cfn, Resolver(cfn, options.parameter_overrides).resolve),
        stage,
        lambdas,
        ApiKeys(apigateway, stage.api_id, stage.name),
        enforcer=state.enforcer,
        local_stack=local_stack,
        access_log=None if options.quiet else (lambda line: print(line, file=sys.stderr, flush=True)),
        admin_key=admin_key,
    )
    plan = next(p for p in usage_plans(cfn, resolver) if p.name.endswith(f"-{DEMO_PLAN}"))
    models = _models()
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    stdout = sys.stdout
    if not options.metrics:
        sys.stdout = DropMetrics(stdout)
    try:
        # Workers share the data directory's databases; boto3's clients (the DynamoDB endpoint mode) are not
        # safe to share across a fork.
        server.start(gateway, workers=options.workers if moto is None else 1)
        print(
            banner(
                base_url,
                models,
                demo.key,
                plan,
                f"keys: .venv/bin/gatewayctl keys list --local http://127.0.0.1:{port}",
                state=""
                if data_dir is None
                else f"state: {data_dir / DATABASE_FILE} (kept across restarts; delete {data_dir} to start afresh)\n",
                admin_key=admin_key,
            ),
            flush=True,
        )
        stop.wait()
    finally:
        print("stopping the local gateway", file=sys.stderr, flush=True)
        server.stop()
        sys.stdout = stdout
        for sig, handler in previous.items():
            with suppress(ValueError):
                signal.signal(sig, handler)
    return 0


def demo_key(admin: KeyAdmin, records: KeyRecords, data_dir: Path | None, given: str | None) -> IssuedKey:
    """The demo key: `given`, else the one kept in the data directory from an earlier run, else a new one (kept
    there for the next run). A key whose record is still active is reused with its usage and budgets."""
    kept = data_dir / DEMO_KEY_FILE if data_dir is not None else None
    key = given
    if key is None and kept is not None and kept.exists():
        key = kept.read_text(encoding="utf-8").strip()
    if key is None:
        key = generate_key()
    record = records.get_by_hash(hash_key(key))
    issued = IssuedKey(key, record) if record is not None and record.status == "active" else None
    if issued is None:
        issued = admin.create(DEMO_TENANT, DEMO_PLAN, key=key)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.touch(mode=0o600)
        kept.write_text(key + "\n", encoding="utf-8")
    return issued


def _admin_side(apigateway: Any, kept: Path) -> str:
    """The admin function reaches API Gateway's keys and plans where the local gateway keeps them; the local admin
    key stands in for IAM on its routes."""
    from llm_gateway.api.admin.entry import use_api_gateway

    use_api_gateway(apigateway)
    return local_admin_key(kept)


def admin_key_file(data_dir: Path | None, options: ServeOptions) -> Path:
    """The admin key's file: in the data directory (the default one when state lives at a DynamoDB endpoint)."""
    return (data_dir or (options.data_dir or DEFAULT_DATA_DIR).resolve()) / ADMIN_KEY_FILE


def local_admin_key(kept: Path) -> str:
    """The local admin key: the one kept in `kept` (readable by its owner only), else a new one kept there."""
    import secrets

    if kept.exists():
        return kept.read_text(encoding="utf-8").strip()
    key = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(key + "\n", encoding="utf-8")
    return key


def _models() -> list[str]:
    from llm_gateway.config import get_registry

    return get_registry().names()
