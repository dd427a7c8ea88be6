"""What `gatewayctl cost` prints: one workload line by line in both modes beside LiteLLM, the docs/cost.md tables
across volumes and latencies, and the volumes where one side becomes cheaper than another (gatewayctl/cost.py
computes each figure)."""

from __future__ import annotations

from dataclasses import replace

from gatewayctl.cost import (
    MANAGED_TARGET_UTILIZATION,
    Line,
    Prices,
    Workload,
    gateway_cost,
    litellm_cost,
    managed_instances,
    total,
)


def breakdown(lines: list[Line]) -> str:
    width = max(len(f"{line.service}: {line.item}") for line in lines)
    rows = [f"  {f'{line.service}: {line.item}':<{width}}  {line.usd:>11,.2f}" for line in lines]
    return "\n".join([*rows, f"  {'total':<{width}}  {total(lines):>11,.2f}"])


def report(workload: Workload, prices: Prices) -> str:
    """Both modes of the stack and LiteLLM, line by line, and what the managed instances come to."""
    on_demand = gateway_cost(replace(workload, mode="on-demand"), prices)
    managed = gateway_cost(replace(workload, mode="managed-instances"), prices)
    litellm = litellm_cost(workload, prices)
    in_flight, vcpus, instances = managed_instances(workload)
    return (
        f"{workload.requests:,} chat requests a month, {workload.latency_seconds:g} s model latency, "
        f"{workload.prompt_tokens} prompt / {workload.completion_tokens} completion tokens, "
        f"{workload.stream_share:.0%} streamed; USD per month, {prices.checked} list prices (gatewayctl/prices.json)\n"
        f"\nllm-gateway (this stack, API function at {workload.memory_mb} MB, on demand):\n{breakdown(on_demand)}\n"
        f"\nllm-gateway (this stack, API function on Lambda Managed Instances: {in_flight:,.0f} requests in flight "
        f"on average, {vcpus:.1f} vCPUs at {MANAGED_TARGET_UTILIZATION:.0%} CPU, {instances} instances):\n"
        f"{breakdown(managed)}\n"
        f"\nLiteLLM proxy on Fargate behind an ALB:\n{breakdown(litellm)}\n"
        f"\nmanaged instances / on demand: {total(managed) / total(on_demand):.2f}; "
        f"on demand / LiteLLM: {total(on_demand) / total(litellm):.2f}; "
        f"managed instances / LiteLLM: {total(managed) / total(litellm):.2f}\n"
    )


VOLUMES = (1_000_000, 10_000_000, 100_000_000)
LATENCIES = (5.0, 20.0, 60.0)


def break_even(base: Workload, prices: Prices, cheaper: str, dearer: str) -> int | None:
    """The monthly requests above which side `cheaper` costs less than side `dearer` ("on-demand",
    "managed-instances" or "litellm"), to the nearest 10,000; None when it never does up to 10 billion."""

    def cost(side: str, requests: int) -> float:
        workload = replace(base, requests=requests)
        if side == "litellm":
            return total(litellm_cost(workload, prices))
        return total(gateway_cost(replace(workload, mode=side), prices))

    def wins(requests: int) -> bool:
        return cost(cheaper, requests) < cost(dearer, requests)

    low, high = 10_000, 10_000_000_000
    if wins(low):
        return low
    if not wins(high):
        return None
    while high - low > 10_000:
        middle = (low + high) // 2
        low, high = (low, middle) if wins(middle) else (middle, high)
    return high


def markdown_table(base: Workload, prices: Prices) -> str:
    """The cost table of docs/cost.md: both modes of the stack and LiteLLM, 1 to 100 million requests a month at
    5, 20 and 60 s, and each mode's ratio to LiteLLM."""
    header = (
        f"| requests / month | model latency | on demand ({base.memory_mb} MB) | managed instances "
        "| of which instances and fee | LiteLLM on Fargate + ALB | on demand / LiteLLM | managed / LiteLLM |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = []
    for latency in LATENCIES:
        for requests in VOLUMES:
            workload = replace(base, requests=requests, latency_seconds=latency)
            on_demand = total(gateway_cost(workload, prices))
            managed_lines = gateway_cost(replace(workload, mode="managed-instances"), prices)
            managed = total(managed_lines)
            instances = sum(line.usd for line in managed_lines if line.item.startswith("managed instances"))
            litellm = total(litellm_cost(workload, prices))
            rows.append(
                f"| {requests // 1_000_000}M | {latency:g} s | ${on_demand:,.0f} | ${managed:,.0f} | ${instances:,.0f} "
                f"| ${litellm:,.0f} | {on_demand / litellm:.2f} | {managed / litellm:.2f} |"
            )
    return "\n".join([header, *rows, "", break_even_table(base, prices)])


def break_even_table(base: Workload, prices: Prices) -> str:
    """Where each mode starts to cost less than the other side, by latency."""

    def shown(requests: int | None) -> str:
        return "never (to 10 billion)" if requests is None else f"{requests / 1e6:,.2f}M"

    rows = [
        "| model latency | on demand cheaper than LiteLLM below | managed instances cheaper than on demand above "
        "| managed instances cheaper than LiteLLM below |",
        "|---:|---:|---:|---:|",
    ]
    for latency in LATENCIES:
        workload = replace(base, latency_seconds=latency)
        rows.append(
            f"| {latency:g} s | {shown(break_even(workload, prices, 'litellm', 'on-demand'))} "
            f"| {shown(break_even(workload, prices, 'managed-instances', 'on-demand'))} "
            f"| {shown(break_even(workload, prices, 'litellm', 'managed-instances'))} |"
        )
    return "\n".join(rows)


def parse_count(text: str) -> int:
    """1000, 10k, 2.5M, 1B -> requests."""
    scale = {"k": 1e3, "m": 1e6, "b": 1e9}.get(text[-1:].lower())
    return int(float(text[:-1]) * scale) if scale else int(text)
