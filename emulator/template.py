"""Read template.yaml (CloudFormation short-form tags included) and locate its functions' handlers."""

from __future__ import annotations

import importlib.util
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from emulator import PROJECT_ROOT

TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns `!Ref X`, `!GetAtt A.B`, `!Sub ...` into their long JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 # nosec B506 # a SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


def load_handler(
    logical_id: str, template: dict[str, Any] | None = None, template_path: Path = TEMPLATE_PATH
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import a function's handler the way Lambda does: from its CodeUri, by its Handler module.function.

    Each function gets its own module name, since every function's entry file is called app.py.
    """
    template = template or load_template(template_path)
    properties = template["Resources"][logical_id]["Properties"]
    module_file, _, function_name = str(properties["Handler"]).rpartition(".")
    source = template_path.parent / str(properties["CodeUri"]) / f"{module_file.replace('.', '/')}.py"
    module = _import_file(f"lambda_{logical_id}_{module_file}".replace(".", "_"), source)
    return getattr(module, function_name)  # type: ignore[no-any-return]


# AWS Lambda Web Adapter's exec wrapper (its layer's /opt/bootstrap): the function's handler is then a script
# that starts a web app, and the adapter forwards each invocation to it over HTTP.
WEB_ADAPTER_WRAPPER = "/opt/bootstrap"
# The ASGI app a handler script serves: `... uvicorn [options] module:attribute [options]`.
_UVICORN_APP = re.compile(r"\buvicorn\b(?:\s+\S+)*?\s+(?P<module>[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_]\w*)(?=\s|$)")


def is_web_adapter_function(template: dict[str, Any], logical_id: str) -> bool:
    """Whether the function runs behind Lambda Web Adapter (its environment sets the adapter's exec wrapper)."""
    variables: dict[str, Any] = {}
    for source in (template.get("Globals", {}).get("Function", {}), template["Resources"][logical_id]["Properties"]):
        variables.update((source.get("Environment") or {}).get("Variables") or {})
    return variables.get("AWS_LAMBDA_EXEC_WRAPPER") == WEB_ADAPTER_WRAPPER


def load_web_app(
    logical_id: str, template: dict[str, Any] | None = None, template_path: Path = TEMPLATE_PATH
) -> Callable[..., Any]:
    """Import the ASGI app a Lambda Web Adapter function serves: the `module:attribute` its handler script
    passes to uvicorn, imported from the function's CodeUri as Lambda's working directory would."""
    template = template or load_template(template_path)
    properties = template["Resources"][logical_id]["Properties"]
    code = template_path.parent / str(properties["CodeUri"])
    script = (code / str(properties["Handler"])).read_text(encoding="utf-8")
    match = _UVICORN_APP.search(script.replace("\\\n", " "))
    if match is None:
        raise ValueError(f"{logical_id}'s handler script {properties['Handler']} starts no uvicorn app")
    module = match.group("module")
    source = code / f"{module.replace('.', '/')}.py"
    loaded = _import_file(f"lambda_{logical_id}_{module}".replace(".", "_"), source)
    return getattr(loaded, match.group("attr"))  # type: ignore[no-any-return]


def _import_file(name: str, source: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# SAM properties that SAM reads as literals: a deployment's AWS::LanguageExtensions transform resolves an !If there
# against the parameters before SAM sees it (template.yaml's ApiComputeMode).
LANGUAGE_EXTENSION_PROPERTIES = ("CapacityProviderConfig", "FunctionScalingConfig", "AutoPublishAlias")


def resolve_language_extensions(document: dict[str, Any], overrides: dict[str, str] | None = None) -> None:
    """Do what AWS::LanguageExtensions does for those properties: keep the branch of each top-level !If that the
    parameters (their defaults, or `overrides`) choose, and drop the property where that branch is AWS::NoValue."""
    if "AWS::LanguageExtensions" not in (document.get("Transform") or []):
        return
    resolver = Resolver(document, overrides)
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in LANGUAGE_EXTENSION_PROPERTIES:
            value = properties.get(key)
            if isinstance(value, dict) and set(value) == {"Fn::If"}:
                name, when_true, when_false = value["Fn::If"]
                chosen = when_true if resolver.condition(name) else when_false
                if chosen == {"Ref": "AWS::NoValue"}:
                    del properties[key]
                else:
                    properties[key] = chosen


def translate_template(
    template: dict[str, Any] | None = None, parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """The CloudFormation that `sam deploy` would create, produced by the same SAM translator, for the parameters'
    defaults or `parameters`.

    Local code locations are swapped for S3 placeholders first, as `sam package` would.
    """
    import copy

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    document = copy.deepcopy(template or load_template())
    resolve_language_extensions(document, parameters)
    for resource in document.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://local-build/{properties[key].strip('/')}"
    # The translator needs a region only to pick the partition; our template names no managed policy.
    session = boto3.session.Session(region_name=PSEUDO_PARAMETERS["AWS::Region"])
    # The translator logs feature-toggle notes at WARNING level on every run; they are not about our template.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    translator = Translator(None, Parser(), boto_session=session)
    result: dict[str, Any] = translator.translate(document, parameter_values={}, get_managed_policy_map=dict)
    return result


PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "000000000000",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "llm-gateway-local",
    "AWS::NoValue": None,
}


class Resolver:
    """Evaluates the intrinsic functions the template uses, against parameter values and conditions."""

    def __init__(
        self,
        template: dict[str, Any],
        overrides: dict[str, str] | None = None,
        resources: dict[str, str] | None = None,
    ) -> None:
        self.parameters: dict[str, Any] = dict(PSEUDO_PARAMETERS)
        specs = template.get("Parameters", {})
        for name, value in {**{n: s.get("Default") for n, s in specs.items()}, **(overrides or {})}.items():
            listed = specs.get(name, {}).get("Type") == "CommaDelimitedList" and isinstance(value, str)
            self.parameters[name] = [item for item in value.split(",") if item] if listed else value
        # Physical ids of resources, for Ref and ${Name} of a logical id.
        self.parameters.update(resources or {})
        self._conditions = template.get("Conditions", {})

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self._conditions[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            # AWS::NoValue removes the element it stands for.
            return [resolved for item in value if (resolved := self.resolve(item)) is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and arg in self.parameters:
                return self.parameters[arg]
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(item) for item in arg)
            if key == "Fn::Or":
                return any(self.resolve(item) for item in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                return self._substitute(arg)
            if key == "Fn::Join":
                separator, items = self.resolve(arg[0]), self.resolve(arg[1])
                return separator.join(str(item) for item in items if item is not None)
            if key == "Fn::Split":
                separator, text = self.resolve(arg[0]), self.resolve(arg[1])
                return text.split(separator) if isinstance(text, str) else {"Fn::Split": [separator, text]}
        return {key: self.resolve(item) for key, item in value.items()}

    def _substitute(self, arg: Any) -> Any:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        names = {**self.parameters, **variables}
        missing = [name for name in re.findall(r"\$\{([^}!]+)\}", text) if name not in names]
        if missing:
            # Leave what cannot be known locally (an attribute of an AWS resource) unresolved.
            return {"Fn::Sub": arg}
        return re.sub(r"\$\{([^}!]+)\}", lambda match: str(names[match.group(1)]), text)


def dynamodb_tables(template: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """create_table arguments (minus TableName) for every DynamoDB table the template declares.

    Tests and the local gateway create their tables from this, so they cannot drift from the template.
    """
    template = template or load_template()
    tables: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        properties = resource["Properties"]
        arguments: dict[str, Any] = {
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": properties.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
        tables[logical_id] = arguments
    return tables


def time_to_live(template: dict[str, Any] | None = None) -> dict[str, str]:
    """TTL attribute per table logical id, for tables that enable TimeToLive."""
    template = template or load_template()
    found = {}
    for logical_id, resource in template["Resources"].items():
        spec = (
            resource.get("Properties", {}).get("TimeToLiveSpecification")
            if resource["Type"] == "AWS::DynamoDB::Table"
            else None
        )
        if spec and spec.get("Enabled"):
            found[logical_id] = str(spec["AttributeName"])
    return found


def functions(template: dict[str, Any] | None = None) -> list[str]:
    template = template or load_template()
    return [name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"]


def function_setting(template: dict[str, Any], logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    properties = template["Resources"][logical_id].get("Properties", {})
    if name in properties:
        return properties[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def function_environment(template: dict[str, Any], logical_id: str, resolver: Resolver) -> dict[str, str]:
    """The environment variables the function gets (Globals merged with its own), resolved."""
    variables: dict[str, Any] = {}
    global_environment = template.get("Globals", {}).get("Function", {}).get("Environment", {})
    variables.update(global_environment.get("Variables", {}))
    own = template["Resources"][logical_id].get("Properties", {}).get("Environment", {})
    variables.update(own.get("Variables", {}))
    resolved = {name: resolver.resolve(value) for name, value in variables.items()}
    return {name: str(value) for name, value in resolved.items() if isinstance(value, str | int | float)}
