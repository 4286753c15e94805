"""The case as staff read it: the request in the form's sections and order, each value ready to
show (choices translated, posts and countries named, documents by file name, values that read
left to right isolated), and the name a document is shown and downloaded under.

    request_sections(definition.intake_schema, case_data, translator("ar"), documents)
    # [(None, [("post", "المركز القنصلي", "مدريد (إسبانيا)")]),
    #  ("مقاولة الدفن", [("applicant.organisation", ..., Markup('<bdi>...</bdi>')), ...]), ...]
"""
from __future__ import annotations

import re
from typing import Any

from markupsafe import Markup

from hub.cases.posts import country_name
from hub.i18n.translate import Translator
from hub.web.forms import FormField, form_fields
from hub.web.labels import ltr, post

#: File name extension of each accepted type of document.
EXTENSIONS = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}


def document_file_name(reference: str, document: dict[str, Any]) -> str:
    """The name a document is shown and downloaded under: the case and what the document is
    (``DLA-2026-7K3M9QX-licence_front.pdf``). Uploaded files keep no name of their own: an
    applicant's file name may carry personal data, and the store keeps none in clear."""
    field = (document.get("field") or "document").rsplit(".", 1)[-1]
    extension = EXTENSIONS.get(document.get("content_type", ""), "bin")
    return f"{reference}-{field}.{extension}"


def request_sections(schema: str, data: dict[str, Any], t: Translator,
                     documents: list[dict[str, Any]] | None = None
                     ) -> list[tuple[str | None, list[tuple[str, str, Any]]]]:
    """The request as the applicant filled it in: the form's sections in the form's order
    (`hub.web.forms.form_fields`), each a list of (path, label, value) rows for the fields
    answered. Values are display-ready: choices translated, posts named, documents by name,
    numbers, dates, e-mails and phone numbers isolated left to right."""
    named = {d.get("field"): d for d in documents or []}
    root = form_fields(schema)
    sections: list[tuple[str | None, list[tuple[str, str, Any]]]] = []
    loose: list[tuple[str, str, Any]] = []
    for child in root.children:
        if child.kind in ("group", "list"):
            rows = _rows(child, _get(data, child.name), t, named, prefix=[])
            if rows:
                sections.append((t(child.title) if child.title else child.name, rows))
        else:
            loose.extend(_rows(child, _get(data, child.name), t, named, prefix=[]))
    return ([(None, loose)] if loose else []) + sections


_MISSING = object()


def _get(data: Any, key: str) -> Any:
    return data.get(key, _MISSING) if isinstance(data, dict) else _MISSING


def _rows(field: FormField, value: Any, t: Translator, documents: dict[str, Any], *,
          prefix: list[str], path: str | None = None) -> list[tuple[str, str, Any]]:
    if value is _MISSING or value is None or value == "" or value == [] or value == {}:
        return []
    path = path or field.path
    title = t(field.title) if field.title else field.name
    if field.kind == "group":
        rows = []
        inner = prefix if not prefix and field.path.count(".") == 0 else [*prefix, title]
        for child in field.children:
            rows.extend(_rows(child, _get(value, child.name), t, documents, prefix=inner,
                              path=f"{path}.{child.name}"))
        return rows
    if field.kind == "list" and field.item is not None and isinstance(value, list):
        rows = []
        for index, item in enumerate(value, start=1):
            label = [*prefix, f"{title} {index}"] if len(value) > 1 else [*prefix, title]
            if field.item.kind == "group":
                for child in field.item.children:
                    rows.extend(_rows(child, _get(item, child.name), t, documents,
                                      prefix=label, path=f"{path}.{index - 1}.{child.name}"))
            elif item not in (None, ""):
                rows.append((f"{path}.{index - 1}", " › ".join(label),
                             _shown(field.item, item, t, documents, f"{path}.{index - 1}")))
        return rows
    return [(path, " › ".join([*prefix, title]), _shown(field, value, t, documents, path))]


#: Kinds of value read left to right in every language.
_LTR_KINDS = frozenset({"date", "email", "phone", "integer"})


def _shown(field: FormField, value: Any, t: Translator, documents: dict[str, Any],
           path: str) -> Any:
    if field.kind == "choice":
        return t.value(str(value))
    if field.kind == "document":
        found = documents.get(path)
        return ltr(found["file_name"]) if found else t("Document")
    if field.kind == "post" or field.name == "post":
        return post(t, str(value))
    if isinstance(value, str) and (field.kind == "country" or field.name == "country"
                                   and re.fullmatch(r"[A-Z]{2}", value)):
        return country_name(value, t.language) or value
    if field.kind in _LTR_KINDS or field.examples or field.kind == "text" and \
            isinstance(value, str) and not any(c.isalpha() for c in value):
        return ltr(value)
    return Markup("<bdi>{}</bdi>").format(value)
