"""The console's publisher against moto's S3 and CloudFront: files, config.json made from the stack's outputs, the
invalidation; and the deploy environment's stack read from samconfig.toml."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from console.publish import console_settings, publish, stack_of

OUTPUTS = {
    "ApiBaseUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1",
    "StageName": "v1",
    "ConsoleBucketName": "console-bucket",
    "ConsoleUserPoolId": "eu-west-1_Pool",
    "ConsoleUserPoolClientId": "client-id",
    "ConsoleIdentityPoolId": "eu-west-1:identity-pool",
    "ConsoleSignInDomain": "https://console-x.auth.eu-west-1.amazoncognito.com",
    "ConsoleUrl": "https://d111.cloudfront.net/",
}


def built_console(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script src="./assets/index-abc.js"></script>')
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    return tmp_path


def test_the_settings_name_the_stacks_ids_and_sign_for_api_gateways_host() -> None:
    settings = console_settings(OUTPUTS, "eu-west-1")
    assert settings["auth"] == "cognito"
    assert settings["adminApi"] == "/v1/admin"
    assert settings["signingHost"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    assert settings["identityPoolId"] == "eu-west-1:identity-pool"
    assert not any("secret" in name.lower() for name in settings)


@mock_aws
def test_publish_uploads_the_files_and_config_and_invalidates_what_names_them(tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="console-bucket")
    cloudfront = boto3.client("cloudfront", region_name="us-east-1")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "test",
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "o", "DomainName": "console-bucket.s3.amazonaws.com"}]},
            "DefaultCacheBehavior": {"TargetOriginId": "o", "ViewerProtocolPolicy": "redirect-to-https"},
        }
    )["Distribution"]["Id"]
    written = publish(
        s3, cloudfront, {**OUTPUTS, "ConsoleDistributionId": distribution}, "eu-west-1", built_console(tmp_path)
    )
    assert written == ["assets/index-abc.js", "index.html", "config.json"]
    asset = s3.get_object(Bucket="console-bucket", Key="assets/index-abc.js")
    assert asset["ContentType"] == "text/javascript" and "immutable" in asset["CacheControl"]
    index = s3.get_object(Bucket="console-bucket", Key="index.html")
    assert index["ContentType"] == "text/html" and index["CacheControl"] == "no-cache"
    config = json.loads(s3.get_object(Bucket="console-bucket", Key="config.json")["Body"].read())
    assert config["userPoolClientId"] == "client-id"
    invalidations = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    assert invalidations["Quantity"] == 1


def test_publish_refuses_a_console_not_built(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make console"):
        publish(None, None, OUTPUTS, "eu-west-1", tmp_path)


def test_the_stack_is_the_one_sam_deploys_for_the_environment() -> None:
    assert stack_of("dev") == ("llm-gateway-dev", "us-east-1")
