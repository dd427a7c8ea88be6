"""The monthly AWS cost of the stack for a workload, next to a LiteLLM proxy on Fargate for the same one.

Prices come from prices.json (one place, each with its source page and the date it was checked); what a request
does (its Lambda time, DynamoDB units, log and response bytes) comes from the code path and the measurements
named below. Everything is computed offline. Model tokens are not priced: both sides pay the same provider.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

HOURS_PER_MONTH = 730
GB = 1_000_000_000

# What one chat request does, from the code and its measurements.
# CPU of a warm chat request in the API function at a full vCPU: 6.8 ms (bench/memory.py on python3.13,
# docs/benchmarks.md). A stream's per-chunk work (0.14 ms a token) runs while the model generates the next token,
# so it adds no billed time as long as the function's CPU share keeps up (at 256 MB: 1 ms a token).
API_CPU_MS = 6.8
# DynamoDB calls on a chat request's path: reserve and settle, one UpdateItem each (docs/budgets.md "Token budgets",
# tests/unit/test_metering.py), taken at 10 ms each with the network (DynamoDB answers in single-digit ms).
API_DYNAMODB_CALLS = 2
DYNAMODB_CALL_SECONDS = 0.010
# Write units of those two updates together, as DynamoDB reports them: 2 on every day of the month (a fixed-size
# budget item under 1 KB, no index copy), measured by bench/usage_write_units.py (docs/benchmarks.md, "Write units
# per chat request on the usage table"; tests/unit/gatewayctl/test_cost.py keeps the two equal). Lease mode with a
# key > team > tenant chain keeps its budget writes at that figure; a per-request usage event (under 1 KB) adds one.
BUDGET_WRITE_UNITS_PER_REQUEST = 2.0
USAGE_EVENT_WRITE_UNITS_PER_REQUEST = 1.0
WRITE_UNITS_PER_REQUEST = BUDGET_WRITE_UNITS_PER_REQUEST + USAGE_EVENT_WRITE_UNITS_PER_REQUEST
# The authorizer reads the key record (one strongly consistent GetItem, under 4 KB: one read unit) when its
# in-memory cache (AuthCacheSeconds) misses; 1.0 is the upper bound, every request a miss.
READ_UNITS_PER_MISS = 1.0
# CPU of a warm authorization with the key record cached, at a full vCPU (0.34 ms, 500 calls in-process).
AUTHORIZER_CPU_MS = 0.34
AUTHORIZER_MEMORY_MB = 512
# Log bytes per request, measured on the handlers' output by bench/log_bytes.py: the API function's request line
# (810) and EMF document (1,348, its 18 metrics); the authorizer's "API key allowed" line (450) and EMF document
# (243); API Gateway's access log line (about 650, as gatewayctl serve prints it). Lambda's own start and report
# lines (about 350 per invocation) only with FunctionSystemLogLevel INFO or DEBUG: the template's WARN drops them
# (Workload platform_logs). The API function's figure is an input (`gatewayctl cost --api-log-bytes`): what one request
# writes depends on the request line and EMF document of the release deployed.
API_LOG_BYTES = 2160
AUTHORIZER_LOG_BYTES = 690
ACCESS_LOG_BYTES = 650
PLATFORM_LOG_BYTES_PER_INVOCATION = 350
# Response bytes, measured through the API function: a JSON answer is 258 bytes plus 5 per completion token; a
# stream 420 plus 204 per token (one chat.completion.chunk event each); about 350 bytes of headers either way.
JSON_BYTES, JSON_BYTES_PER_TOKEN = 258, 5
STREAM_BYTES, STREAM_BYTES_PER_TOKEN = 420, 204
HEADER_BYTES = 350
# A prompt is about 4 characters per token (the gateway's own estimate), plus the JSON around it.
REQUEST_BYTES_PER_PROMPT_TOKEN, REQUEST_OVERHEAD_BYTES = 4, 300
# EMF metrics: 18 names (Requests ... CostUSD and TimeToFirstByte, observability.request_metrics; each request
# publishes every one, zeros included), each by service, by Model and by Model and Plan; plus ColdStart per
# function and the authorizer's Authorizations per outcome (6). tests/unit/gatewayctl/test_cost.py counts them in
# the document the API function writes.
METRIC_NAMES = 18
AUTHORIZER_OUTCOMES = 6
# The stack's alarms and dashboards (template.yaml).
ALARMS, DASHBOARDS = 6, 1
FUNCTION_LOG_RETENTION_DAYS, ACCESS_LOG_RETENTION_DAYS = 30, 90
# LiteLLM: "Production requires at least 4 CPU cores and 8 GB RAM" (docs.litellm.ai/docs/proxy/deploy), two tasks
# for availability, public subnets (a public IPv4 each, and one per ALB zone, two zones), Postgres for virtual
# keys and spend (db.t4g.small, 20 GB), its request logs taken as large as the gateway function's.
LITELLM_TASKS, LITELLM_VCPU, LITELLM_GB = 2, 4, 8
ALB_ZONES = 2
LITELLM_DB_GB = 20

# Lambda Managed Instances (template.yaml, ApiComputeMode=managed-instances). The API function's environments are
# 1 vCPU and 2 GiB each (the smallest Lambda allows), serving up to ManagedInstancesConcurrencyPerEnvironment (512;
# Lambda allows 1,600) requests at once, where 512 streams in flight take 51 MiB (bench/memory_concurrency.py);
# instances are c7g.large (2 vCPU, 4 GiB: two environments), at least three (one per zone, as Lambda launches
# them). Lambda scales them on CPU and on each environment's concurrency; both are kept at
# ManagedInstancesTargetCpuUtilization (50 %) on average, the headroom for peaks.
# CPU of a stream's chunks, which on managed instances is capacity bought, not waiting billed: a 40-chunk stream with
# its chunks 50 ms apart, as a model sends them, costs 18.7 ms with 512 in flight on python3.13
# (bench/memory_concurrency.py, docs/benchmarks.md), 6.8 ms of it the request's own work: 0.30 ms a chunk, about
# twice bench/memory.py's 400 chunks sent at once (0.16 ms), since each chunk arriving alone wakes the process.
MANAGED_STREAM_CPU_MS, MANAGED_STREAM_CHUNKS = 18.7, 40
STREAM_CPU_MS_PER_TOKEN = (MANAGED_STREAM_CPU_MS - API_CPU_MS) / MANAGED_STREAM_CHUNKS
MANAGED_CONCURRENCY_PER_ENVIRONMENT = 512
MANAGED_TARGET_UTILIZATION = 0.5
MANAGED_VCPU_PER_ENVIRONMENT = 1
MANAGED_INSTANCE_VCPUS = 2
MANAGED_MIN_INSTANCES = 3
MANAGED_ZONES = 3
# Private subnets reach DynamoDB through a gateway endpoint (free) and Bedrock through an interface endpoint in
# each zone; a NAT gateway per zone instead when the models are outside AWS (--nat).
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class Workload:
    """A month of traffic: chat requests, how long each waits for its model, its tokens, how many stream."""

    requests: int
    latency_seconds: float
    prompt_tokens: int = 1000
    completion_tokens: int = 500
    stream_share: float = 0.5
    memory_mb: int = 256
    # Registry models and plans in use: the EMF dimension sets that exist.
    models: int = 2
    plans: int = 3
    authorizer_miss_share: float = 1.0
    fargate_arm: bool = False
    # The API function's compute: "on-demand" or "managed-instances" (template.yaml's ApiComputeMode).
    mode: str = "on-demand"
    # Managed instances reach their models through a NAT gateway instead of a Bedrock VPC endpoint.
    nat: bool = False
    # Lambda's start and report lines in the functions' logs (FunctionSystemLogLevel INFO; the template's WARN: off).
    platform_logs: bool = False
    # Bytes the API function logs per request (its request line and EMF document).
    api_log_bytes: int = API_LOG_BYTES

    def response_bytes(self, streamed: bool) -> int:
        if streamed:
            return STREAM_BYTES + STREAM_BYTES_PER_TOKEN * self.completion_tokens + HEADER_BYTES
        return JSON_BYTES + JSON_BYTES_PER_TOKEN * self.completion_tokens + HEADER_BYTES

    @property
    def mean_response_bytes(self) -> float:
        streamed = self.response_bytes(streamed=True)
        return self.stream_share * streamed + (1 - self.stream_share) * self.response_bytes(streamed=False)

    @property
    def request_bytes(self) -> int:
        return REQUEST_BYTES_PER_PROMPT_TOKEN * self.prompt_tokens + REQUEST_OVERHEAD_BYTES


@dataclass(frozen=True)
class Line:
    service: str
    item: str
    usd: float


@dataclass(frozen=True)
class Prices:
    """prices.json: values by name, and the request tiers of API Gateway."""

    values: dict[str, float]
    apigateway_tiers: list[tuple[int | None, float]]
    checked: str
    sources: dict[str, str]

    @classmethod
    def load(cls, text: str | None = None) -> Prices:
        data: dict[str, Any] = json.loads(
            text if text is not None else resources.files("gatewayctl").joinpath("prices.json").read_text()
        )
        entries: dict[str, dict[str, Any]] = data["prices"]
        tiers = entries["apigateway_rest_requests"]["tiers"]
        return cls(
            values={name: float(entry["value"]) for name, entry in entries.items() if "value" in entry},
            apigateway_tiers=[(None if size is None else int(size), float(usd)) for size, usd in tiers],
            checked=str(data["checked"]),
            sources={name: str(entry["source"]) for name, entry in entries.items()},
        )

    def __getitem__(self, name: str) -> float:
        return self.values[name]


def tiered(count: float, tiers: list[tuple[int | None, float]], per: float = 1_000_000) -> float:
    """The price of `count` units under volume tiers of (units in the tier, USD per `per` units); None: the rest."""
    total, left = 0.0, count
    for size, usd in tiers:
        taken = left if size is None else min(left, size)
        total += taken / per * usd
        left -= taken
        if left <= 0:
            break
    return total


def vcpu_share(memory_mb: float, prices: Prices) -> float:
    """Lambda's CPU for a memory size: in proportion to memory, one vCPU at 1,769 MB (at most, for one thread)."""
    return min(1.0, memory_mb / prices["lambda_full_vcpu_mb"])


