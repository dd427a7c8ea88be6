"""The local gateway's AWS endpoint (moto in a child process): requests reach moto's backends by their signing
scope, and connections stay open between calls."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import boto3
import pytest

from emulator.aws import MotoProcess, aws_url

SIGNED = "AWS4-HMAC-SHA256 Credential=local/20261130/{scope}/aws4_request, SignedHeaders=host, Signature=x"


@pytest.fixture(scope="module")
def moto_process() -> Iterator[MotoProcess]:
    process = MotoProcess()
    yield process
    process.stop()


@pytest.mark.parametrize(
    ("authorization", "url"),
    [
        (SIGNED.format(scope="eu-west-1/dynamodb"), "https://dynamodb.eu-west-1.amazonaws.com/"),
        (SIGNED.format(scope="us-east-1/apigateway"), "https://apigateway.us-east-1.amazonaws.com/"),
    ],
)
def test_a_request_stands_for_the_service_its_signature_names(authorization: str, url: str) -> None:
    assert aws_url(authorization, "/") == url


def test_dynamodb_and_api_gateway_answer_and_keep_the_connection_open(moto_process: MotoProcess) -> None:
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")
    dynamodb = session.client("dynamodb", endpoint_url=moto_process.url)
    dynamodb.create_table(
        TableName="keep-alive",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="keep-alive", Item={"id": {"S": "a"}})
    assert dynamodb.get_item(TableName="keep-alive", Key={"id": {"S": "a"}})["Item"] == {"id": {"S": "a"}}
    apigateway = session.client("apigateway", endpoint_url=moto_process.url)
    assert apigateway.create_rest_api(name="local")["name"] == "local"

    host, port = moto_process.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    signed = (
        "AWS4-HMAC-SHA256 Credential=local/20261130/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
    )
    headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"}
    sockets = []
    for _ in range(3):
        connection.request("POST", "/", body=json.dumps({}), headers={**headers, "Authorization": signed})
        response = connection.getresponse()
        assert response.status == 200 and "keep-alive" in json.loads(response.read())["TableNames"]
        assert response.getheader("Connection") != "close"
        sockets.append(connection.sock)
    assert sockets[0] is not None and all(sock is sockets[0] for sock in sockets), "one connection for every call"
    connection.close()
