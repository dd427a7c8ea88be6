"""template.yaml translated by the SAM translator: the wiring that deploys is the wiring we intend."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from emulator.template import Resolver, load_template, translate_template

RUN_SH = Path(__file__).resolve().parents[2] / "functions" / "api" / "run.sh"
ROUTES = {
    ("post", "/chat/completions"),
    ("post", "/responses"),
    ("post", "/responses/compact"),
    ("get", "/responses/{response_id}"),
    ("delete", "/responses/{response_id}"),
    ("get", "/responses/{response_id}/input_items"),
    ("post", "/embeddings"),
    ("get", "/models/{model+}"),
    ("post", "/messages"),
    ("post", "/messages/count_tokens"),
    ("get", "/models"),
    ("post", "/model"),
}
PLANS = {
    "free": {"RateLimit": 1, "BurstLimit": 2, "Limit": 100, "Period": "DAY"},
    "standard": {"RateLimit": 10, "BurstLimit": 20, "Limit": 1000, "Period": "DAY"},
    "premium": {"RateLimit": 100, "BurstLimit": 200, "Limit": 100000, "Period": "DAY"},
}
GATEWAY_RESPONSES = {
    "THROTTLED": "429",
    "QUOTA_EXCEEDED": "429",
    "UNAUTHORIZED": "401",
    "ACCESS_DENIED": "401",
    "INVALID_API_KEY": "401",
    "MISSING_AUTHENTICATION_TOKEN": "404",
    "REQUEST_TOO_LARGE": "413",
    "INTEGRATION_TIMEOUT": "504",
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translate_template()


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == kind}


def api_body(cfn: dict[str, Any]) -> dict[str, Any]:
    (api,) = of_type(cfn, "AWS::ApiGateway::RestApi").values()
    return dict(api["Properties"]["Body"])


def test_stage_v1_is_the_openai_base_url(template: dict[str, Any], cfn: dict[str, Any]) -> None:
    assert template["Parameters"]["StageName"]["Default"] == "v1"
    (stage,) = of_type(cfn, "AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == {"Ref": "StageName"}
    url = template["Outputs"]["ApiBaseUrl"]["Value"]["Fn::Sub"]
    assert url.endswith(".amazonaws.com/${StageName}") or url.endswith("${AWS::URLSuffix}/${StageName}")


def test_routes_are_exactly_the_openai_ones_and_every_route_needs_a_key(cfn: dict[str, Any]) -> None:
    body = api_body(cfn)
    routes = {(method, path) for path, methods in body["paths"].items() for method in methods if method != "options"}
    assert routes == ROUTES | {(ADMIN_METHOD, ADMIN_PATH)}
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            if method == "options" or path == ADMIN_PATH:
                continue  # CORS preflights: test_cors_preflights_are_answered_by_api_gateway_without_a_key
            schemes = {name for requirement in operation["security"] for name in requirement}
            assert schemes == {"api_key", "KeyAuthorizer"}, f"{method} {path} is not keyed and authorized"
            assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"


ORIGIN = "https://app.example.com"
ADMIN_PATH, ADMIN_METHOD = "/admin/{proxy+}", "x-amazon-apigateway-any-method"


def test_the_admin_api_is_iam_authorised_on_its_own_function(cfn: dict[str, Any]) -> None:
    """AWS_IAM alone (no key authorizer, no API key), invoked with the function's resource permission rather than
    the operator's credentials, on AdminFunction: callers' keys never reach it."""
    operation = api_body(cfn)["paths"][ADMIN_PATH][ADMIN_METHOD]
    assert operation["security"] == [{"AWS_IAM": []}]
    integration = operation["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy" and "credentials" not in integration
    assert "${AdminFunction.Arn}" in integration["uri"]["Fn::Sub"]
    scheme = api_body(cfn)["components"]["securitySchemes"]["AWS_IAM"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"


def test_cors_preflights_are_answered_by_api_gateway_without_a_key(cfn: dict[str, Any]) -> None:
    """Every route has an OPTIONS method: a mock integration, no authorizer, no API key; it names the allowed origin
    only when CorsAllowOrigin is set, so an API deployed without it answers no browser."""
    for allowed in (ORIGIN, "*", ""):
        body = Resolver(cfn, {"CorsAllowOrigin": allowed}).resolve(api_body(cfn))
        for path, methods in body["paths"].items():
            preflight = methods["options"]
            assert "security" not in preflight, f"the preflight of {path} needs no key"
            integration = preflight["x-amazon-apigateway-integration"]
            assert integration["type"] == "mock"
            headers = integration["responses"]["default"]["responseParameters"]
            assert headers.get("method.response.header.Access-Control-Allow-Origin") == (
                f"'{allowed}'" if allowed else None
            )
            allowed_headers = headers["method.response.header.Access-Control-Allow-Headers"].strip("'").split(",")
            assert {"authorization", "content-type", "x-api-key", "anthropic-version"} <= set(allowed_headers)
            assert set(headers["method.response.header.Access-Control-Allow-Methods"].strip("'").split(",")) >= {
                method.upper() for method in methods if method not in {"options", ADMIN_METHOD}
            } | ({"GET", "POST", "PUT", "PATCH"} if ADMIN_METHOD in methods else set())


def test_gateway_responses_and_the_function_carry_the_same_cors_headers(cfn: dict[str, Any]) -> None:
    from llm_gateway.api.headers import EXPOSED

    resolved = Resolver(cfn, {"CorsAllowOrigin": ORIGIN}).resolve(api_body(cfn))
    for kind, response in resolved["x-amazon-apigateway-gateway-responses"].items():
        headers = response["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{ORIGIN}'", kind
        exposed = headers["gatewayresponse.header.Access-Control-Expose-Headers"].strip("'").split(", ")
        assert exposed == list(EXPOSED), kind
    off = Resolver(cfn, {}).resolve(api_body(cfn))["x-amazon-apigateway-gateway-responses"]
    assert not any(v for r in off.values() for n, v in r["responseParameters"].items() if "Access-Control" in n)
    variables = cfn["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["GATEWAY_CORS_ALLOW_ORIGIN"] == {"Ref": "CorsAllowOrigin"}


def test_request_authorizer_accepts_either_header_and_meters_the_key(cfn: dict[str, Any]) -> None:
    (api,) = of_type(cfn, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    authorizer = api_body(cfn)["components"]["securitySchemes"]["KeyAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    # No API Gateway cache and no identity source: a request may carry x-api-key or Authorization alone.
    assert authorizer["authorizerResultTtlInSeconds"] == 0
    assert "identitySource" not in authorizer
    assert "KeyAuthorizerFunction" in json.dumps(authorizer["authorizerUri"])


def test_keys_table_is_durable_encrypted_and_readable_only_by_the_authorizer(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["KeysTable"]
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["KeySchema"] == [{"AttributeName": "key_hash", "KeyType": "HASH"}]
    policies = json.dumps(cfn["Resources"]["KeyAuthorizerFunctionRole"]["Properties"]["Policies"])
    assert '"dynamodb:GetItem"' in policies
    assert "dynamodb:PutItem" not in policies
    assert "KeysTable" not in json.dumps(cfn["Resources"]["ApiFunctionRole"]["Properties"].get("Policies", []))


def test_three_usage_plans_with_the_documented_limits_on_the_stage(cfn: dict[str, Any]) -> None:
    resolver = Resolver(cfn)
    plans = {}
    for plan in of_type(cfn, "AWS::ApiGateway::UsagePlan").values():
        properties = resolver.resolve(plan["Properties"])
        name = properties["UsagePlanName"].removeprefix("llm-gateway-local-")
        assert properties["ApiStages"] == [{"ApiId": {"Ref": "GatewayApi"}, "Stage": {"Ref": "GatewayApiStage"}}]
        assert properties["Quota"]["Offset"] == 0
        plans[name] = {**properties["Throttle"], **{k: properties["Quota"][k] for k in ("Limit", "Period")}}
    assert plans == PLANS


def test_gateway_responses_are_openai_shaped_json(cfn: dict[str, Any]) -> None:
    responses = api_body(cfn)["x-amazon-apigateway-gateway-responses"]
    assert set(GATEWAY_RESPONSES) <= set(responses)
    for kind, status in GATEWAY_RESPONSES.items():
        response = responses[kind]
        assert response.get("statusCode") == status, kind
        rendered = response["responseTemplates"]["application/json"]
        rendered = rendered.replace("$context.error.messageString", '"Forbidden"')
        rendered = re.sub(r"\$context\.[A-Za-z.]+", "x", rendered)
        error = json.loads(rendered)["error"]
        assert set(error) == {"message", "type", "param", "code"}, kind
        assert error["message"] and error["type"] and error["code"], kind
    assert responses["THROTTLED"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    assert responses["QUOTA_EXCEEDED"]["responseParameters"]["gatewayresponse.header.x-should-retry"] == "'false'"


def test_functions_run_python313_on_arm64_with_the_shared_layer(template: dict[str, Any], cfn: dict[str, Any]) -> None:
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert set(functions) == {"ApiFunction", "KeyAuthorizerFunction", "UsageRollupFunction", "AdminFunction"}
    (layer_id,) = of_type(cfn, "AWS::Lambda::LayerVersion")
    for function in functions.values():
        properties = function["Properties"]
        assert (properties["Runtime"], properties["Architectures"]) == ("python3.13", ["arm64"])
        assert properties["Layers"][0] == {"Ref": layer_id}
    assert len(functions["KeyAuthorizerFunction"]["Properties"]["Layers"]) == 1
    layer = template["Resources"]["GatewayLayer"]
    assert layer["Metadata"] == {"BuildMethod": "python3.13", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_outputs_name_everything_a_user_needs(template: dict[str, Any]) -> None:
    assert {
        "ApiBaseUrl",
        "RestApiId",
        "StageName",
        "FreeUsagePlanId",
        "StandardUsagePlanId",
        "PremiumUsagePlanId",
        "ApiFunctionName",
    } <= set(template["Outputs"])


def test_resolver_follows_parameters_and_conditions(cfn: dict[str, Any]) -> None:
    on = Resolver(cfn, {"EnableTracing": "true", "StandardPlanRateLimit": "5"})
    off = Resolver(cfn)
    tracing = {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}
    assert (on.resolve(tracing), off.resolve(tracing)) == ("Active", "PassThrough")
    assert on.resolve({"Ref": "StandardPlanRateLimit"}) == "5"


GEO_PREFIXES = ("us.", "eu.", "apac.", "global.", "jp.", "au.", "ca.", "us-gov.")


def function_statements(cfn: dict[str, Any], overrides: dict[str, str] | None = None) -> list[dict[str, Any]]:
    policies = Resolver(cfn, overrides).resolve(cfn["Resources"]["ApiFunctionRole"]["Properties"]["Policies"])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


def test_bedrock_access_covers_exactly_the_registrys_models(cfn: dict[str, Any]) -> None:
    from llm_gateway.config import shipped_registry_text
    from llm_gateway.domain.registry import ModelRegistry

    registry = ModelRegistry.model_validate_json(shipped_registry_text())
    served = {
        t.model_id
        for entry in registry.models.values()
        if entry.kind == "chat"
        for t in entry.targets
        if t.provider == "bedrock"
    }
    (statement,) = [s for s in function_statements(cfn) if s.get("Sid") == "InvokeRegistryModels"]
    assert statement["Action"] == [
        "bedrock:InvokeModel",
        "bedrock:InvokeModelWithResponseStream",
        "bedrock:CountTokens",
    ]
    allowed = set(statement["Resource"])
    expected = set()
    for model_id in served:
        foundation = model_id
        if model_id.startswith(GEO_PREFIXES):
            expected.add(f"arn:aws:bedrock:us-east-1:000000000000:inference-profile/{model_id}")
            foundation = model_id.split(".", 1)[1]
        expected.add(f"arn:aws:bedrock:*::foundation-model/{foundation}")
    assert allowed == expected, "template parameters and the shipped registry disagree"
    # Embedding models: InvokeModel alone, on exactly the registry's embedding models.
    embedders = {
        t.model_id
        for entry in registry.models.values()
        if entry.kind == "embedding"
        for t in entry.targets
        if t.provider == "bedrock"
    }
    (embedding,) = [s for s in function_statements(cfn) if s.get("Sid") == "InvokeRegistryEmbeddingModels"]
    assert embedding["Action"] == "bedrock:InvokeModel"
    assert set(embedding["Resource"]) == {f"arn:aws:bedrock:*::foundation-model/{m}" for m in embedders}


def test_no_bedrock_models_means_no_bedrock_access_and_the_secret_is_opt_in(cfn: dict[str, Any]) -> None:
    assert not [s for s in function_statements(cfn) if "secretsmanager" in json.dumps(s)]
    none = function_statements(
        cfn, {"BedrockFoundationModelIds": "", "BedrockInferenceProfileIds": "", "BedrockEmbeddingModelIds": ""}
    )
    assert not [s for s in none if "bedrock" in json.dumps(s)]
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-gateway/providers-AbCdEf"
    (statement,) = [
        s for s in function_statements(cfn, {"ProviderSecretArn": secret}) if "secretsmanager" in json.dumps(s)
    ]
    assert (statement["Action"], statement["Resource"]) == ("secretsmanager:GetSecretValue", secret)


def test_usage_table_has_ttl_and_the_function_may_only_update_it(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["UsageTable"]
    assert table["DeletionPolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["KeySchema"] == [
        {"AttributeName": "key_id", "KeyType": "HASH"},
        {"AttributeName": "period", "KeyType": "RANGE"},
    ]
    (statement,) = [s for s in function_statements(cfn) if "UsageTable" in json.dumps(s)]
    assert statement["Action"] == "dynamodb:UpdateItem"
    assert statement["Resource"] == {"Fn::GetAtt": ["UsageTable", "Arn"]}


def test_stored_responses_expire_by_ttl_and_lifecycle_and_the_function_reaches_only_them(cfn: dict[str, Any]) -> None:
    table = cfn["Resources"]["ResponsesTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST" and table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["key_id", "response_id"]
    bucket = cfn["Resources"]["ResponsesBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ResponsesExpiryDays"}
    (deny,) = cfn["Resources"]["ResponsesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    statements = {s["Sid"]: s for s in function_statements(cfn) if "Responses" in json.dumps(s)}
    assert statements["StoreResponses"]["Action"] == ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem"]
    assert statements["StoreResponses"]["Resource"] == {"Fn::GetAtt": ["ResponsesTable", "Arn"]}
    assert statements["StoreLargeResponses"]["Action"] == ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"]
    assert set(statements) == {"StoreResponses", "StoreLargeResponses"}


def test_the_rollup_runs_daily_and_may_only_scan_and_update_the_usage_table(cfn: dict[str, Any]) -> None:
    policies = Resolver(cfn).resolve(cfn["Resources"]["UsageRollupFunctionRole"]["Properties"]["Policies"])
    statements = [s for policy in policies for s in policy["PolicyDocument"]["Statement"]]
    (statement,) = [s for s in statements if "UsageTable" in json.dumps(s)]
    assert statement["Action"] == ["dynamodb:Scan", "dynamodb:UpdateItem"]
    assert statement["Resource"] == {"Fn::GetAtt": ["UsageTable", "Arn"]}
    (rule,) = of_type(cfn, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(30 0 * * ? *)"


def test_the_tenant_index_holds_only_rollups_and_what_reports_show(cfn: dict[str, Any]) -> None:
    """Budget items carry no `day`, so a chat request's writes never reach the index."""
    (index,) = cfn["Resources"]["UsageTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index["KeySchema"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "day", "KeyType": "RANGE"},
    ]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"


