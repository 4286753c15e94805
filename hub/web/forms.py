"""Intake schemas read as forms: fields, labels, kinds; and error messages that name the field.

The intake schema of a service is the one source of truth for its form: the pages render it
(`form_fields`), the API validates with it, and error messages take their field names from its
``title`` keywords, translated (`localize_errors`)::

    fields = form_fields(definition.intake_schema)        # a tree of `FormField`
    localize_errors(errors, definition.intake_schema, translator("es"))
    # [{"field": "person.cnie", "code": "pattern", "label": "Persona › Número de CNIE",
    #   "message": "Persona › Número de CNIE: el formato no es válido (ejemplo: AB123456)."}]

`bundle` returns a schema with its references to shared definitions copied in, for clients that
cannot resolve ``urn:`` references.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator

from hub.i18n.translate import Translator
from hub.schemas import load_document, schema_registry

COMMON_ID = "urn:econsulat:schema:services:common:1"


@dataclass(frozen=True)
class FormField:
    """One field of a form: a group (object) with children, or a value."""

    path: str
    name: str
    title: str | None
    description: str | None
    #: group | text | long_text | date | email | phone | integer | choice | document | list
    #: | country | post
    kind: str
    #: Required within its parent: the field of an optional group is only required when the
    #: group applies (see `required_marks`).
    required: bool
    choices: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    constant: Any = None
    minimum: int | None = None
    maximum: int | None = None
    children: tuple["FormField", ...] = field(default=())
    item: "FormField | None" = None
    #: A list's bounds (``minItems``, ``maxItems``).
    min_items: int = 0
    max_items: int | None = None
    #: The description belongs to the field itself, not to the shared definition it uses
    #: (those describe the data for developers, e.g. an attachment's reference).
    own_description: bool = True

    def walk(self) -> Iterator["FormField"]:
        yield self
        for child in self.children:
            yield from child.walk()


def _resolve(node: dict[str, Any], base: str) -> tuple[dict[str, Any], str, str | None]:
    """The node with its ``$ref`` chain merged in (the referring node's keywords win), the base
    id to resolve further references against, and the name of the last shared definition."""
    seen_ref = None
    merged = dict(node)
    while "$ref" in merged:
        ref = merged.pop("$ref")
        target_base, _, pointer = (base + ref if ref.startswith("#") else ref).partition("#")
        resolved = schema_registry().resolver().lookup(f"{target_base}#{pointer}")
        if pointer.startswith("/$defs/"):
            seen_ref = pointer.rsplit("/", 1)[-1]
        merged = {**resolved.contents, **merged}
        base = target_base
    return merged, base, seen_ref


def _kind(node: dict[str, Any], ref_name: str | None) -> str:
    if ref_name == "attachment":
        return "document"
    if ref_name == "country":
        return "country"
    if ref_name == "post":
        return "post"
    if ref_name in ("phone", "phone_ma"):
        return "phone"
    if ref_name == "long_text":
        return "long_text"
    if "enum" in node:
        return "choice"
    if node.get("format") == "date":
        return "date"
    if node.get("format") == "email":
        return "email"
    kind = node.get("type")
    if kind == "object":
        return "group"
    if kind == "array":
        return "list"
    if kind == "integer":
        return "integer"
    return "text"


def _field(node: dict[str, Any], base: str, path: str, name: str, required: bool) -> FormField:
    own_description = "description" in node or "$ref" not in node
    node, base, ref_name = _resolve(node, base)
    kind = _kind(node, ref_name)
    children: tuple[FormField, ...] = ()
    item = None
    if kind == "group":
        needed = set(node.get("required", ()))
        children = tuple(
            _field(child, base, f"{path}.{key}" if path else key, key, key in needed)
            for key, child in node.get("properties", {}).items())
    elif kind == "list":
        item = _field(node.get("items", {}), base, f"{path}.0", "0", True)
    return FormField(
        path=path, name=name, title=node.get("title"), description=node.get("description"),
        kind=kind, required=required, choices=tuple(node.get("enum", ())),
        examples=tuple(str(e) for e in node.get("examples", ())), constant=node.get("const"),
        minimum=node.get("minimum"), maximum=node.get("maximum"), children=children, item=item,
        min_items=int(node.get("minItems", 0)), max_items=node.get("maxItems"),
        own_description=own_description)


@lru_cache(maxsize=64)
def form_fields(schema: str) -> FormField:
    """The form of an intake schema (``v1/services/<name>.json``), as a tree of fields."""
    document = load_document(schema)
    return _field(document, document.get("$id", ""), "", "", True)


def find_field(schema: str, path: str) -> list[FormField]:
    """The fields from the root's child down to ``path`` (list indexes matched loosely)."""
    chain: list[FormField] = []
    current = form_fields(schema)
    for part in path.split("."):
        if current.kind == "list" and current.item is not None and part.isdigit():
            current = current.item
            continue
        nxt = next((c for c in current.children if c.name == part), None)
        if nxt is None:
            break
        chain.append(nxt)
        current = nxt
    return chain


def required_marks(form: FormField, values: dict[str, str]) -> set[str]:
    """Paths of the fields to mark as required on the page: required in their group, and every
    group above them applies. A required group always applies; an optional one (another identity
    document, a close relative) applies once the applicant filled in one of its fields, so its
    fields are not shown as required to someone it does not concern. List entries are named by
    their first position (``licence.categories.0.code``)."""
    return _marks(form, values)[0]


def applying_groups(form: FormField, values: dict[str, str]) -> set[str]:
    """Paths of the groups and lists that apply as the form stands (see `required_marks`)."""
    return _marks(form, values)[1]


def _marks(form: FormField, values: dict[str, str]) -> tuple[set[str], set[str]]:
    marked: set[str] = set()
    applying: set[str] = set()

    def filled(path: str) -> bool:
        prefix = path + "."
        return any(key == path or key.startswith(prefix)
                   or _first_entry(key).startswith(prefix) for key in values)

    def visit(node: FormField, applies: bool) -> None:
        for child in node.children:
            if child.kind in ("group", "list"):
                inner = applies and (child.required if child.kind == "group"
                                     else child.min_items > 0) or filled(child.path)
                if inner:
                    applying.add(child.path)
                if child.kind == "list" and child.item is not None:
                    if child.item.kind == "group":
                        visit(child.item, inner)
                    elif inner:
                        marked.add(child.item.path)
                elif child.kind == "group":
                    visit(child, inner)
            elif applies and child.required:
                marked.add(child.path)

    visit(form, True)
    return marked, applying


def _first_entry(path: str) -> str:
    """``licence.categories.3.code`` -> ``licence.categories.0.code``."""
    return ".".join("0" if part.isdigit() else part for part in path.split("."))


def field_label(schema: str, path: str, t: Translator) -> str:
    """The translated label of a field, with its group: ``"The deceased › Date of death"``."""
    chain = find_field(schema, path)
    titles = [t(f.title) for f in chain[-2:] if f.title]
    return " › ".join(titles) if titles else path


#: The message of each field-error code, in English (the message id the catalogs translate).
ERROR_MESSAGES = {
    "required": "{field}: this field is required.",
    "required_one_of": "Fill in at least one of these fields: {fields}.",
    "unexpected": "{field}: this field is not part of the form.",
    "type": "{field}: the value is of the wrong kind.",
    "const": "{field}: this value cannot be changed.",
    "enum": "{field}: choose one of the proposed values.",
    "format": "{field}: the value is not in the expected format.",
    "pattern": "{field}: the value is not in the expected format.",
    "invalid_example": "{field}: the value is not in the expected format (example: {example}).",
    "minLength": "{field}: the value is too short.",
    "maxLength": "{field}: the value is too long.",
    "minimum": "{field}: the number is too small.",
    "maximum": "{field}: the number is too large.",
    "minItems": "{field}: add at least one entry.",
    "maxItems": "{field}: there are too many entries.",
    "minProperties": "{field}: fill in at least one field.",
    "document_unknown": "{field}: this document was not found; please upload it again.",
    "document_type": "{field}: the document must be a PDF, JPEG or PNG file.",
    "document_too_large": "{field}: the document is too large.",
    "unknown_post": "{field}: no consular post has this code.",
    "invalid": "{field}: the value is not valid.",
}


def localize_errors(errors: list[dict[str, Any]], schema: str | None, t: Translator
                    ) -> list[dict[str, Any]]:
    """Each error with a translated ``message`` naming the field, and its ``label``."""
    out = []
    for error in errors:
        label = field_label(schema, error["field"], t) if schema else error["field"]
        chain = find_field(schema, error["field"]) if schema else []
        example = chain[-1].examples[0] if chain and chain[-1].examples else None
        code = error["code"]
        if code == "required_one_of":
            labels = [field_label(schema, o, t) if schema else o
                      for o in error.get("options", [error["field"]])]
            message = t.pgettext("error", ERROR_MESSAGES[code], fields=", ".join(labels))
        elif code in ("pattern", "format") and example:
            message = t.pgettext("error", ERROR_MESSAGES["invalid_example"], field=label,
                                 example=example)
        else:
            message = t.pgettext("error", ERROR_MESSAGES.get(code, ERROR_MESSAGES["invalid"]),
                                 field=label)
        out.append({"field": error["field"], "code": code, "label": label,
                    "message": message})
    return out


def bundle(schema: str) -> dict[str, Any]:
    """The schema with the shared definitions it uses copied under ``$defs``."""
    document = copy.deepcopy(load_document(schema))
    common = load_document("v1/services/common.json")["$defs"]
    prefix = f"{COMMON_ID}#/$defs/"

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (f"#/$defs/{v[len(prefix):]}" if k == "$ref" and isinstance(v, str)
                        and v.startswith(prefix) else rewrite(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    document = rewrite(document)
    document["$defs"] = {**copy.deepcopy(common), **document.get("$defs", {})}
    return document
