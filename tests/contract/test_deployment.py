"""Where gatewayctl finds a gateway's admin API: a stack's AdminApiUrl output (moto's CloudFormation), or what the
local gateway publishes at /_local/stack (the admin key read from the file it names, never sent over the wire)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gatewayctl.deployment import DeploymentError, from_local, from_stack


def stack_with(outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name="eu-west-1").create_stack(
        StackName="gw", TemplateBody=json.dumps(template)
    )


def test_a_stack_is_reached_at_its_admin_api_url() -> None:
    with mock_aws():
        stack_with({"AdminApiUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1/admin", "StageName": "v1"})
        deployment = from_stack("gw", "eu-west-1")
    assert deployment.admin_url == "https://abc.execute-api.eu-west-1.amazonaws.com/v1/admin"
    assert deployment.admin_key is None and deployment.region == "eu-west-1"


def test_a_stack_without_the_admin_api_is_a_clear_error() -> None:
    with mock_aws():
        stack_with({"ApiBaseUrl": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"})
        with pytest.raises(DeploymentError, match="no admin API"):
            from_stack("gw", "eu-west-1")


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    key_file = tmp_path / "admin-key"
    key_file.write_text("llmgw-admin-test\n")
    described = {
        "region": "us-east-1",
        "endpoints": {},
        "outputs": {"StageName": "v1", "AdminApiUrl": "https://ignored.example/v1/admin"},
        "data_dir": str(tmp_path),
        "admin_key_file": str(key_file),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            raw = json.dumps(described).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_the_local_gateway_is_reached_at_its_own_address_with_its_admin_key(local_stack: tuple[str, Path]) -> None:
    url, data_dir = local_stack
    deployment = from_local(url)
    assert deployment.admin_url == f"{url}/v1/admin"
    assert (deployment.admin_key, deployment.data_dir) == ("llmgw-admin-test", data_dir)
