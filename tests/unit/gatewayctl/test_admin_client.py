"""gatewayctl on a stack signs its admin requests with SigV4 (service execute-api), as API Gateway's AWS_IAM checks;
a fake admin API on 127.0.0.1 recomputes each signature with botocore from what arrived."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gatewayctl import cli
from gatewayctl.admin_client import AdminApiError, admin_client
from gatewayctl.deployment import Deployment

KEY = {
    "key_id": "key_0123456789ab", "key_hint": "sk-llmgw-...abcd", "tenant": "acme", "team": None, "plan": "free",
    "models": "*", "status": "active", "created_at": "2026-12-01T10:00:00+00:00", "expires_at": None,
    "revoked_at": None, "rotated_from": None, "api_key_id": "abc123",
    "limits": {"tokens_per_minute": None, "tokens_per_day": 500, "usd_per_month": None},
}  # fmt: skip


def signature_is_valid(method: str, url: str, headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Recompute the SigV4 signature of the request as it arrived, at its own X-Amz-Date."""
    authorization = headers.get("Authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    signed_names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    credential = authorization.split("Credential=")[1].split(",")[0]
    access_key, _, region, service, _ = credential.split("/")
    request = AWSRequest(
        method=method, url=url, data=body, headers={n: v for n, v in headers.items() if n.lower() in signed_names}
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(access_key, secret), service, region)
    string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
    return auth.signature(string_to_sign, request) == authorization.rsplit("Signature=", 1)[1]


class FakeAdminApi(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/admin"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAdminApi

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
        headers = dict(self.headers.items())
        valid = signature_is_valid(self.command, url, headers, body, "testing")
        self.server.seen.append({"method": self.command, "path": self.path, "headers": headers, "valid": valid})
        status, answer = (200, {"data": [KEY]}) if valid else (403, {"message": "signature does not match"})
        if valid and self.path.endswith(KEY["key_id"]):
            answer = KEY
        if valid and self.command == "PATCH":
            answer = {**KEY, "limits": {**KEY["limits"], **json.loads(body)["limits"]}}
        raw = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_PATCH = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def admin_api() -> Iterator[FakeAdminApi]:
    server = FakeAdminApi()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_commands_on_a_stack_are_sigv4_signed_for_execute_api(
    admin_api: FakeAdminApi, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Deployment("stack test", "eu-west-1", {}, admin_url=admin_api.url)
    assert cli.main(["keys", "list", "--json"], deployment_factory=lambda _: stack) == 0
    assert json.loads(capsys.readouterr().out)[0]["tokens_per_day"] == 500
    code = cli.main(
        ["keys", "update", KEY["key_id"], "--usd-per-month", "7.5", "--json"], deployment_factory=lambda _: stack
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["usd_per_month"] == "7.5"
    one = f"/v1/admin/keys/{KEY['key_id']}"
    assert [(seen["method"], seen["path"]) for seen in admin_api.seen] == [
        ("GET", "/v1/admin/keys"), ("GET", one), ("PATCH", one),
    ]  # fmt: skip
    assert all(seen["valid"] for seen in admin_api.seen)
    authorization = admin_api.seen[0]["headers"]["Authorization"]
    assert (
        authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/") and "/eu-west-1/execute-api/" in authorization
    )


def test_a_tampered_request_fails_the_same_check(admin_api: FakeAdminApi) -> None:
    """The check above is real: a body changed after signing does not verify."""
    client = admin_client(Deployment("stack test", "eu-west-1", {}, admin_url=admin_api.url))
    client.call("GET", "/keys")
    seen = admin_api.seen[0]
    url = f"http://127.0.0.1:{admin_api.server_address[1]}{seen['path']}"
    assert signature_is_valid("GET", url, seen["headers"], b"", "testing")
    assert not signature_is_valid("GET", url, seen["headers"], b"{}", "testing")
    assert not signature_is_valid("GET", url, seen["headers"], b"", "another-secret")


def test_the_local_gateway_gets_the_admin_key_and_errors_keep_their_message(admin_api: FakeAdminApi) -> None:
    local = Deployment("local", "us-east-1", {}, admin_url=admin_api.url, admin_key="llmgw-admin-x")
    with pytest.raises(AdminApiError) as refused:
        admin_client(local).call("GET", "/keys")
    # No SigV4 signature: the fake API refuses, as API Gateway would on a stack.
    assert refused.value.status == 403
    assert admin_api.seen[0]["headers"]["Authorization"] == "Bearer llmgw-admin-x"