def api_seconds(workload: Workload, prices: Prices) -> float:
    """Billed seconds of the API function per request: the model's latency, the DynamoDB calls, and its own CPU
    work slowed by its CPU share."""
    own = API_CPU_MS / 1000 / vcpu_share(workload.memory_mb, prices)
    return workload.latency_seconds + API_DYNAMODB_CALLS * DYNAMODB_CALL_SECONDS + own


def authorizer_seconds(workload: Workload, prices: Prices) -> float:
    """Billed seconds of one authorization (Lambda bills whole milliseconds)."""
    cpu = AUTHORIZER_CPU_MS / 1000 / vcpu_share(AUTHORIZER_MEMORY_MB, prices)
    return math.ceil((cpu + workload.authorizer_miss_share * DYNAMODB_CALL_SECONDS) * 1000) / 1000


def _lambda_lines(workload: Workload, prices: Prices) -> list[Line]:
    n = workload.requests
    gb_second = prices["lambda_arm_gb_second"]
    streamed_over = max(0.0, workload.response_bytes(streamed=True) - prices["lambda_stream_free_bytes"])
    authorizer_ms = authorizer_seconds(workload, prices) * 1000
    return [
        Line("Lambda", "API function invocations", n / 1e6 * prices["lambda_requests"]),
        Line(
            "Lambda",
            f"API function duration ({workload.memory_mb} MB, {api_seconds(workload, prices):.3f} s each)",
            n * api_seconds(workload, prices) * workload.memory_mb / 1024 * gb_second,
        ),
        Line(
            "Lambda",
            "API function streamed bytes beyond 6 MB a response",
            n * workload.stream_share * streamed_over / GB * prices["lambda_stream_gb"],
        ),
        Line("Lambda", "authorizer invocations", n / 1e6 * prices["lambda_requests"]),
        Line(
            "Lambda",
            f"authorizer duration ({AUTHORIZER_MEMORY_MB} MB, {authorizer_ms:.0f} ms each)",
            n * authorizer_ms / 1000 * AUTHORIZER_MEMORY_MB / 1024 * gb_second,
        ),
    ]


