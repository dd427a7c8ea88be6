"""The web console in a real browser (Debian's chromium through Playwright) against the local gateway and its admin
API: sign in with the admin key, create a team and a key, use the key with the openai SDK and see its spend, cap the
team and see a request refused, revoke the key. CONSOLE_SCREENSHOTS=DIR keeps a screenshot of each page there."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import openai
import pytest

from tests.e2e.conftest import LocalGateway, start_gateway, stop_gateway, wait_for

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# An echo model with prices, so that a request has a spend to show (the shipped echo is free).
METERED_MODELS = {
    "models": {
        "echo-metered": {
            "description": "echo at a price, for the console's spend figures",
            "targets": [{"provider": "echo", "model_id": "echo"}],
            "prices": {"input_per_1k": "30", "output_per_1k": "60"},
        }
    }
}

pytestmark = [
    pytest.mark.e2e,
    # Skipped on a machine without them, never in CI (CI=true), where .ci/run and make test install both.
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and not os.environ.get("CI"),
        reason="chromium is not installed (.ci/run installs it)",
    ),
    pytest.mark.skipif(
        not (Path(__file__).resolve().parents[2] / "console" / "dist" / "index.html").exists()
        and not os.environ.get("CI"),
        reason="the console is not built (make console)",
    ),
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGateway]:
    models = tmp_path_factory.mktemp("models") / "models.json"
    models.write_text(json.dumps(METERED_MODELS))
    gateway = start_gateway("--models", str(models))
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        # As root (CI), Chromium's sandbox cannot start; the pages it opens are this test's own.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def admin_key(gateway: LocalGateway) -> str:
    """The admin key the local gateway prints in its banner."""
    match = re.search(r"Authorization: Bearer (\S+?)\)", gateway.text())
    assert match, gateway.text()
    return match.group(1)


def admin_get(gateway: LocalGateway, path: str) -> dict[str, Any]:
    request = urllib.request.Request(
        gateway.base_url + "/admin" + path, headers={"Authorization": f"Bearer {admin_key(gateway)}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def shot(page: object, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def go(page: object, name: str) -> None:
    """Follows the console's navigation link `name`."""
    navigation = page.get_by_role("navigation", name="Console")  # type: ignore[attr-defined]
    navigation.get_by_role("link", name=name, exact=True).click()


