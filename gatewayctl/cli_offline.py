"""gatewayctl's commands that read no deployment: `serve` (the local gateway), `models` (the registry and its
traits) and `cost` (the cost model)."""

from __future__ import annotations

import argparse
import os
import sys
from importlib import resources
from pathlib import Path

from gatewayctl.catalog import GROUPS as CATALOG_GROUPS
from gatewayctl.output import print_json


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="serve the whole gateway on 127.0.0.1 (local mode)",
        description="Serve template.yaml on 127.0.0.1 as API Gateway would: routes, authorizer, API keys, usage "
        "plans and gateway responses, with key records, budgets and usage in an SQLite database in --data-dir "
        "with API Gateway's keys, plans and quotas beside it (kept across restarts). "
        "GATEWAY_DEMO_KEY=sk-llmgw-... fixes the demo key.",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "3000")),
        help="port on 127.0.0.1 (default: $PORT or 3000; 0 picks a free one)",
    )
    serve.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        type=_parameter,
        help="template parameters, as for sam deploy (e.g. StandardPlanBurstLimit=5)",
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ["GATEWAY_DATA_DIR"]) if os.environ.get("GATEWAY_DATA_DIR") else None,
        metavar="DIR",
        help="where the local gateway keeps its state (default: $GATEWAY_DATA_DIR or .gateway-data/ in the checkout)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="worker processes serving requests (default: 2, or 1 on a one-core machine; 1 with --dynamodb-endpoint)",
    )
    serve.add_argument(
        "--dynamodb-endpoint",
        metavar="URL",
        help="keep keys and usage in this DynamoDB-compatible endpoint (e.g. DynamoDB Local) instead of --data-dir",
    )
    serve.add_argument(
        "--models",
        type=Path,
        metavar="FILE",
        help="extra models: a registry file like layers/gateway/llm_gateway/models.json (see docs/models.md)",
    )
    serve.add_argument("--metrics", action="store_true", help="print the functions' EMF metrics to stdout")
    serve.add_argument("--quiet", action="store_true", help="no access log on stderr")
    serve.set_defaults(handler=_serve)


def add_cost_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cost = commands.add_parser(
        "cost",
        help="monthly AWS cost of the stack for a workload, next to LiteLLM on Fargate (offline)",
        description="The monthly AWS cost of this stack (API Gateway, both Lambda functions, DynamoDB, CloudWatch, "
        "data transfer) for a workload, next to a LiteLLM proxy on two Fargate tasks behind an ALB, from the list "
        "prices in gatewayctl/prices.json. Model tokens are not included: both pay the same provider.",
    )
    cost.add_argument("--requests", type=_count, default=10_000_000, help="chat requests a month: 1M, 2.5M... (10M)")
    cost.add_argument("--latency", type=float, default=5.0, help="seconds a request waits for its model (5)")
    cost.add_argument("--prompt-tokens", type=int, default=1000, help="prompt tokens a request (1000)")
    cost.add_argument("--completion-tokens", type=int, default=500, help="completion tokens a request (500)")
    cost.add_argument("--stream-share", type=float, default=0.5, help="share of requests streamed, 0-1 (0.5)")
    cost.add_argument("--memory", type=int, default=256, help="API function memory in MB (ApiMemorySize, 256)")
    cost.add_argument(
        "--api-log-bytes",
        type=int,
        default=None,
        help="bytes the API function logs a request, its request line and EMF document (2160, bench/log_bytes.py)",
    )
    cost.add_argument(
        "--platform-logs",
        action="store_true",
        help="count Lambda's start and report lines (FunctionSystemLogLevel=INFO; the template's WARN drops them)",
    )
    cost.add_argument("--fargate-arm", action="store_true", help="price LiteLLM's tasks on ARM instead of x86")
    cost.add_argument("--table", action="store_true", help="the docs/cost.md table (1M/10M/100M at 5 s and 20 s)")
    cost.set_defaults(handler=_cost)


def groups(value: str) -> list[str]:
    groups = [group.strip() for group in value.split(",") if group.strip()]
    unknown = sorted(set(groups) - set(CATALOG_GROUPS))
    if unknown or not groups:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(CATALOG_GROUPS)} (got {value!r})")
    return groups


