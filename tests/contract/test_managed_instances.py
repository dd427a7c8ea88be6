"""template.yaml with ApiComputeMode=managed-instances: what SAM makes of it after AWS::LanguageExtensions, and that
the CloudFormation it makes passes cfn-lint, so the mode that is not the default is checked as closely as the one
that is."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator.template import Resolver, translate_template
from llm_gateway.api.asgi import worker_threads
from llm_gateway.config import Settings

MANAGED = {
    "ApiComputeMode": "managed-instances",
    "ManagedInstancesSubnetIds": "subnet-0aaa1111,subnet-0bbb2222,subnet-0ccc3333",
    "ManagedInstancesSecurityGroupIds": "sg-0ddd4444",
}


@pytest.fixture(scope="module")
def managed() -> dict[str, Any]:
    return translate_template(parameters=MANAGED)


@pytest.fixture(scope="module")
def on_demand() -> dict[str, Any]:
    return translate_template()


def resources_of(cfn: dict[str, Any], kind: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    resolver = Resolver(cfn, overrides)
    return {
        name: resource
        for name, resource in cfn["Resources"].items()
        if resource["Type"] == kind and ("Condition" not in resource or resolver.condition(resource["Condition"]))
    }


def test_on_demand_is_the_default_and_creates_no_capacity(on_demand: dict[str, Any]) -> None:
    assert on_demand["Parameters"]["ApiComputeMode"]["Default"] == "on-demand"
    assert resources_of(on_demand, "AWS::Lambda::CapacityProvider") == {}
    function = Resolver(on_demand).resolve(on_demand["Resources"]["ApiFunction"]["Properties"])
    assert "CapacityProviderConfig" not in function
    assert function["Environment"]["Variables"].get("GATEWAY_CONCURRENCY_PER_ENVIRONMENT") is None, "one at a time"
    assert function.get("FunctionName") is None, "the default deployment keeps its generated name"
    assert resources_of(on_demand, "AWS::Lambda::Alias") == {}


def test_managed_instances_run_the_api_function_on_a_capacity_provider(managed: dict[str, Any]) -> None:
    resolver = Resolver(managed, MANAGED)
    (provider,) = resources_of(managed, "AWS::Lambda::CapacityProvider", MANAGED).values()
    settings = resolver.resolve(provider["Properties"])
    assert settings["VpcConfig"] == {
        "SubnetIds": MANAGED["ManagedInstancesSubnetIds"].split(","),
        "SecurityGroupIds": ["sg-0ddd4444"],
    }
    assert settings["InstanceRequirements"] == {"Architectures": ["arm64"]}
    scaling = settings["CapacityProviderScalingConfig"]
    assert scaling["MaxVCpuCount"] == 64
    assert scaling["ScalingPolicies"] == [
        {"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization", "TargetValue": 50}
    ]
    function = resolver.resolve(managed["Resources"]["ApiFunction"]["Properties"])
    config = function["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"]
    arn = managed["Resources"]["ApiFunction"]["Properties"]["CapacityProviderConfig"]
    assert arn["LambdaManagedInstancesCapacityProviderConfig"]["CapacityProviderArn"]["Fn::Sub"].endswith(
        ":capacity-provider:${ApiCapacityProvider}"
    ), "the provider's ARN, from its name"
    # Each waiting request holds one of the app's worker threads: the function is told its concurrency, and the
    # threads it makes of it outnumber the requests Lambda sends it.
    concurrency = int(config["PerExecutionEnvironmentMaxConcurrency"])
    assert concurrency == 512
    variable = "GATEWAY_CONCURRENCY_PER_ENVIRONMENT"
    told = Settings.from_environ({variable: function["Environment"]["Variables"][variable]}).concurrency_per_environment
    assert told == concurrency
    assert worker_threads(told) > concurrency
    assert config["ExecutionEnvironmentMemoryGiBPerVCpu"] == 2
    assert function["MemorySize"] == 2048
    assert function["FunctionScalingConfig"] == {"MinExecutionEnvironments": 3, "MaxExecutionEnvironments": 48}
    # Switching modes replaces the function: its compute type is fixed at creation, its name is create-only.
    assert function["FunctionName"] == "llm-gateway-local-api-managed"
    assert function.get("ReservedConcurrentExecutions") is None


def test_api_gateway_invokes_the_published_alias_in_managed_mode(managed: dict[str, Any]) -> None:
    (alias,) = resources_of(managed, "AWS::Lambda::Alias", MANAGED)
    body = json.dumps(managed["Resources"]["GatewayApi"]["Properties"]["Body"])
    assert f"{alias}" in body, "every route's integration names the alias, not $LATEST"


def test_a_managed_deployment_must_name_its_network(managed: dict[str, Any]) -> None:
    rule = managed["Rules"]["ManagedInstancesNeedANetwork"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "ApiComputeMode"}, "managed-instances"]}
    assert len(rule["Assertions"]) == 2


def test_the_managed_cloudformation_passes_cfn_lint(managed: dict[str, Any]) -> None:
    """The capacity provider and the function as CloudFormation receives them, against CloudFormation's own schemas
    (cfn-lint on template.yaml checks SAM's form, and only the default branch of each !If)."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(managed), config=ManualArgs(regions=["us-east-1"]))
    ours = ("Resources/ApiFunction/", "Resources/ApiCapacityProvider/")
    found = [
        f"{m.rule.id} {m.message}"
        for m in matches
        if m.rule.id.startswith("E") and "/".join(str(part) for part in m.path).startswith(ours)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("log_level", "application_level"), [("INFO", "INFO"), ("DEBUG", "DEBUG"), ("WARNING", "INFO"), ("ERROR", "INFO")]
)
def test_both_request_path_functions_log_json_without_lambdas_own_lines(
    on_demand: dict[str, Any], log_level: str, application_level: str
) -> None:
    """Lambda's JSON format, its own start and report lines off (FunctionSystemLogLevel=WARN); the application level
    never above INFO, or Lambda would drop the EMF documents, which carry no level."""
    for name in ("ApiFunction", "KeyAuthorizerFunction"):
        for system_level in ("WARN", "INFO"):
            overrides = {"LogLevel": log_level, "FunctionSystemLogLevel": system_level}
            function = Resolver(on_demand, overrides).resolve(on_demand["Resources"][name]["Properties"])
            assert function["LoggingConfig"] == {
                "LogFormat": "JSON",
                "ApplicationLogLevel": application_level,
                "SystemLogLevel": system_level,
            }, name
    assert on_demand["Parameters"]["FunctionSystemLogLevel"]["Default"] == "WARN"