def sdk(gateway: LocalGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def chat(gateway: LocalGateway, key: str) -> openai.types.chat.ChatCompletion:
    return sdk(gateway, key).chat.completions.create(
        model="echo-metered", max_tokens=8, messages=[{"role": "user", "content": "Hello from the console test"}]
    )


def refusal_code(gateway: LocalGateway, key: str) -> str | None:
    """None when the request is answered, else the code of the 429 that refuses it."""
    try:
        chat(gateway, key)
    except openai.RateLimitError as refused:
        return str(refused.code)
    return None


def test_an_operator_runs_a_key_through_its_life_in_the_console(gateway: LocalGateway, browser: object) -> None:
    expect = playwright_api.expect
    context = browser.new_context(viewport={"width": 1280, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    console_url = gateway.root_url + "/console/"
    # The banner points operators at the console and says how to sign in.
    assert f"console: {console_url}  (sign in with the admin key)" in gateway.text()

    # Sign in with the keyboard alone: the key field has the focus, Enter submits.
    page.goto(console_url)
    expect(page.get_by_label("Admin key")).to_be_focused()
    shot(page, "sign-in")
    page.keyboard.type("llmgw-admin-wrong")
    page.keyboard.press("Enter")
    # API Gateway's IAM authorisation refuses a bad signature with 403 (locally: a wrong admin key).
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"\((401|403) "))
    expect(page.get_by_label("Admin key")).to_be_visible()
    page.get_by_label("Admin key").fill(admin_key(gateway))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # A team, then a key in it: the secret shown once, with the lines to paste.
    go(page, "Teams and budgets")
    page.get_by_text("Create a team").click()
    page.get_by_label("Team id").fill("platform")
    page.get_by_label("Tenant").fill("acme")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="platform team of acme")).to_be_visible()

    go(page, "Keys")
    expect(page.get_by_role("row").filter(has_text="demo")).to_be_visible()
    page.get_by_label("Search").fill("no-such-key")
    expect(page.get_by_text("No key matches")).to_be_visible()
    page.get_by_label("Search").fill("")
    page.get_by_text("Create a key").click()
    form = page.locator("form.grid")
    form.get_by_label("Tenant").fill("acme")
    form.get_by_label("Team").fill("platform")
    form.get_by_label("Plan").select_option("premium")
    form.get_by_label("Models").fill("echo-metered")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("secret").inner_text()
    expect(form.get_by_label("Plan")).to_have_value("standard")  # the form is ready for the next key
    assert secret.startswith("sk-")
    expect(page.get_by_test_id("openai-line")).to_contain_text(f'base_url="{gateway.base_url}", api_key="{secret}"')
    expect(page.get_by_role("button", name="Copy key")).to_be_visible()
    shot(page, "key-created")
    page.get_by_role("button", name="I have copied it").click()
    expect(page.get_by_test_id("secret")).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="acme")
    expect(row).to_contain_text("platform")
    shot(page, "keys")

    # The key works with the openai SDK, and its spend shows on its page and in the overview.
    # Sent as Claude Code sends its session, so the overview names it.
    answer = sdk(gateway, secret).chat.completions.create(
        model="echo-metered",
        max_tokens=8,
        messages=[{"role": "user", "content": "Hello from the console test"}],
        extra_headers={"X-Claude-Code-Session-Id": "console-session-1"},
    )
    assert answer.choices[0].message.content == "Hello from the console test"
    # The request settles, and its usage event is written, just after its answer is out: wait for both.
    today = datetime.now(UTC).date()
    days = f"since={today - timedelta(days=1)}&until={today + timedelta(days=1)}"
    wait_for(lambda: admin_get(gateway, f"/usage?{days}&group_by=key")["data"], timeout=10)
    wait_for(lambda: admin_get(gateway, f"/usage?{days}&group_by=session")["data"], timeout=10)
    key_id = row.get_by_role("link").first.inner_text()
    row.get_by_role("link").first.click()
    expect(page.get_by_test_id("key-status")).to_have_text("active")
    usage = page.get_by_test_id("key-usage")
    expect(usage).to_contain_text(datetime.now(UTC).date().isoformat()[:8])
    assert re.search(r"\$(?!0\.00)\d+\.\d\d", usage.inner_text()), usage.inner_text()
    expect(usage.get_by_role("row").filter(has_text="echo-metered")).to_have_count(1)
    shot(page, "key")
    go(page, "Overview")
    expect(page.get_by_test_id("month-spend")).not_to_have_text("$0.00")
    expect(page.locator(".chart svg rect.bar")).not_to_have_count(0)
    expect(page.get_by_role("table", name="Models by spend this month")).to_contain_text("echo-metered")
    expect(page.get_by_role("table", name="Claude Code sessions by spend this month")).to_contain_text(
        "console-session-1"
    )
    shot(page, "overview")

    # A team cap per day: the team's requests from now on count against it until one is refused, naming the team.
    go(page, "Teams and budgets")
    team = page.get_by_role("article", name="team platform")
    team.get_by_text("Edit a cap").click()
    team.get_by_label("Window").select_option("day")
    team.get_by_label("Tokens").fill("60")
    team.get_by_role("button", name="Set cap").click()
    expect(team.get_by_role("row", name=re.compile("^day"))).to_contain_text("/ 60")
    codes = [refusal_code(gateway, secret) for _ in range(10)]
    assert codes[0] is None and "team_budget_exceeded" in codes, codes
    page.reload()
    team = page.get_by_role("article", name="team platform")
    expect(team.get_by_role("row", name=re.compile("^day"))).to_contain_text(re.compile(r"[1-9][0-9]* / 60"))
    shot(page, "teams")

    # Usage over a range, grouped by model, and the CSV of the same rows.
    go(page, "Usage")
    page.get_by_label("team", exact=True).uncheck()
    page.get_by_label("tenant", exact=True).uncheck()
    page.get_by_label("key", exact=True).check()
    page.get_by_label("model", exact=True).check()
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("usage-table")).to_contain_text(key_id)
    expect(page.get_by_role("row").filter(has_text=key_id)).to_contain_text("echo-metered")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv_text = Path(download.value.path()).read_text()
    assert key_id in csv_text and "cost_usd" in csv_text.splitlines()[0]
    shot(page, "usage")

    go(page, "Models")
    expect(page.get_by_role("row", name=re.compile("^echo-metered"))).to_be_visible()
    page.get_by_label("What a key may call").select_option(key_id)
    expect(page.get_by_role("row", name=re.compile("^echo-metered"))).to_contain_text("yes")
    expect(page.get_by_role("row", name=re.compile("^echo "))).to_contain_text("no")
    shot(page, "models")

    # A new plan from the key's form; a rotation with a grace period: the old secret keeps working beside the new.
    go(page, "Keys")
    page.get_by_role("row").filter(has_text="acme").get_by_role("link").first.click()
    page.get_by_role("form", name="Plan, expiry, models and limits").locator("select[name=plan]").select_option(
        "premium"
    )
    page.get_by_role("button", name="Save plan, expiry, models and limits").click()
    expect(page.locator("dl.facts")).to_contain_text("premium")
    page.get_by_label("Old key keeps working").select_option(label="1 hour")
    page.get_by_role("button", name="Rotate").click()
    expect(page.get_by_test_id("grace-note")).to_contain_text("keeps working until")
    rotated = page.get_by_test_id("secret").inner_text()
    page.get_by_role("button", name="I have copied it").click()
    # Both secrets pass the authorizer (the team's day cap, used up above, is what answers): one key, one budget.
    assert refusal_code(gateway, secret) == refusal_code(gateway, rotated) == "team_budget_exceeded"

    # Revoke: the console asks first, then the key is refused by the gateway, the old secret in its grace too.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id("key-status")).to_have_text("revoked")
    for revoked in (secret, rotated):
        with pytest.raises(openai.AuthenticationError):
            chat(gateway, revoked)

    # On a phone's width the navigation wraps and the tables scroll inside their frame, not the page.
    page.set_viewport_size({"width": 390, "height": 844})
    go(page, "Keys")
    expect(page.get_by_role("heading", name="Keys", exact=True)).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("acme")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "keys-phone")
    assert errors == []
    context.close()


