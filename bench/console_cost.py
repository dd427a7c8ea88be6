"""What the web console costs: its bundle (bytes a first visit downloads), the admin API calls each page makes and the
time it takes to show in Debian's chromium against the local gateway, and from those the AWS cost a month at rest and
per thousand page views.

Prints: the bundle's files raw and gzipped; per page, the admin calls and response bytes, and the median time from
navigation to the page's data shown over `--rounds`; then the cost lines. API Gateway and Lambda prices come from
gatewayctl/prices.json; CloudFront, S3 and Cognito list prices (us-east-1 / North America, without free tiers) are
below with their pages. Needs chromium and a built console (`make console`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from tests.e2e.conftest import LocalGateway, start_gateway, stop_gateway  # noqa: E402
from tests.e2e.test_console import CHROMIUM, METERED_MODELS, admin_key  # noqa: E402

# https://aws.amazon.com/cloudfront/pricing/ (North America; the always-free tier, 1 TB and 10 million requests a
# month, left out), https://aws.amazon.com/s3/pricing/ (S3 Standard), https://aws.amazon.com/cognito/pricing/
# (Essentials tier, beyond its 10,000 free monthly active users).
CLOUDFRONT_HTTPS_PER_10K = 0.0100
CLOUDFRONT_GB_OUT = 0.085
S3_GB_MONTH = 0.023
S3_GET_PER_1K = 0.0004
COGNITO_ESSENTIALS_MAU = 0.015
# A page view in a session of this many: the console's files are fetched once a session, then the browser's cache
# (assets are immutable) and hash navigation serve the rest.
VIEWS_PER_SESSION = 10
# Billed time of an admin call on Lambda: a few DynamoDB or API Gateway calls; an assumption, not measured here.
ADMIN_CALL_SECONDS = 0.1
PAGES = ["overview", "keys", "key", "teams", "usage", "models"]


def bundle(dist: Path) -> list[tuple[str, int, int]]:
    return [
        (path.relative_to(dist).as_posix(), path.stat().st_size, len(gzip.compress(path.read_bytes(), 9)))
        for path in sorted(dist.rglob("*"))
        if path.is_file()
    ]


def admin(gateway: LocalGateway, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        gateway.base_url + "/admin" + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {admin_key(gateway)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def seed(gateway: LocalGateway, keys: int) -> str:
    """A tenant with two teams and `keys` keys, each used once: pages with rows to show."""
    import openai

    for team in ("platform", "research"):
        admin(gateway, "POST", "/teams", {"id": team, "tenant": "acme", "caps": [{"period": "month", "usd": "1000"}]})
    first = ""
    for index in range(keys):
        team = ("platform", "research")[index % 2]
        issued = admin(gateway, "POST", "/keys", {"tenant": "acme", "team": team, "plan": "premium", "models": "*"})
        first = first or issued["record"]["key_id"]
        client = openai.OpenAI(base_url=gateway.base_url, api_key=issued["key"], max_retries=0)
        client.chat.completions.create(
            model="echo-metered", max_tokens=8, messages=[{"role": "user", "content": "seed"}]
        )
    return first


def measure_pages(gateway: LocalGateway, key_id: str, rounds: int) -> dict[str, dict[str, float]]:
    from playwright.sync_api import sync_playwright

    figures: dict[str, dict[str, list[float]]] = {page: {"calls": [], "bytes": [], "ms": []} for page in PAGES}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        calls: list[int] = []
        page.on(
            "requestfinished",
            lambda request: (
                calls.append(int(request.sizes()["responseBodySize"])) if "/admin/" in request.url else None
            ),
        )
        page.goto(gateway.root_url + "/console/")
        page.get_by_label("Admin key").fill(admin_key(gateway))
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Overview").wait_for()
        for _ in range(rounds):
            for name in PAGES:
                route = f"keys/{key_id}" if name == "key" else name
                page.goto(gateway.root_url + f"/console/#/{route}")
                page.wait_for_load_state("networkidle")
                calls.clear()
                started = time.perf_counter()
                page.reload()
                # Shown: the page's heading is there and nothing on it still says it is loading.
                page.wait_for_selector("main h1")
                page.wait_for_selector("[aria-busy=true]", state="detached")
                figures[name]["ms"].append((time.perf_counter() - started) * 1000)
                page.wait_for_load_state("networkidle")
                figures[name]["calls"].append(len(calls))
                figures[name]["bytes"].append(sum(calls))
        browser.close()
    return {
        name: {kind: statistics.median(values) for kind, values in kinds.items()} for name, kinds in figures.items()
    }


def admin_memory_mb() -> int:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((PROJECT_ROOT / "template.yaml").read_text(), Loader=Loader)
    function = template["Resources"].get("AdminFunction", {}).get("Properties", {})
    return int(function.get("MemorySize") or template["Globals"]["Function"]["MemorySize"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keys", type=int, default=6)
    args = parser.parse_args()
    dist = PROJECT_ROOT / "console" / "dist"
    files = bundle(dist)
    print("console bundle (console/dist):")
    for name, raw, packed in files:
        print(f"  {name:<40} {raw:>8,} B  {packed:>7,} B gzipped")
    first_visit = sum(packed for _, _, packed in files)
    print(f"  a first visit downloads {first_visit:,} B gzipped in {len(files) + 1} requests (with config.json)")

    models = Path(tempfile.mkdtemp(prefix="console-bench-")) / "models.json"
    models.write_text(json.dumps(METERED_MODELS))
    gateway = start_gateway("--models", str(models))
    try:
        key_id = seed(gateway, args.keys)
        pages = measure_pages(gateway, key_id, args.rounds)
    finally:
        stop_gateway(gateway)
    print(f"\npages (medians of {args.rounds} reloads; local gateway, {args.keys} keys in 2 teams):")
    print(f"  {'page':<10} {'admin calls':>11} {'bytes':>8} {'shown in':>9}")
    for name, figure in pages.items():
        print(f"  {name:<10} {figure['calls']:>11.0f} {figure['bytes']:>8,.0f} {figure['ms']:>7.0f} ms")

    prices = json.loads((PROJECT_ROOT / "gatewayctl" / "prices.json").read_text())["prices"]
    calls = statistics.mean(figure["calls"] for figure in pages.values())
    api_bytes = statistics.mean(figure["bytes"] for figure in pages.values())
    views = 1000
    memory_gb = admin_memory_mb() / 1024
    apigateway = views * calls * prices["apigateway_rest_requests"]["tiers"][0][1] / 1e6
    lam = (
        views
        * calls
        * (
            prices["lambda_requests"]["value"] / 1e6
            + ADMIN_CALL_SECONDS * memory_gb * prices["lambda_arm_gb_second"]["value"]
        )
    )
    static_requests = views / VIEWS_PER_SESSION * (len(files) + 1)
    cloudfront = (views * calls + static_requests) * CLOUDFRONT_HTTPS_PER_10K / 1e4 + (
        views * api_bytes + views / VIEWS_PER_SESSION * first_visit
    ) * CLOUDFRONT_GB_OUT / 1e9
    s3_requests = static_requests * S3_GET_PER_1K / 1e3
    total = apigateway + lam + cloudfront + s3_requests
    at_rest = sum(raw for _, raw, _ in files) * S3_GB_MONTH / 1e9
    print(f"\ncost per {views:,} page views (an even mix of the pages, {calls:.1f} admin calls a view on average):")
    print(f"  API Gateway REST requests              ${apigateway:.4f}")
    print(f"  Lambda admin function ({memory_gb * 1024:.0f} MB, {ADMIN_CALL_SECONDS * 1000:.0f} ms a call) ${lam:.4f}")
    print(f"  CloudFront requests and transfer       ${cloudfront:.4f}")
    print(f"  S3 GETs (files once a session of {VIEWS_PER_SESSION})    ${s3_requests:.5f}")
    print(f"  total                                  ${total:.4f}")
    print(f"at rest a month: S3 storage ${at_rest:.7f}; CloudFront, Cognito, identity pool, roles $0")
    print(f"Cognito: ${COGNITO_ESSENTIALS_MAU} per monthly active user beyond 10,000 free (per user, not per view)")


if __name__ == "__main__":
    main()