def _logs_and_metrics(workload: Workload, prices: Prices) -> list[Line]:
    n = workload.requests
    platform = 2 * PLATFORM_LOG_BYTES_PER_INVOCATION if workload.platform_logs else 0
    function_gb = n * (workload.api_log_bytes + AUTHORIZER_LOG_BYTES + platform) / GB
    access_gb = n * ACCESS_LOG_BYTES / GB
    stored_gb = function_gb * FUNCTION_LOG_RETENTION_DAYS / 30 + access_gb * ACCESS_LOG_RETENTION_DAYS / 30
    metrics = METRIC_NAMES * (1 + workload.models + workload.models * workload.plans) + 2 + AUTHORIZER_OUTCOMES
    return [
        Line("CloudWatch", "log ingestion: functions", function_gb * prices["cloudwatch_logs_ingestion_gb"]),
        Line("CloudWatch", "log ingestion: API Gateway access log", access_gb * prices["cloudwatch_logs_ingestion_gb"]),
        Line(
            "CloudWatch",
            "log storage over the retention (uncompressed: an upper bound)",
            stored_gb * prices["cloudwatch_logs_storage_gb_month"],
        ),
        Line("CloudWatch", f"{metrics} EMF custom metrics", metrics * prices["cloudwatch_custom_metric_month"]),
        Line(
            "CloudWatch",
            f"{ALARMS} alarms, {DASHBOARDS} dashboard",
            ALARMS * prices["cloudwatch_alarm_month"] + DASHBOARDS * prices["cloudwatch_dashboard_month"],
        ),
    ]


