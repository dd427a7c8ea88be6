"""gatewayctl cost: the arithmetic on a small case worked by hand, the price file, and docs/cost.md's table."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from gatewayctl import cost, cost_report
from gatewayctl.cli import main
from gatewayctl.cost import Prices, Workload, gateway_cost, litellm_cost, tiered, total
from gatewayctl.cost_report import markdown_table, parse_count

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cost.md"
BENCHMARKS = DOCS.parent / "benchmarks.md"


@pytest.fixture(scope="module")
def prices() -> Prices:
    return Prices.load()


def by_item(lines: list[object]) -> dict[str, float]:
    return {f"{line.service}: {line.item}": line.usd for line in lines}  # type: ignore[attr-defined]


def test_every_price_names_its_source_and_the_file_its_date() -> None:
    data = json.loads(resources.files("gatewayctl").joinpath("prices.json").read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["checked"])
    for name, entry in data["prices"].items():
        assert entry["source"].startswith("https://"), name
        assert entry["unit"], name
        assert ("value" in entry) != ("tiers" in entry), name


def test_volume_tiers_apply_in_order() -> None:
    tiers: list[tuple[int | None, float]] = [(333_000_000, 3.5), (667_000_000, 2.8), (None, 2.38)]
    assert tiered(1_000_000, tiers) == pytest.approx(3.5)
    # 333M at $3.50 and 67M at $2.80 per million.
    assert tiered(400_000_000, tiers) == pytest.approx(1165.5 + 187.6)
    assert tiered(1_100_000_000, tiers) == pytest.approx(1165.5 + 1867.6 + 100 * 2.38)


def test_one_million_json_requests_at_one_second_worked_by_hand(prices: Prices) -> None:
    workload = Workload(
        requests=1_000_000,
        latency_seconds=1.0,
        completion_tokens=100,
        stream_share=0.0,
        memory_mb=1769,  # a full vCPU: the function's own 6.8 ms of CPU take 6.8 ms
        models=1,
        plans=1,
        authorizer_miss_share=0.0,
    )
    lines = by_item(gateway_cost(workload, prices))
    assert lines["API Gateway: REST requests (a stream: one per 10 MB)"] == pytest.approx(3.50)
    assert lines["Lambda: API function invocations"] == pytest.approx(0.20)
    # 1 s of model + 2 DynamoDB calls of 10 ms + 6.8 ms of CPU, at 1769/1024 GB, $0.0000133334 per GB-second.
    seconds = 1.0 + 0.020 + 0.0068
    duration = "Lambda: API function duration (1769 MB, 1.027 s each)"
    assert lines[duration] == pytest.approx(1e6 * seconds * 1769 / 1024 * 0.0000133334)
    # 0.34 ms of CPU at 512/1769 of a vCPU is 1.17 ms, billed as 2 ms; no cache misses.
    assert lines["Lambda: authorizer duration (512 MB, 2 ms each)"] == pytest.approx(1e6 * 0.002 * 0.5 * 0.0000133334)
    # The budget's reserve and settle (2 write units, measured) and the request's usage event (1).
    usage_writes = "DynamoDB: usage writes (2 budget and 1 usage event write units a request)"
    assert lines[usage_writes] == pytest.approx(3 * 0.625)
    assert lines["DynamoDB: key lookups (0 authorizer cache misses a request)"] == 0
    # 2,160 + 690 bytes of function logs (no Lambda start and report lines at FunctionSystemLogLevel=WARN) and 650
    # of access log a request, at $0.50 per GB.
    assert lines["CloudWatch: log ingestion: functions"] == pytest.approx(2.85 * 0.5)
    assert lines["CloudWatch: log ingestion: API Gateway access log"] == pytest.approx(0.65 * 0.5)
    assert lines["CloudWatch: log storage over the retention (uncompressed: an upper bound)"] == pytest.approx(
        (2.85 * 30 / 30 + 0.65 * 90 / 30) * 0.03
    )
    # 18 names x (service, service+Model, service+Model+Plan), 2 ColdStart, 6 authorizer outcomes.
    assert lines["CloudWatch: 62 EMF custom metrics"] == pytest.approx(62 * 0.30)
    assert lines["CloudWatch: 6 alarms, 1 dashboard"] == pytest.approx(6 * 0.10 + 3.00)
    # A JSON answer of 100 tokens: 258 + 5 x 100 bytes plus 350 of headers.
    assert lines["Data transfer: responses to the internet"] == pytest.approx(1.108 * 0.09)
    assert total(gateway_cost(workload, prices)) == pytest.approx(sum(lines.values()))


def test_litellm_worked_by_hand(prices: Prices) -> None:
    workload = Workload(requests=1_000_000, latency_seconds=1.0, completion_tokens=100, stream_share=0.0)
    lines = by_item(litellm_cost(workload, prices))
    assert lines["Fargate: 2 tasks x 4 vCPU, 8 GB (x86)"] == pytest.approx(2 * (4 * 0.04048 + 8 * 0.004445) * 730)
    assert lines["ALB: load balancer hours"] == pytest.approx(0.0225 * 730)
    assert lines["VPC: public IPv4 addresses (2 tasks, 2 ALB zones)"] == pytest.approx(4 * 0.005 * 730)
    assert lines["RDS: PostgreSQL db.t4g.small, 20 GB gp3 (keys, spend)"] == pytest.approx(0.032 * 730 + 20 * 0.115)
    # 0.38 requests a second, each on a new connection: 0.0152 LCU (25 a second each), more than 0.38 active
    # connections (3,000 each) or 0.0074 GB processed an hour (4.3 KB in and 1.1 KB out a request; 1 GB each).
    per_second = 1e6 / (730 * 3600)
    assert per_second * 3600 * (4 * 1000 + 300 + 1108) / 1e9 < per_second / 25
    lcu = [value for item, value in lines.items() if item.startswith("ALB: LCU-hours")]
    assert lcu == [pytest.approx(per_second / 25 * 730 * 0.008)]


def test_memory_and_latency_move_only_the_duration(prices: Prices) -> None:
    small = Workload(requests=1_000_000, latency_seconds=5.0, memory_mb=256)
    large = Workload(requests=1_000_000, latency_seconds=5.0, memory_mb=1024)
    difference = total(gateway_cost(large, prices)) - total(gateway_cost(small, prices))
    # The model's 5 s cost four times as much at four times the memory; the CPU part shrinks as the share grows.
    assert difference == pytest.approx(1e6 * 5.02 * (1.0 - 0.25) * 0.0000133334, rel=0.02)


def test_counts_take_suffixes() -> None:
    assert [parse_count(text) for text in ("1000", "10k", "2.5M", "1B")] == [1000, 10_000, 2_500_000, 10**9]


def test_the_write_units_priced_are_the_measured_ones() -> None:
    """The write units per chat request are bench/usage_write_units.py's figure as docs/benchmarks.md records it (its
    "after" column, the most on any day), not an older design's."""
    section = BENCHMARKS.read_text().split("## Write units per chat request on the usage table", 1)[1]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]
    measured = max(int(row[4].split("/")[0]) for row in rows)
    assert measured == 2
    assert measured == cost.BUDGET_WRITE_UNITS_PER_REQUEST
    assert measured + cost.USAGE_EVENT_WRITE_UNITS_PER_REQUEST == cost.WRITE_UNITS_PER_REQUEST


