"""Publishes the built console to a deployed stack: its files and config.json into the console's bucket, then a
CloudFront invalidation of the two files that name the rest (`make deploy` runs it after `sam deploy`)."""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "console" / "dist"
# Assets are named by their content's hash and never change; these two name the current ones.
UNHASHED = ("index.html", "config.json")


def console_settings(outputs: dict[str, str], region: str) -> dict[str, str]:
    """config.json for the console on a stack, from the stack's outputs: Cognito sign-in, the identity pool, and the
    admin API on the console's own origin (CloudFront passes /{stage}/admin* on), signed for API Gateway's host.
    Ids only: the user pool's app client has no secret."""
    stage = outputs["StageName"]
    api_host = outputs["ApiBaseUrl"].split("://", 1)[1].split("/", 1)[0]
    return {
        "auth": "cognito",
        "region": region,
        "userPoolId": outputs["ConsoleUserPoolId"],
        "userPoolClientId": outputs["ConsoleUserPoolClientId"],
        "identityPoolId": outputs["ConsoleIdentityPoolId"],
        "cognitoDomain": outputs["ConsoleSignInDomain"],
        "adminApi": f"/{stage}/admin",
        "signingHost": api_host,
        "gatewayUrl": outputs["ApiBaseUrl"],
    }


def publish(s3: Any, cloudfront: Any, outputs: dict[str, str], region: str, dist: Path = DIST) -> list[str]:
    """Uploads every file of `dist` and config.json, then invalidates index.html and config.json. Returns the keys
    written. Raises FileNotFoundError when the console is not built."""
    if not (dist / "index.html").is_file():
        raise FileNotFoundError(f"{dist / 'index.html'} is missing: run `make console` first")
    bucket = outputs["ConsoleBucketName"]
    written = []
    for file in sorted(path for path in dist.rglob("*") if path.is_file()):
        key = file.relative_to(dist).as_posix()
        cache = "no-cache" if key in UNHASHED else "public, max-age=31536000, immutable"
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=key, Body=file.read_bytes(), ContentType=content_type, CacheControl=cache)
        written.append(key)
    settings = json.dumps(console_settings(outputs, region), indent=2).encode()
    s3.put_object(
        Bucket=bucket, Key="config.json", Body=settings, ContentType="application/json", CacheControl="no-cache"
    )
    written.append("config.json")
    cloudfront.create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={
            "Paths": {"Quantity": len(UNHASHED) + 1, "Items": ["/", *(f"/{name}" for name in UNHASHED)]},
            "CallerReference": f"console-{time.time_ns()}",
        },
    )
    return written


def stack_of(environment: str, samconfig: Path = ROOT / "samconfig.toml") -> tuple[str, str]:
    """The stack name and region that `sam deploy --config-env ENVIRONMENT` uses."""
    settings = tomllib.loads(samconfig.read_text())[environment]["global"]["parameters"]
    return settings["stack_name"], settings["region"]


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config-env", default="default", help="the samconfig.toml environment deployed")
    args = parser.parse_args(argv)
    stack, region = stack_of(args.config_env)
    cloudformation = boto3.client("cloudformation", region_name=region)
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    written = publish(boto3.client("s3", region_name=region), boto3.client("cloudfront"), outputs, region)
    sys.stdout.write(f"console: {len(written)} files in s3://{outputs['ConsoleBucketName']}; {outputs['ConsoleUrl']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
