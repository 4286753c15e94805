"""Templates for new agencies: ``hub connector new NAME --soap|--rest`` (see `hub.cli.connector`)
and the WSDL renderer the packaged SOAP agencies were generated with."""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from hub.errors import ConfigurationError


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


def _existing_ports(root: Path) -> set[int]:

    ports = set()
    for spec in (root / "connectors").glob("*/agency.yaml"):
        found = re.search(r"base_url:\s*http://[^:\s]+:(\d+)", spec.read_text("utf-8"))
        if found:
            ports.add(int(found.group(1)))
    return ports


def scaffold(root: Path, name: str, *, protocol: str, title: str | None = None,
             port: int | None = None) -> list[Path]:
    """Write a new agency's connector, simulator, register, mappings, schemas and conformance
    test under the project ``root``; returns the files written. Refuses to overwrite."""


    if not re.fullmatch(r"[a-z][a-z0-9_]{1,31}", name):
        raise ConfigurationError(f"agency name {name!r}: lower-case letters, digits, _")
    if protocol not in ("soap", "rest"):
        raise ConfigurationError("protocol must be soap or rest")
    if (root / "connectors" / name).exists():
        raise ConfigurationError(f"connectors/{name} already exists")
    cls = "".join(part.capitalize() for part in name.split("_"))
    values = {"name": name, "cls": cls, "protocol": protocol,
              "title": title or f"{cls} agency",
              "port": port or max(_existing_ports(root) | {8705}) + 1,
              "namespace": f"urn:ma:gov:{name.replace('_', '-')}:v1"}
    files: dict[Path, str] = {
        root / "connectors" / name / "__init__.py": "",
        root / "connectors" / name / "agency.yaml": render("agency.yaml.j2", **values),
        root / "connectors" / name / "connector.py": render("connector.py.j2", **values),
        root / "connectors" / name / "simulator.py": render("simulator.py.j2", **values),
        root / "connectors" / name / "register.py": render("register.py.j2", **values),
        root / "mappings" / name / "check_record.request.yaml": render("request.yaml.j2",
                                                                     **values),
        root / "mappings" / name / "check_record.reply.yaml": render("reply.yaml.j2", **values),
        root / "tests" / "connectors" / f"test_conformance_{name}.py": render(
            "test_conformance.py.j2", **values),
    }
    agencies = root / "schemas" / "v1" / "agencies"
    if protocol == "soap":
        files[agencies / f"{name}.xsd"] = render("agency.xsd.j2", **values)
        files[agencies / f"{name}.wsdl"] = render_wsdl(
            agency=name, title=values["title"], service_name=f"{cls}Service",
            namespace=values["namespace"],
            operations=[{"name": "CheckRecord", "request": "CheckRecordRequest",
                         "response": "CheckRecordResponse"}],
            address=f"http://127.0.0.1:{values['port']}/{name}/soap")
    else:
        files[agencies / f"{name}.openapi.yaml"] = render("openapi.yaml.j2", **values)
    for path in files:
        if path.exists():
            raise ConfigurationError(f"{path.relative_to(root)} already exists")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    return list(files)
