"""Templates for new agencies: ``hub connector new NAME --soap|--rest`` (see `hub.cli.connector`)
and the WSDL renderer the packaged SOAP agencies were generated with."""
from __future__ import annotations

from importlib import resources
from typing import Any

import jinja2


def environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: (resources.files("connectors.scaffold") / "templates" / name
                      ).read_text("utf-8"))
    return jinja2.Environment(loader=loader, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, autoescape=False)


def render(template: str, **values: Any) -> str:
    return environment().get_template(template).render(**values)


def render_wsdl(*, agency: str, title: str, service_name: str, namespace: str,
                operations: list[dict[str, str]], address: str,
                xsd_location: str | None = None,
                xroad_location: str = "../xroad/xroad.xsd") -> str:
    """A SOAP 1.1 WSDL with X-Road headers; ``operations``: ``[{name, request, response}]``."""
    return render("agency.wsdl.j2", agency=agency, title=title, service_name=service_name,
                  namespace=namespace, operations=operations, address=address,
                  xsd_location=xsd_location or f"{agency}.xsd", xroad_location=xroad_location)
