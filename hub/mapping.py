"""The mapping engine: declarative transforms between canonical payloads and agency formats.

A mapping file (YAML, in ``mappings/<agency>/``) lists the fields of the target document, each
with where its value comes from and how it is converted. Connectors hold no mapping logic: they
load a `Mapping` once and call `Mapping.apply`.

    name: narsa.verify_licence.request
    fields:
      - to: licenceNumber                   # dotted path in the target
        from: licence.number                # dotted path in the source
      - to: holder.cnie
        from: holder.cnie
        transform: upper                    # upper | lower | strip | str | int | digits
      - to: holder.birthDate
        from: holder.birth_date
        date: {from: "%Y-%m-%d", to: "%d/%m/%Y"}
      - to: channel
        const: ECONSULAT                    # a constant
      - to: requestId
        from: $context.message_id           # a value from the call's context
      - to: status
        from: licence.status
        enum: {VALID: valid, SUSPENDED: suspended}   # unknown values are an error
        default: unknown                   # used when the source is absent
      - to: categories
        from: licence.categories
        each:                               # a list: map every item with these fields
          - {to: code, from: code}
      - to: spouseName
        from: spouse.name
        when: {path: civil_status, equals: married}  # conditional field
        optional: true                      # absent source leaves the field out

A list of scalars is converted item by item (``transform``, ``date``, ``enum``).

Rules: a source path that is absent is an error unless ``optional`` or ``default`` is given;
``when`` accepts ``equals``, ``in``, ``present`` (true/false). Every problem raises
`SchemaViolation` with the mapping name and field, because a payload that cannot be mapped will not
map better on a retry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping as TMapping

import yaml

from hub.errors import ConfigurationError, SchemaViolation

#: Marks an absent value (None is a value).
MISSING = object()

_TRANSFORMS: dict[str, Callable[[Any], Any]] = {
    "upper": lambda v: str(v).upper(),
    "lower": lambda v: str(v).lower(),
    "strip": lambda v: str(v).strip(),
    "str": str,
    "int": int,
    "bool": lambda v: v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes"),
    "digits": lambda v: re.sub(r"\D", "", str(v)),
}

_FIELD_KEYS = {"to", "from", "const", "transform", "date", "enum", "default", "each", "when",
               "optional"}


def get_path(document: Any, path: str) -> Any:
    """Value at a dotted path (list indexes allowed: ``categories.0.code``), or `MISSING`."""
    current = document
    for part in path.split("."):
        if isinstance(current, TMapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
    return current


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    current = document
    for part in parts[:-1]:
        current = current.setdefault(part, {})
        if not isinstance(current, dict):
            raise ConfigurationError(f"target path {path!r} crosses a non-object value")
    current[parts[-1]] = value


@dataclass(frozen=True)
class FieldRule:
    to: str
    source: str | None = None
    const: Any = MISSING
    transform: str | None = None
    date: tuple[str, str] | None = None
    enum: dict[str, Any] | None = None
    default: Any = MISSING
    each: tuple["FieldRule", ...] | None = None
    when: dict[str, Any] | None = None
    optional: bool = False

    @classmethod
    def parse(cls, spec: TMapping[str, Any], where: str) -> "FieldRule":
        unknown = set(spec) - _FIELD_KEYS
        if unknown:
            raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
        if "to" not in spec:
            raise ConfigurationError(f"{where}: every field needs 'to'")
        if ("from" in spec) == ("const" in spec):
            raise ConfigurationError(f"{where}: field {spec['to']!r} needs exactly one of from/const")
        transform = spec.get("transform")
        if transform is not None and transform not in _TRANSFORMS:
            raise ConfigurationError(f"{where}: unknown transform {transform!r}")
        date = spec.get("date")
        if date is not None and not (isinstance(date, dict) and set(date) == {"from", "to"}):
            raise ConfigurationError(f"{where}: date needs 'from' and 'to' formats")
        each = spec.get("each")
        return cls(
            to=spec["to"], source=spec.get("from"), const=spec.get("const", MISSING),
            transform=transform, date=(date["from"], date["to"]) if date else None,
            enum={str(k): v for k, v in spec["enum"].items()} if "enum" in spec else None,
            default=spec.get("default", MISSING),
            each=tuple(cls.parse(s, f"{where}.{spec['to']}") for s in each) if each else None,
            when=dict(spec["when"]) if "when" in spec else None,
            optional=bool(spec.get("optional", False)),
        )


class Mapping:
    """A loaded mapping; `apply` is pure and may be called from many threads."""

    def __init__(self, name: str, rules: tuple[FieldRule, ...]) -> None:
        self.name = name
        self.rules = rules

    @classmethod
    def from_dict(cls, spec: TMapping[str, Any], where: str = "mapping") -> "Mapping":
        if not isinstance(spec, TMapping) or "fields" not in spec:
            raise ConfigurationError(f"{where}: a mapping needs 'name' and 'fields'")
        name = str(spec.get("name", where))
        return cls(name, tuple(FieldRule.parse(f, f"{name}[{i}]")
                               for i, f in enumerate(spec["fields"])))

    @classmethod
    def load(cls, path: str | Path) -> "Mapping":
        path = Path(path)
        try:
            spec = yaml.safe_load(path.read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot load mapping {path}: {exc}") from None
        return cls.from_dict(spec, str(path))

    @classmethod
    def packaged(cls, agency: str, name: str) -> "Mapping":
        """A mapping shipped in ``mappings/<agency>/<name>.yaml``."""
        resource = resources.files("mappings") / agency / f"{name}.yaml"
        if not resource.is_file():
            raise ConfigurationError(f"no mapping mappings/{agency}/{name}.yaml")
        return cls.from_dict(yaml.safe_load(resource.read_text("utf-8")), f"{agency}/{name}")

    def apply(self, source: TMapping[str, Any], context: TMapping[str, Any] | None = None
              ) -> dict[str, Any]:
        return _apply(self.name, self.rules, source, context or {})


def _apply(name: str, rules: tuple[FieldRule, ...], source: TMapping[str, Any],
           context: TMapping[str, Any]) -> dict[str, Any]:
    target: dict[str, Any] = {}
    for rule in rules:
        if rule.when is not None and not _condition(rule.when, source):
            continue
        value = _value(name, rule, source, context)
        if value is MISSING:
            continue
        set_path(target, rule.to, value)
    return target


def _value(name: str, rule: FieldRule, source: TMapping[str, Any],
           context: TMapping[str, Any]) -> Any:
    if rule.const is not MISSING:
        return rule.const
    assert rule.source is not None
    if rule.source.startswith("$context."):
        value = get_path(context, rule.source[len("$context."):])
    else:
        value = get_path(source, rule.source)
    if value is MISSING or value is None:
        if rule.default is not MISSING:
            return rule.default
        if rule.optional:
            return MISSING
        raise _error(name, rule, "missing", f"required value {rule.source!r} is absent")
    if rule.each is not None:
        if not isinstance(value, list):
            raise _error(name, rule, "type", f"{rule.source!r} must be a list")
        return [_apply(name, rule.each, item if isinstance(item, TMapping) else {"value": item},
                       context) for item in value]
    if isinstance(value, list) and (rule.transform or rule.date or rule.enum):
        # A list of scalars: convert every item (e.g. enumerated document names).
        return [_convert(name, rule, item) for item in value]
    return _convert(name, rule, value)


def _convert(name: str, rule: FieldRule, value: Any) -> Any:
    try:
        if rule.transform is not None:
            value = _TRANSFORMS[rule.transform](value)
        if rule.date is not None:
            value = datetime.strptime(str(value), rule.date[0]).strftime(rule.date[1])
    except (TypeError, ValueError) as exc:
        raise _error(name, rule, "format", f"cannot convert {rule.source!r}: {exc}") from None
    if rule.enum is not None:
        key = str(value)
        if key not in rule.enum:
            raise _error(name, rule, "enum",
                         f"{rule.source!r} has value {key!r}, expected one of {sorted(rule.enum)}")
        value = rule.enum[key]
    return value


def _condition(when: TMapping[str, Any], source: TMapping[str, Any]) -> bool:
    value = get_path(source, str(when.get("path", "")))
    if "equals" in when:
        return value is not MISSING and value == when["equals"]
    if "in" in when:
        return value is not MISSING and value in when["in"]
    if "present" in when:
        return (value is not MISSING and value is not None) == bool(when["present"])
    raise ConfigurationError(f"condition {dict(when)!r} needs equals, in or present")


def _error(name: str, rule: FieldRule, code: str, message: str) -> SchemaViolation:
    return SchemaViolation(f"mapping {name}: {message}", mapping=name,
                           errors=[{"field": rule.source or rule.to, "code": code,
                                    "message": message}])