def _transfer(workload: Workload, prices: Prices) -> Line:
    gigabytes = workload.requests * workload.mean_response_bytes / GB
    return Line("Data transfer", "responses to the internet", gigabytes * prices["data_transfer_out_gb"])


def managed_cpu_seconds(workload: Workload) -> float:
    """CPU of one request on a managed instance (a full vCPU): its own work and its stream's chunks."""
    return (API_CPU_MS + workload.stream_share * workload.completion_tokens * STREAM_CPU_MS_PER_TOKEN) / 1000


def managed_instances(workload: Workload) -> tuple[float, float, int]:
    """Mean requests in flight, the vCPUs they need (for their CPU or their concurrency, whichever is more, at the
    target utilization), and the instances that holds (at least three)."""
    in_flight = (
        workload.requests
        / SECONDS_PER_MONTH
        * (workload.latency_seconds + API_DYNAMODB_CALLS * DYNAMODB_CALL_SECONDS + API_CPU_MS / 1000)
    )
    cpu = workload.requests / SECONDS_PER_MONTH * managed_cpu_seconds(workload)
    environments = in_flight / MANAGED_CONCURRENCY_PER_ENVIRONMENT
    vcpus = max(cpu, environments * MANAGED_VCPU_PER_ENVIRONMENT) / MANAGED_TARGET_UTILIZATION
    return in_flight, vcpus, max(MANAGED_MIN_INSTANCES, math.ceil(vcpus / MANAGED_INSTANCE_VCPUS))


def _managed_lines(workload: Workload, prices: Prices) -> list[Line]:
    n = workload.requests
    in_flight, vcpus, instances = managed_instances(workload)
    instance_month = prices["ec2_c7g_large_hour"] * HOURS_PER_MONTH
    traffic_gb = n * (workload.request_bytes + workload.mean_response_bytes) / GB
    if workload.nat:
        egress = Line(
            "VPC",
            f"{MANAGED_ZONES} NAT gateways and the model traffic through them",
            MANAGED_ZONES * prices["nat_gateway_hour"] * HOURS_PER_MONTH + traffic_gb * prices["nat_gateway_gb"],
        )
    else:
        egress = Line(
            "VPC",
            f"bedrock-runtime endpoint in {MANAGED_ZONES} zones and the model traffic through it",
            MANAGED_ZONES * prices["vpc_interface_endpoint_az_hour"] * HOURS_PER_MONTH
            + traffic_gb * prices["vpc_interface_endpoint_gb"],
        )
    return [
        Line("Lambda", "API function invocations", n / 1e6 * prices["lambda_requests"]),
        Line(
            "Lambda",
            f"managed instances: {instances} x c7g.large ({in_flight:,.0f} requests in flight, {vcpus:.1f} vCPUs)",
            instances * instance_month,
        ),
        Line(
            "Lambda",
            f"managed instances: management fee ({prices['lambda_managed_instances_fee_share']:.0%} of EC2)",
            instances * instance_month * prices["lambda_managed_instances_fee_share"],
        ),
        egress,
    ]