def models_import(args: argparse.Namespace) -> int:
    import json

    from gatewayctl.catalog import import_catalog, load_catalog, report
    from llm_gateway.domain.registry import ModelRegistry

    catalog, label = load_catalog(args.catalog)
    path: Path = args.registry or Path(str(resources.files("llm_gateway").joinpath("models.json")))
    registry = json.loads(path.read_text(encoding="utf-8"))
    updated, changes = import_catalog(registry, catalog, label, groups=args.fields, overwrite=args.overwrite)
    print(report(changes, written=args.write))
    if args.write:
        ModelRegistry.model_validate(updated)  # never write a registry the gateway would refuse to load
        path.write_text(json.dumps(updated, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"Wrote {path}.")
    return 0


def add_traits_parser(model_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    traits = model_commands.add_parser(
        "traits",
        help="show each model's traits in force and where each came from (its entry or the shipped catalog)",
        description="Resolve a registry as the gateway does: an entry's traits are the shipped catalog's for its "
        "targets' provider models (the stricter where targets disagree), overridden field by field by its own.",
    )
    traits.add_argument("names", nargs="*", metavar="MODEL", help="only these models (default: all)")
    traits.add_argument(
        "--registry",
        type=Path,
        metavar="FILE",
        help="registry file (default: GATEWAY_MODELS_JSON or GATEWAY_MODELS_FILE, else the shipped models.json)",
    )
    traits.add_argument("--json", action="store_true", help="print JSON")
    traits.set_defaults(handler=_models_traits)


def _models_traits(args: argparse.Namespace) -> int:
    import json

    from gatewayctl.traits import trait_rows, trait_table
    from llm_gateway.config import Settings, shipped_catalog, shipped_registry_text
    from llm_gateway.domain.registry import ModelRegistry
    from llm_gateway.errors import ConfigurationError, ModelNotFoundError

    try:
        if args.registry is not None:
            text = args.registry.read_text(encoding="utf-8")
        else:
            settings = Settings.from_environ()
            text = settings.models_json or (
                settings.models_file.read_text(encoding="utf-8") if settings.models_file else shipped_registry_text()
            )
        rows = trait_rows(ModelRegistry.model_validate(json.loads(text)), shipped_catalog(), args.names or None)
    except (OSError, ValueError, ConfigurationError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print_json(rows)
    else:
        print(trait_table(rows))
    return 0


def _count(value: str) -> int:
    from gatewayctl.cost_report import parse_count

    try:
        return parse_count(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a count such as 1000, 10k, 2.5M") from None


def _cost(args: argparse.Namespace) -> int:
    from gatewayctl.cost import API_LOG_BYTES, Prices, Workload
    from gatewayctl.cost_report import markdown_table, report

    if args.api_log_bytes is not None and args.api_log_bytes < 0:
        print("gatewayctl cost: --api-log-bytes must be 0 or more", file=sys.stderr)
        return 2
    workload = Workload(
        requests=args.requests,
        latency_seconds=args.latency,
        prompt_tokens=args.prompt_tokens,
        completion_tokens=args.completion_tokens,
        stream_share=args.stream_share,
        memory_mb=args.memory,
        fargate_arm=args.fargate_arm,
        platform_logs=args.platform_logs,
        api_log_bytes=API_LOG_BYTES if args.api_log_bytes is None else args.api_log_bytes,
    )
    prices = Prices.load()
    print(markdown_table(workload, prices) if args.table else report(workload, prices), end="\n")
    return 0


def _parameter(value: str) -> tuple[str, str]:
    name, separator, setting = value.partition("=")
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"'{value}' is not NAME=VALUE")
    return name, setting


def _serve(args: argparse.Namespace) -> int:
    try:
        from gatewayctl.local.serve import ServeOptions, serve
    except ModuleNotFoundError as missing:
        print(
            f"gatewayctl serve needs the local gateway's packages ({missing.name} is missing): "
            "pip install 'llm-gateway[local]', or run `make install`.",
            file=sys.stderr,
        )
        return 2

    return serve(
        ServeOptions(
            port=args.port,
            parameter_overrides=dict(args.parameter_overrides),
            dynamodb_endpoint=args.dynamodb_endpoint,
            data_dir=args.data_dir,
            workers=max(1, args.workers),
            demo_key=os.environ.get("GATEWAY_DEMO_KEY") or None,
            metrics=args.metrics,
            quiet=args.quiet,
            models_file=args.models,
        )
    )
