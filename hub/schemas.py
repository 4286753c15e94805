"""JSON Schema validation for intake forms, canonical payloads and REST agency messages.

Schemas live in the ``schemas`` package (``schemas/v1/...``), are loaded once and their
validators cached. A failure raises `SchemaViolation` whose ``errors`` list names each field:

    [{"field": "holder.cnie", "code": "pattern", "message": "..."}]

``code`` is the JSON Schema keyword that failed (required, pattern, format, enum, type, ...), which
the intake API translates into the applicant's language.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from hub.errors import ConfigurationError, SchemaViolation

_FORMATS = FormatChecker()


def read_resource(relative: str) -> str:
    """Text of a file of the ``schemas`` package, e.g. ``v1/agencies/narsa.openapi.yaml``."""
    resource = resources.files("schemas").joinpath(*relative.split("/"))
    if not resource.is_file():
        raise ConfigurationError(f"no schema file schemas/{relative}")
    return resource.read_text("utf-8")


@lru_cache(maxsize=256)
def load_document(relative: str) -> Any:
    text = read_resource(relative)
    return yaml.safe_load(text) if relative.endswith((".yaml", ".yml")) else json.loads(text)


@lru_cache(maxsize=256)
def json_schema_validator(relative: str) -> Draft202012Validator:
    """Validator for a JSON Schema file of the ``schemas`` package.

    ``$ref`` to another schema of the package resolves by its ``$id`` (e.g. the shared
    definitions ``urn:econsulat:schema:services:common:1``), never over the network.
    """
    schema = load_document(relative)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=_FORMATS, registry=schema_registry())


@lru_cache(maxsize=1)
def schema_ids() -> dict[str, str]:
    """``$id`` -> relative path of every JSON Schema file in the ``schemas`` package."""
    found: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        for entry in node.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".json"):
                try:
                    document = json.loads(entry.read_text("utf-8"))
                except ValueError as exc:
                    raise ConfigurationError(f"schemas/{prefix}{entry.name}: {exc}") from None
                if isinstance(document, dict) and isinstance(document.get("$id"), str):
                    found[document["$id"]] = f"{prefix}{entry.name}"

    walk(resources.files("schemas"), "")
    return found


def _retrieve(uri: str) -> Resource:
    from referencing.exceptions import NoSuchResource

    relative = schema_ids().get(uri)
    if relative is None:
        raise NoSuchResource(ref=uri)
    return Resource.from_contents(load_document(relative), default_specification=_DRAFT)


@lru_cache(maxsize=1)
def schema_registry() -> Registry:
    """A registry resolving the package's schemas by ``$id`` (and nothing else).

    Every schema of the package is in it from the start, crawled: a registry is immutable, so
    one that only *retrieves* on demand loads and crawls a ``$ref``'d schema again at every
    validation (most of an intake's validation time, measured). ``retrieve`` stays for any
    ``$id`` added later."""
    resources_ = [(uri, _retrieve(uri)) for uri in schema_ids()]
    return Registry(retrieve=_retrieve).with_resources(resources_).crawl()  # type: ignore[call-arg]


@lru_cache(maxsize=256)
def openapi_validator(relative: str, component: str) -> Draft202012Validator:
    """Validator for ``#/components/schemas/<component>`` of an OpenAPI 3.1 document."""
    document = load_document(relative)
    if component not in document.get("components", {}).get("schemas", {}):
        raise ConfigurationError(f"{relative} has no components.schemas.{component}")
    # Validate through a $ref into the whole document so the component's own $refs resolve.
    registry: Registry = Registry().with_resource(
        "urn:openapi", Resource.from_contents(document, default_specification=_DRAFT))
    wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema",
               "$ref": f"urn:openapi#/components/schemas/{component}"}
    return Draft202012Validator(wrapped, registry=registry, format_checker=_FORMATS)


def _draft() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


_DRAFT = _draft()


def field_errors(validator: Draft202012Validator, instance: Any) -> list[dict[str, Any]]:
    """Every error of ``instance``, one per field, sorted by field name."""
    found: list[dict[str, Any]] = []
    for error in validator.iter_errors(instance):
        found.extend(_describe(error))
    # One error per field, the most telling one: a malformed date is a "format" error even if a
    # pattern also fails, and a missing field needs nothing else said about it.
    best: dict[str, dict[str, Any]] = {}
    for e in found:
        current = best.get(e["field"])
        if current is None or _rank(e["code"]) < _rank(current["code"]):
            best[e["field"]] = e
    return sorted(best.values(), key=lambda e: (e["field"], e["code"]))


_PRIORITY = ("required", "unexpected", "type", "const", "enum", "format", "pattern",
             "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems")


def _rank(code: str) -> int:
    return _PRIORITY.index(code) if code in _PRIORITY else len(_PRIORITY)


def _describe(error: ValidationError) -> list[dict[str, Any]]:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [name for name in error.validator_value if name not in error.instance]
        return [{"field": f"{path}.{name}" if path else name, "code": "required",
                 "message": f"{name} is required"} for name in missing]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        return [{"field": f"{path}.{name}" if path else name, "code": "unexpected",
                 "message": f"{name} is not an expected field"} for name in extra]
    if error.validator == "anyOf" and error.context and all(
            e.validator == "required" and list(e.absolute_path) == list(error.absolute_path)
            for e in error.context):
        # "A CNIE or a passport number": name the alternatives instead of one of them.
        options = [f"{path}.{name}" if path else name
                   for e in error.context for name in e.validator_value]
        return [{"field": options[0], "code": "required_one_of", "options": options,
                 "message": f"one of {', '.join(options)} is required"}]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the branch that got furthest: the most specific explanation.
        best = max(error.context, key=lambda e: len(e.absolute_path))
        return _describe(best)
    return [{"field": path or "(root)", "code": str(error.validator),
             "message": error.message if len(error.message) < 300 else error.message[:297] + "..."}]


def validate(validator: Draft202012Validator, instance: Any, *, what: str) -> None:
    """Raise `SchemaViolation` listing every field error of ``instance``."""
    errors = field_errors(validator, instance)
    if errors:
        summary = "; ".join(f"{e['field']}: {e['code']}" for e in errors[:5])
        raise SchemaViolation(f"{what} fails its schema ({summary})", errors=errors)
