"""gatewayctl's door to a gateway: the admin API over HTTP (a stack: SigV4-signed with the operator's AWS credentials;
the local gateway: its admin key), or the same routes called in this process on a deployment's resources."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatewayctl.deployment import Deployment, DeploymentError

# (method, path with its query, body, headers) -> (status, content type, body)
Send = Callable[[str, str, bytes | None, dict[str, str]], tuple[int, str, bytes]]
# Who the in-process door acts as, in the admin function's log lines.
IN_PROCESS_PRINCIPAL = "arn:aws:iam::000000000000:user/gatewayctl"


class AdminApiError(Exception):
    """The admin API refused or failed: its error's message, status and code."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class AdminClient:
    send: Send

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str | None] | None = None,
        *,
        accept: str = "application/json",
    ) -> Any:
        """The answer of `method` /admin`path`: decoded JSON, or the text of any other content type. AdminApiError
        for any status from 400 up, with the API's own message."""
        given = {name: value for name, value in (query or {}).items() if value is not None}
        target = path + ("?" + urllib.parse.urlencode(given) if given else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": accept, **({"Content-Type": "application/json"} if data is not None else {})}
        status, content_type, raw = self.send(method, target, data, headers)
        text = raw.decode("utf-8")
        parsed: Any = json.loads(text) if content_type.startswith("application/json") and text else text
        if status >= 400:
            error = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(error, dict):
                raise AdminApiError(str(error.get("message")), status, error.get("code"))
            raise AdminApiError(f"The admin API answered {status}: {text[:200]}", status)
        return parsed


def admin_client(deployment: Deployment) -> AdminClient:
    """The deployment's admin API: signed with the operator's AWS credentials on a stack, with the local admin key on
    the local gateway, or in this process when the deployment names no admin API (tests, a direct connection)."""
    if deployment.admin_url is None:
        return AdminClient(in_process(deployment))
    if deployment.admin_key is not None:
        return AdminClient(over_http(deployment.admin_url, bearer(deployment.admin_key)))
    return AdminClient(over_http(deployment.admin_url, sigv4(deployment.region)))


Sign = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]


def bearer(key: str) -> Sign:
    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "Authorization": f"Bearer {key}"}

    return sign


def sigv4(region: str) -> Sign:
    """Signs as API Gateway's AWS_IAM authorization checks: SigV4, service execute-api, the default credential
    chain (profile, environment, SSO, instance role)."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise DeploymentError("No AWS credentials to sign admin API requests with (aws configure, or AWS_PROFILE)")

    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign


def over_http(base_url: str, sign: Sign) -> Send:
    if urllib.parse.urlsplit(base_url).scheme not in {"http", "https"}:
        raise DeploymentError(f"The admin API's URL must be http(s), not {base_url}")
    root = base_url.rstrip("/")

    def send(method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        url = root + target
        # The scheme is checked above: urlopen would also read file: and other schemes.
        signed = sign(method, url, body, headers)
        request = urllib.request.Request(url, data=body, method=method, headers=signed)  # noqa: S310 # nosec B310 # http(s) only
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 # nosec B310 # http(s) only
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("Content-Type", ""), error.read()
        except OSError as error:
            raise DeploymentError(f"The admin API at {root} cannot be reached ({error})") from error

    return send


def in_process(deployment: Deployment) -> Send:
    """The admin API's routes called here, on an API Gateway proxy event, over the deployment's own resources."""
    from emulator.events import IncomingRequest, Stage, proxy_event
    from gatewayctl.stores import budget_tree, key_records, usage_events, usage_ledger
    from llm_gateway.api.admin.routes import handle
    from llm_gateway.api.admin.services import AdminServices
    from llm_gateway.config import get_registry
    from llm_gateway.domain.key_admin import KeyAdmin
    from llm_gateway.domain.team_admin import TeamAdmin

    tree, records = budget_tree(deployment), key_records(deployment)
    services = AdminServices(
        keys=KeyAdmin(records, deployment.client("apigateway"), deployment.plans, tree=tree),
        teams=TeamAdmin(tree),
        tree=tree,
        records=records,
        usage=usage_ledger(deployment),
        events=usage_events(deployment),
        registry=get_registry,
        # The admin function's audit lines are for its CloudWatch log; here stdout and stderr are the operator's.
        audit_log=False,
    )
    stage = Stage("local", "v1", deployment.region, "000000000000", "localhost")

    def send(method: str, target: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        path, _, query = target.partition("?")
        request = IncomingRequest(
            method=method,
            resource="/admin/{proxy+}",
            path="/admin" + path,
            headers=list(headers.items()),
            query=urllib.parse.parse_qsl(query, keep_blank_values=True),
            body=body or b"",
            source_ip="127.0.0.1",
            request_id="gatewayctl",
            received_at=datetime.now(UTC),
            path_parameters={"proxy": path.lstrip("/")},
        )
        reply = handle(proxy_event(stage, request, None, None, IN_PROCESS_PRINCIPAL), None, services)
        content_type = (reply.get("multiValueHeaders") or {}).get("Content-Type", [""])[0]
        return int(reply["statusCode"]), content_type, str(reply.get("body") or "").encode("utf-8")

    return send