def test_docs_cost_md_shows_the_scripts_table(prices: Prices) -> None:
    assert markdown_table(Workload(requests=1, latency_seconds=1.0), prices) in DOCS.read_text()


def test_the_command_prints_both_sides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--requests", "2M", "--latency", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2,000,000 chat requests a month, 3 s model latency")
    assert "llm-gateway (this stack, API function at 256 MB, on demand)" in out
    assert "llm-gateway (this stack, API function on Lambda Managed Instances" in out
    assert "LiteLLM proxy on Fargate behind an ALB" in out
    assert main(["cost", "--table"]) == 0
    assert capsys.readouterr().out.startswith("| requests / month |")


def test_managed_instances_worked_by_hand(prices: Prices) -> None:
    """100 million 20 s requests: 762 in flight on average, 512 a 1-vCPU environment (1.5 environments), but their
    CPU is more: 38 requests a second of 6.8 ms plus 250 streamed tokens at 0.30 ms, 3.1 vCPUs, kept at half:
    6.2 vCPUs, four c7g.large; EC2's price plus Lambda's 15 % fee, no duration charge."""
    workload = Workload(requests=100_000_000, latency_seconds=20.0, mode="managed-instances")
    in_flight, vcpus, instances = cost.managed_instances(workload)
    assert in_flight == pytest.approx(100e6 / (730 * 3600) * (20 + 0.02 + 0.0068))
    per_second = 100e6 / (730 * 3600)
    # A 40-chunk stream costs 18.7 ms in bench/memory_concurrency.py, 6.8 of them the request's own work.
    assert vcpus == pytest.approx(per_second * (6.8 + 250 * (18.7 - 6.8) / 40) / 1000 / 0.5)
    assert vcpus > in_flight / 512 / 0.5
    assert instances == 4
    lines = by_item(gateway_cost(workload, prices))
    assert not [item for item in lines if "duration" in item and "API function" in item]
    compute = sum(usd for item, usd in lines.items() if "managed instances" in item)
    assert compute == pytest.approx(4 * 0.0725 * 730 * 1.15)
    # At 96 a environment, the former default, the same traffic needed 8 instances.
    assert math.ceil(in_flight / 96 / 0.5 / 2) == 8