def test_plan_limits_reach_the_function_as_the_settings_json(cfn: dict[str, Any]) -> None:
    from llm_gateway.config import Settings

    variables = cfn["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    resolved = Resolver(cfn, {"PremiumPlanUsdPerMonth": "250"}).resolve(variables["GATEWAY_PLAN_LIMITS"])
    limits = Settings.from_environ({"GATEWAY_PLAN_LIMITS": resolved}).plan_limits
    assert sorted(limits) == ["free", "premium", "standard"]
    assert limits["standard"].limits().tokens_per_day == 2_000_000
    assert limits["premium"].limits().usd_per_month == 250
    assert limits["free"].limits().max_output_tokens == 1024
    # The usage plans' quotas, which the rate-limit headers report.
    assert (limits["free"].requests_per_period, limits["free"].quota_period) == (100, "DAY")
    assert limits["premium"].limits().requests_per_period == 100_000


def test_dashboard_and_alarms_watch_what_matters(cfn: dict[str, Any]) -> None:
    alarms = {r["Properties"]["MetricName"]: r["Properties"] for r in of_type(cfn, "AWS::CloudWatch::Alarm").values()}
    assert set(alarms) == {
        "5XXError",
        "TimeToFirstByte",
        "ProviderErrors",
        "ProviderThrottles",
        "BudgetRejections",
        "UsageRecordFailures",
        "Errors",
    }
    assert alarms["TimeToFirstByte"]["ExtendedStatistic"] == "p99"
    assert alarms["UsageRecordFailures"]["Threshold"] == 0, "one lost usage record is already an alarm"
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    resolver = Resolver(cfn, None, {"ApiAccessLogGroup": "/aws/apigateway/stack-access"})
    widgets = json.loads(resolver.resolve(cfn["Resources"]["Dashboard"]["Properties"]["DashboardBody"]))["widgets"]
    titles = " ".join(w["properties"]["title"] for w in widgets)
    for topic in ("latency", "Tokens by model", "Cost (USD) by model and plan", "throttles", "Budgets", "Embeddings"):
        assert topic in titles


def test_every_route_streams_from_the_api_function_behind_lambda_web_adapter(cfn: dict[str, Any]) -> None:
    """Every caller's route; the admin API's answers are small JSON, buffered from a plain Lambda handler."""
    for path, methods in api_body(cfn)["paths"].items():
        for method, operation in methods.items():
            if method == "options" or path == ADMIN_PATH:
                continue
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["responseTransferMode"] == "STREAM", f"{method} {path}"
            # InvokeWithResponseStream (API version 2021-11-15), up to API Gateway's 15-minute stream limit.
            uri = integration["uri"]["Fn::Sub"]
            assert uri.endswith("/2021-11-15/functions/${ApiFunction.Arn}/response-streaming-invocations")
            assert integration["timeoutInMillis"] == 900_000
    function = cfn["Resources"]["ApiFunction"]["Properties"]
    assert function["Handler"] == "run.sh"
    assert function["Timeout"] == 900
    variables = function["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert re.search(rf"--port \"\$\{{AWS_LWA_PORT:-{variables['AWS_LWA_PORT']}\}}\"", RUN_SH.read_text())
    assert os.access(RUN_SH, os.X_OK)


def test_the_web_adapter_layer_is_awss_arm64_layer_unless_overridden(cfn: dict[str, Any]) -> None:
    layers = cfn["Resources"]["ApiFunction"]["Properties"]["Layers"]
    default = Resolver(cfn, {"AWS::Region": "eu-west-1"}).resolve(layers[1])
    assert default == "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:26"
    own = "arn:aws:lambda:eu-west-1:123456789012:layer:MyAdapter:3"
    assert Resolver(cfn, {"WebAdapterLayerArn": own}).resolve(layers[1]) == own


# REST API access-log variables used by the format, as the API Gateway developer guide lists them ("Variables for
# access logging for API Gateway"; the integration's streaming ones in "Troubleshoot issues with response
# streaming in API Gateway"). $context.authorizer.<key> is one of the authorizer's own context keys.
ACCESS_LOG_VARIABLES = {
    "requestId",
    "extendedRequestId",
    "requestTime",
    "requestTimeEpoch",
    "httpMethod",
    "resourcePath",
    "status",
    "responseLength",
    "responseLatency",
    "integration.latency",
    "integration.status",
    "integration.timeToFirstContent",
    "integration.timeToAllHeaders",
    "integration.responseTransferMode",
    "authorizer.latency",
    "authorizer.integrationLatency",
    "authorizer.principalId",
    "error.message",
    "error.responseType",
    "identity.sourceIp",
}
# What an operator must find in every line: field -> the $context variable it holds.
ACCESS_LOG_FIELDS = {
    "requestId": "requestId",
    "requestTime": "requestTime",
    "httpMethod": "httpMethod",
    "resourcePath": "resourcePath",
    "status": "status",
    "responseLength": "responseLength",
    "responseLatency": "responseLatency",
    "integrationLatency": "integration.latency",
    "keyId": "authorizer.keyId",
    "tenant": "authorizer.tenant",
    "plan": "authorizer.plan",
    "errorMessage": "error.message",
    "errorType": "error.responseType",
}


def access_log_fields(log_format: str) -> dict[str, str]:
    """field -> $context variable of a JSON access-log format whose values are each one quoted variable."""
    marked = re.sub(r"\$context\.([A-Za-z.]+)", r"@\1", log_format)
    fields = json.loads(marked)
    assert all(isinstance(v, str) and re.fullmatch(r"@[A-Za-z.]+", v) for v in fields.values()), fields
    return {field: value.removeprefix("@") for field, value in fields.items()}


def test_api_gateway_writes_a_json_access_log_of_every_request_to_its_own_log_group(cfn: dict[str, Any]) -> None:
    from llm_gateway.authorizer import caller_context
    from llm_gateway.domain.keys import KeyRecord

    (stage,) = of_type(cfn, "AWS::ApiGateway::Stage").values()
    setting = stage["Properties"]["AccessLogSetting"]
    arn = setting["DestinationArn"]["Fn::Sub"]
    assert arn == "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${ApiAccessLogGroup}"
    group = cfn["Resources"]["ApiAccessLogGroup"]
    assert group["Properties"]["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert cfn["Parameters"]["AccessLogRetentionDays"]["Default"] == 90

    fields = access_log_fields(setting["Format"])
    assert ACCESS_LOG_FIELDS.items() <= fields.items()
    record = KeyRecord("key_1", "hash", "hint", "acme", "standard", None, "active", datetime.now(UTC), "id", "usage")
    authorizer_keys = {f"authorizer.{key}" for key in caller_context(record)}
    assert set(fields.values()) <= ACCESS_LOG_VARIABLES | authorizer_keys, "a variable API Gateway does not set"
    # Never the key: $context.identity.apiKey is the API key's value (usage plans meter it).
    assert "apiKey" not in setting["Format"]
    # Nothing a caller controls, since API Gateway writes values unescaped into the JSON line.
    assert not {"identity.userAgent", "path", "identity.caller"} & set(fields.values())


def test_the_api_is_created_after_the_account_setting_that_lets_it_log(cfn: dict[str, Any]) -> None:
    assert cfn["Resources"]["GatewayApi"]["DependsOn"] == "AccessLogPrerequisites"
    handle = cfn["Resources"]["AccessLogPrerequisites"]["Metadata"]["ApiGatewayAccount"]
    assert handle == {"Fn::If": ["ConfiguresApiGatewayAccount", {"Ref": "ApiGatewayAccount"}, ""]}
    account = cfn["Resources"]["ApiGatewayAccount"]
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    role = cfn["Resources"]["ApiGatewayCloudWatchRole"]
    assert (role["Condition"], role["DeletionPolicy"]) == ("ConfiguresApiGatewayAccount", "Retain")
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(role["Properties"]["ManagedPolicyArns"])


def test_saved_queries_and_dashboard_widgets_read_the_access_log(cfn: dict[str, Any]) -> None:
    queries = {name: r["Properties"] for name, r in of_type(cfn, "AWS::Logs::QueryDefinition").items()}
    assert set(queries) == {"TopCallersQuery", "ErrorsByTypeQuery", "ThrottledByKeyQuery"}
    (stage,) = of_type(cfn, "AWS::ApiGateway::Stage").values()
    fields = set(access_log_fields(stage["Properties"]["AccessLogSetting"]["Format"]))
    for query in queries.values():
        assert query["LogGroupNames"] == [{"Ref": "ApiAccessLogGroup"}]
        used = set(re.findall(r"\b(keyId|tenant|plan|status|errorType|errorMessage)\b", query["QueryString"]))
        assert used and used <= fields
    assert "429" in queries["ThrottledByKeyQuery"]["QueryString"]
    group = "/aws/apigateway/stack-access"
    body = Resolver(cfn, None, {"ApiAccessLogGroup": group}).resolve(cfn["Resources"]["Dashboard"]["Properties"])
    widgets = [w["properties"] for w in json.loads(body["DashboardBody"])["widgets"] if w["type"] == "log"]
    assert sorted(w["query"] for w in widgets) == sorted(
        f"SOURCE '{group}' | {q['QueryString']}" for q in queries.values()
    )


@pytest.mark.parametrize(
    ("function", "parameter"),
    [("ApiFunction", "ApiReservedConcurrency"), ("KeyAuthorizerFunction", "AuthorizerReservedConcurrency")],
)
def test_reserved_concurrency_is_an_optional_parameter(cfn: dict[str, Any], function: str, parameter: str) -> None:
    setting = cfn["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]
    assert Resolver(cfn).resolve(setting) is None, "none reserved unless asked (AWS::NoValue)"
    assert Resolver(cfn, {parameter: "25"}).resolve(setting) == "25"


# Peak resident set of the API function at its largest request body, MiB (bench/memory.py, docs/benchmarks.md).
MEASURED_PEAK_MIB = 137


def test_the_api_functions_memory_is_a_parameter_with_room_above_the_measured_peak(cfn: dict[str, Any]) -> None:
    memory = cfn["Resources"]["ApiFunction"]["Properties"]["MemorySize"]
    assert Resolver(cfn).resolve(memory) == cfn["Parameters"]["ApiMemorySize"]["Default"]
    assert Resolver(cfn, {"ApiMemorySize": "512"}).resolve(memory) == "512"
    default = int(cfn["Parameters"]["ApiMemorySize"]["Default"])
    assert default >= 1.5 * MEASURED_PEAK_MIB, "less than half again the measured peak: a large body may not fit"
