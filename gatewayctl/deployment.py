"""Where gatewayctl acts: a deployed CloudFormation stack (by name) or the local gateway (by URL)."""

from __future__ import annotations

import json
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from emulator import LOCAL_STACK_PATH, PROJECT_ROOT

PLAN_OUTPUT_SUFFIX = "UsagePlanId"


class DeploymentError(Exception):
    pass


@dataclass(frozen=True)
class Deployment:
    """A gateway's stack outputs, and AWS clients that reach its resources."""

    description: str
    region: str
    outputs: dict[str, str]
    # Local gateway only: loopback endpoints by service (dynamodb, apigateway).
    endpoints: dict[str, str] = field(default_factory=dict)
    # Local gateway only: the directory of its embedded database, when it keeps keys and usage there.
    data_dir: Path | None = None
    # The admin API's base URL (.../v1/admin); None: gatewayctl calls its routes in-process on these resources.
    admin_url: str | None = None
    # Local gateway only: the admin key standing in for IAM credentials on the admin API.
    admin_key: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def client(self, service: str) -> Any:
        if service == "apigateway" and self.data_dir is not None and service not in self._clients:
            from emulator.control import LocalApiGatewayControl

            # The local gateway keeps API Gateway's keys and plans in its data directory.
            self._clients[service] = LocalApiGatewayControl(self.data_dir)
        if service not in self._clients:
            import boto3

            extra: dict[str, str] = {}
            endpoint = self.endpoints.get(service)
            if endpoint:
                # Local endpoints accept any credentials; these keep real ones out of local traffic.
                extra = {
                    "endpoint_url": endpoint,
                    "aws_access_key_id": "local",
                    "aws_secret_access_key": "local",  # nosec B105 # a placeholder local endpoints accept
                }
            make_client = cast(Callable[..., Any], boto3.client)
            self._clients[service] = make_client(service, region_name=self.region, **extra)
        return self._clients[service]

    def output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise DeploymentError(
                f"{self.description} has no output {name}; is it deployed from this template?"
            ) from None

    @property
    def plans(self) -> dict[str, str]:
        return plans_from_outputs(self.outputs)


def plans_from_outputs(outputs: dict[str, str]) -> dict[str, str]:
    """Usage plan ids by plan name, from the <Plan>UsagePlanId stack outputs."""
    return {
        name.removesuffix(PLAN_OUTPUT_SUFFIX).lower(): value
        for name, value in outputs.items()
        if name.endswith(PLAN_OUTPUT_SUFFIX)
    }


def samconfig_defaults(env: str, path: Path = PROJECT_ROOT / "samconfig.toml") -> tuple[str | None, str | None]:
    """(stack name, region) of a samconfig.toml environment."""
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    section = config.get(env, {})
    parameters: dict[str, Any] = {}
    for command in ("global", "deploy"):
        parameters.update(section.get(command, {}).get("parameters", {}))
    return parameters.get("stack_name"), parameters.get("region")


def from_stack(stack_name: str, region: str | None) -> Deployment:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise DeploymentError("No AWS region: pass --region or set it in samconfig.toml or AWS_REGION")
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise DeploymentError(f"Cannot read stack {stack_name} in {session.region_name}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "AdminApiUrl" not in outputs:
        raise DeploymentError(f"Stack {stack_name} has no admin API (output AdminApiUrl): deploy this template first")
    return Deployment(
        f"stack {stack_name} ({session.region_name})", session.region_name, outputs, admin_url=outputs["AdminApiUrl"]
    )


def from_local(url: str) -> Deployment:
    """The local gateway publishes its stack outputs and AWS endpoints at /_local/stack."""
    address = url.rstrip("/") + LOCAL_STACK_PATH
    if urllib.parse.urlsplit(address).scheme not in {"http", "https"}:
        raise DeploymentError(f"--local takes the local gateway's http:// URL, not {url}")
    try:
        # The scheme is checked above: urlopen would also read file: and other schemes.
        with urllib.request.urlopen(address, timeout=5) as response:  # noqa: S310 # nosec B310 # http(s) only
            described = json.load(response)
    except OSError as error:
        raise DeploymentError(f"No local gateway answers at {url} ({error}); start it with 'make run'") from error
    outputs = {str(k): str(v) for k, v in described["outputs"].items()}
    key_file = described.get("admin_key_file")
    try:
        admin_key = Path(key_file).read_text(encoding="utf-8").strip() if key_file else None
    except OSError as error:
        raise DeploymentError(f"Cannot read the local gateway's admin key ({error})") from error
    return Deployment(
        f"local gateway {url}",
        str(described["region"]),
        outputs,
        endpoints={str(k): str(v) for k, v in described["endpoints"].items()},
        data_dir=Path(described["data_dir"]) if described.get("data_dir") else None,
        # The local gateway's own address for its admin API (the stack output names its emulated id).
        admin_url=url.rstrip("/") + "/" + outputs.get("StageName", "v1") + "/admin" if admin_key else None,
        admin_key=admin_key,
    )