def test_managed_instances_never_go_below_three_instances(prices: Prices) -> None:
    small = Workload(requests=1_000, latency_seconds=5.0, mode="managed-instances")
    assert cost.managed_instances(small)[2] == 3


def test_the_break_even_is_where_the_sides_cross(prices: Prices) -> None:
    base = Workload(requests=1, latency_seconds=20.0)
    crossing = cost_report.break_even(base, prices, "managed-instances", "on-demand")
    assert crossing is not None
    below, above = replace(base, requests=crossing - 20_000), replace(base, requests=crossing + 20_000)
    managed = lambda w: total(gateway_cost(replace(w, mode="managed-instances"), prices))  # noqa: E731
    assert managed(below) >= total(gateway_cost(below, prices))
    assert managed(above) < total(gateway_cost(above, prices))


def test_log_bytes_are_inputs_that_move_only_the_logs(prices: Prices) -> None:
    base = Workload(requests=10_000_000, latency_seconds=5.0, mode="managed-instances")
    with_platform = replace(base, platform_logs=True)
    smaller = replace(base, api_log_bytes=cost.API_LOG_BYTES - 1000)
    logs = "CloudWatch: log ingestion: functions"
    # Lambda's start and report lines, about 350 bytes an invocation of either function, at $0.50 per GB.
    added = by_item(gateway_cost(with_platform, prices))[logs] - by_item(gateway_cost(base, prices))[logs]
    assert added == pytest.approx(10e6 * 700 / 1e9 * 0.5)
    # 1,000 bytes fewer a request: $0.50 a GB ingested and $0.03 a GB-month kept 30 days, and LiteLLM's logs, taken
    # as large as the function's, as much less.
    saved = total(gateway_cost(base, prices)) - total(gateway_cost(smaller, prices))
    assert saved == pytest.approx(10e6 * 1000 / 1e9 * (0.5 + 0.03))
    litellm_saved = total(litellm_cost(base, prices)) - total(litellm_cost(smaller, prices))
    assert litellm_saved == pytest.approx(10e6 * 1000 / 1e9 * 0.5)


def test_the_command_takes_the_log_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--requests", "1M", "--latency", "5", "--api-log-bytes", "0", "--platform-logs"]) == 0
    assert "1,000,000 chat requests a month" in capsys.readouterr().out
    assert main(["cost", "--api-log-bytes", "-1"]) == 2
    assert "--api-log-bytes must be 0 or more" in capsys.readouterr().err


def test_the_model_counts_the_metrics_the_api_function_publishes() -> None:
    """Each name of the API function's EMF document, in each of its dimension sets, is a custom metric."""
    from llm_gateway.observability import RequestRecord, request_metrics

    document = json.loads(request_metrics(RequestRecord(model="m", plan="p"), 200, 12.5, first_byte_ms=3.0))
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert len(directive["Metrics"]) == cost.METRIC_NAMES
    assert len(directive["Dimensions"]) == 3, "service, by Model, by Model and Plan: 1 + models + models x plans"


def test_the_model_takes_the_templates_defaults() -> None:
    """The managed environments' concurrency and whether Lambda's own lines are logged are the template's."""
    from emulator.template import load_template

    parameters = load_template()["Parameters"]
    assert int(parameters["ManagedInstancesConcurrencyPerEnvironment"]["Default"]) == (
        cost.MANAGED_CONCURRENCY_PER_ENVIRONMENT
    )
    assert int(parameters["ManagedInstancesTargetCpuUtilization"]["Default"]) / 100 == cost.MANAGED_TARGET_UTILIZATION
    assert parameters["FunctionSystemLogLevel"]["Default"] == "WARN"
    assert Workload(requests=1, latency_seconds=1.0).platform_logs is False