def _managed_and_authorizer(workload: Workload, prices: Prices) -> list[Line]:
    """The API function on managed instances; the authorizer stays on demand (12 ms a request)."""
    authorizer = [line for line in _lambda_lines(workload, prices) if line.item.startswith("authorizer")]
    return [*_managed_lines(workload, prices), *authorizer]


def gateway_cost(workload: Workload, prices: Prices) -> list[Line]:
    """This stack: API Gateway (REST, streaming), both functions, DynamoDB on demand, CloudWatch, data out."""
    n = workload.requests
    blocks = math.ceil(workload.response_bytes(streamed=True) / prices["apigateway_stream_block_bytes"])
    billed_requests = n * (1 - workload.stream_share) + n * workload.stream_share * blocks
    return [
        Line(
            "API Gateway", "REST requests (a stream: one per 10 MB)", tiered(billed_requests, prices.apigateway_tiers)
        ),
        *(
            _lambda_lines(workload, prices)
            if workload.mode == "on-demand"
            else _managed_and_authorizer(workload, prices)
        ),
        Line(
            "DynamoDB",
            f"usage writes ({BUDGET_WRITE_UNITS_PER_REQUEST:g} budget and {USAGE_EVENT_WRITE_UNITS_PER_REQUEST:g} "
            f"usage event write units a request)",
            n * WRITE_UNITS_PER_REQUEST / 1e6 * prices["dynamodb_write_request_units"],
        ),
        Line(
            "DynamoDB",
            f"key lookups ({workload.authorizer_miss_share:g} authorizer cache misses a request)",
            n * workload.authorizer_miss_share * READ_UNITS_PER_MISS / 1e6 * prices["dynamodb_read_request_units"],
        ),
        *_logs_and_metrics(workload, prices),
        _transfer(workload, prices),
    ]


def alb_capacity_units(workload: Workload, prices: Prices) -> float:
    """Mean LCUs of the ALB in front of LiteLLM: the largest of its dimensions, at the month's average rate (new
    connections at one per request, the worst case; active connections at rate times latency)."""
    per_second = workload.requests / (HOURS_PER_MONTH * 3600)
    new_connections = per_second / 25
    active = per_second * workload.latency_seconds / 3000
    processed_gb_per_hour = per_second * 3600 * (workload.request_bytes + workload.mean_response_bytes) / GB
    return max(new_connections, active, processed_gb_per_hour)


def litellm_cost(workload: Workload, prices: Prices) -> list[Line]:
    """A LiteLLM proxy on two Fargate tasks behind an ALB, with its Postgres, for the same traffic."""
    arch = "arm" if workload.fargate_arm else "x86"
    task_hour = LITELLM_VCPU * prices[f"fargate_{arch}_vcpu_hour"] + LITELLM_GB * prices[f"fargate_{arch}_gb_hour"]
    logs_gb = workload.requests * workload.api_log_bytes / GB
    return [
        Line(
            "Fargate",
            f"{LITELLM_TASKS} tasks x {LITELLM_VCPU} vCPU, {LITELLM_GB} GB ({arch})",
            LITELLM_TASKS * task_hour * HOURS_PER_MONTH,
        ),
        Line("ALB", "load balancer hours", prices["alb_hour"] * HOURS_PER_MONTH),
        Line(
            "ALB",
            f"LCU-hours ({alb_capacity_units(workload, prices):.2f} LCU on average)",
            alb_capacity_units(workload, prices) * HOURS_PER_MONTH * prices["alb_lcu_hour"],
        ),
        Line(
            "VPC",
            f"public IPv4 addresses ({LITELLM_TASKS} tasks, {ALB_ZONES} ALB zones)",
            (LITELLM_TASKS + ALB_ZONES) * prices["public_ipv4_hour"] * HOURS_PER_MONTH,
        ),
        Line(
            "RDS",
            f"PostgreSQL db.t4g.small, {LITELLM_DB_GB} GB gp3 (keys, spend)",
            prices["rds_postgres_t4g_small_hour"] * HOURS_PER_MONTH + LITELLM_DB_GB * prices["rds_gp3_gb_month"],
        ),
        Line("CloudWatch", "log ingestion", logs_gb * prices["cloudwatch_logs_ingestion_gb"]),
        _transfer(workload, prices),
    ]


def total(lines: list[Line]) -> float:
    return sum(line.usd for line in lines)
