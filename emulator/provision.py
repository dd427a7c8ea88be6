"""Create, on an AWS-compatible endpoint (moto), the resources of template.yaml that gatewayctl works with.

It does for the local gateway and the tests what CloudFormation does for a deployment, for the parts
that hold state: the DynamoDB tables (from the template's own key schemas), the REST API with its stage
and the usage plans (with the template's throttle and quota values). Its result is the stack outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emulator.template import Resolver, dynamodb_tables, load_template, time_to_live, translate_template

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class UsagePlanSpec:
    logical_id: str
    name: str
    rate_limit: float
    burst_limit: int
    quota_limit: int
    quota_period: str
    quota_offset: int


def usage_plans(cfn: dict[str, Any], resolver: Resolver) -> list[UsagePlanSpec]:
    """The usage plans of the translated template, with parameter values applied."""
    plans = []
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::ApiGateway::UsagePlan":
            continue
        properties = resolver.resolve(resource["Properties"])
        throttle, quota = properties["Throttle"], properties["Quota"]
        plans.append(
            UsagePlanSpec(
                logical_id=logical_id,
                name=str(properties["UsagePlanName"]),
                rate_limit=float(throttle["RateLimit"]),
                burst_limit=int(throttle["BurstLimit"]),
                quota_limit=int(quota["Limit"]),
                quota_period=str(quota["Period"]),
                quota_offset=int(quota.get("Offset", 0)),
            )
        )
    return plans


@dataclass(frozen=True)
class Provisioned:
    # Physical ids of the created resources by logical id (plus AWS::StackName).
    physical: dict[str, str]
    # The stack outputs that can be known without deploying functions.
    outputs: dict[str, str]


def provision(
    dynamodb: DynamoDBClient | None,
    apigateway: APIGatewayClient,
    stack_name: str,
    parameters: dict[str, str] | None = None,
    template: dict[str, Any] | None = None,
) -> Provisioned:
    """Create the tables (unless `dynamodb` is None: the local gateway's embedded store needs none), REST API,
    stage and usage plans."""
    template = template or load_template()
    physical: dict[str, str] = {"AWS::StackName": stack_name}
    ttl = time_to_live(template)
    for logical_id, arguments in dynamodb_tables(template).items():
        name = f"{stack_name}-{logical_id}"
        physical[logical_id] = name
        if dynamodb is None:
            continue
        try:
            dynamodb.create_table(TableName=name, **arguments)
        except dynamodb.exceptions.ResourceInUseException:
            # A persistent endpoint (DynamoDB Local) still has it from an earlier run: keep its data.
            continue
        if logical_id in ttl:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl[logical_id]}
            )

    cfn = translate_template(template)
    resolver = Resolver(cfn, parameters, physical)
    stage = str(resolver.resolve({"Ref": "StageName"}))
    api_id = apigateway.create_rest_api(name=f"{stack_name}-api", apiKeySource="AUTHORIZER")["id"]
    root = next(item["id"] for item in apigateway.get_resources(restApiId=api_id)["items"] if item["path"] == "/")
    apigateway.put_method(restApiId=api_id, resourceId=root, httpMethod="ANY", authorizationType="NONE")
    apigateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="ANY", type="MOCK")
    apigateway.create_deployment(restApiId=api_id, stageName=stage)
    physical["GatewayApi"] = api_id
    for plan in usage_plans(cfn, Resolver(cfn, parameters, physical)):
        physical[plan.logical_id] = apigateway.create_usage_plan(
            name=plan.name,
            apiStages=[{"apiId": api_id, "stage": stage}],
            throttle={"rateLimit": plan.rate_limit, "burstLimit": plan.burst_limit},
            quota={"limit": plan.quota_limit, "period": plan.quota_period, "offset": plan.quota_offset},  # type: ignore[typeddict-item]
        )["id"]

    final = Resolver(cfn, parameters, physical)
    outputs: dict[str, str] = {}
    for name, spec in template.get("Outputs", {}).items():
        value = final.resolve(spec["Value"])
        if isinstance(value, str | int | float):
            outputs[name] = str(value)
    return Provisioned(physical, outputs)