SIGNING_HOST = "abc123.execute-api.us-east-1.amazonaws.com"
SIGN_IN_DOMAIN = "https://console-test.auth.us-east-1.amazoncognito.com"
IDENTITY_ENDPOINT = "https://cognito-identity.us-east-1.amazonaws.com/"
CREDENTIALS = {"AccessKeyId": "ASIATESTKEY", "SecretKey": "test-secret-key", "SessionToken": "test-session-token"}


def signature_is_valid(method: str, url: str, headers: dict[str, str], body: bytes | None) -> bool:
    """Checks a request's SigV4 signature with botocore, as API Gateway would: the signed headers, the Host that
    CloudFront sends on (API Gateway's), the path and query, the body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = headers["authorization"]
    signed = re.search(r"SignedHeaders=([^,]+)", authorization).group(1).split(";")  # type: ignore[union-attr]
    given = re.search(r"Signature=([0-9a-f]+)", authorization).group(1)  # type: ignore[union-attr]
    parts = urlsplit(url)
    request = AWSRequest(
        method=method,
        url=f"https://{SIGNING_HOST}{parts.path}" + (f"?{parts.query}" if parts.query else ""),
        data=body or b"",
        headers={name: headers[name] for name in signed if name != "host"},
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(
        Credentials(CREDENTIALS["AccessKeyId"], CREDENTIALS["SecretKey"], CREDENTIALS["SessionToken"]),
        "execute-api",
        "us-east-1",
    )
    canonical = signer.canonical_request(request)
    return bool(signer.signature(signer.string_to_sign(request, canonical), request) == given)


def test_a_cognito_user_signs_in_and_every_admin_call_is_signed(gateway: LocalGateway, browser: object) -> None:
    """The stack's sign-in, with Cognito's and the identity pool's endpoints answered here: the managed login's code
    and PKCE, the ID token for the group role's credentials, then each admin call signed with SigV4 for API Gateway's
    host (checked with botocore) and passed on to the local admin API. A read-only user gets no button that writes."""
    expect = playwright_api.expect
    context = browser.new_context(bypass_csp=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen: dict[str, Any] = {"signed": [], "identity": []}
    cors = {"access-control-allow-origin": "*", "access-control-allow-headers": "*"}
    claims = {"email": "reader@example.com", "cognito:groups": ["read-only"]}
    id_token = "e30." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + ".sig"
    settings = {
        "auth": "cognito",
        "region": "us-east-1",
        "userPoolId": "us-east-1_Pool",
        "userPoolClientId": "console-client",
        "identityPoolId": "us-east-1:identity-pool",
        "cognitoDomain": SIGN_IN_DOMAIN,
        "adminApi": "/v1/admin",
        "signingHost": SIGNING_HOST,
        "gatewayUrl": f"https://{SIGNING_HOST}/v1",
    }
    page.route("**/console/config.json", lambda route: route.fulfill(json=settings))

    def authorize(route: Any) -> None:
        query = dict(parse_qsl(urlsplit(route.request.url).query))
        seen["authorize"] = query
        back = f"{query['redirect_uri']}?code=the-code&state={query['state']}"
        route.fulfill(status=302, headers={"location": back})

    def token(route: Any) -> None:
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
            return
        seen["token"] = dict(parse_qsl(route.request.post_data or ""))
        route.fulfill(json={"id_token": id_token, "access_token": "a", "expires_in": 3600}, headers=cors)

    def identity(route: Any) -> None:
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
            return
        target = route.request.headers["x-amz-target"].rsplit(".", 1)[1]
        seen["identity"].append((target, json.loads(route.request.post_data or "{}")))
        answer = (
            {"IdentityId": "us-east-1:someone"}
            if target == "GetId"
            else {"IdentityId": "us-east-1:someone", "Credentials": {**CREDENTIALS, "Expiration": time.time() + 3600}}
        )
        route.fulfill(json=answer, headers=cors)

    def admin_call(route: Any) -> None:
        request = route.request
        headers = request.all_headers()
        seen["signed"].append(signature_is_valid(request.method, request.url, headers, request.post_data_buffer))
        seen.setdefault("first", (request.method, request.url, headers, request.post_data_buffer))
        # What API Gateway does once the signature holds: the admin function answers (here the local one, whose
        # door is the admin key).
        forwarded = {name: value for name, value in headers.items() if not name.startswith(("x-amz", "authorization"))}
        route.fulfill(response=route.fetch(headers={**forwarded, "authorization": f"Bearer {admin_key(gateway)}"}))

    page.route(f"{SIGN_IN_DOMAIN}/oauth2/authorize**", authorize)
    page.route(f"{SIGN_IN_DOMAIN}/oauth2/token", token)
    page.route(IDENTITY_ENDPOINT, identity)
    page.route("**/v1/admin/**", admin_call)

    page.goto(gateway.root_url + "/console/")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_text("reader@example.com (read-only)")).to_be_visible()
    go(page, "Keys")
    expect(page.get_by_role("row").filter(has_text="demo")).to_be_visible()
    expect(page.get_by_text("Create a key")).to_have_count(0)

    authorize_query = seen["authorize"]
    assert authorize_query["client_id"] == "console-client" and authorize_query["code_challenge_method"] == "S256"
    verifier = seen["token"]["code_verifier"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert authorize_query["code_challenge"] == challenge and seen["token"]["code"] == "the-code"
    logins = {"cognito-idp.us-east-1.amazonaws.com/us-east-1_Pool": id_token}
    assert [target for target, _ in seen["identity"]] == ["GetId", "GetCredentialsForIdentity"]
    assert all(body["Logins"] == logins for _, body in seen["identity"])
    assert len(seen["signed"]) >= 5 and all(seen["signed"]), seen["signed"]
    method, url, headers, body = seen["first"]
    assert not signature_is_valid(method, url.replace("/admin/", "/admin/x"), headers, body), "the check checks"
    context.close()
