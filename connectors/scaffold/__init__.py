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


#: What ``hub connector new`` writes when no ``--operation`` is given.
DEFAULT_OPERATION = "check_record"
_NAME = re.compile(r"[a-z][a-z0-9_]{1,31}")
_OPERATION = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def operation_names(operation: str) -> dict[str, str]:
    """Every spelling of an operation the generated files use: ``check_birth_record`` is
    ``CheckBirthRecord`` (SOAP operation, XSD elements, OpenAPI components), ``checkBirthRecord``
    (X-Road service code, operationId) and ``/api/v1/check-birth-record`` (REST path)."""
    if not _OPERATION.fullmatch(operation) or len(operation) > 64:
        raise ConfigurationError(f"operation name {operation!r}: lower-case words joined by _,"
                                 " e.g. check_birth_record")
    parts = operation.split("_")
    pascal = "".join(part.capitalize() for part in parts)
    return {"op": operation, "op_pascal": pascal, "op_camel": pascal[0].lower() + pascal[1:],
            "op_path": "/api/v1/" + "-".join(parts)}


def scaffold(root: Path, name: str, *, protocol: str, title: str | None = None,
             port: int | None = None, operation: str = DEFAULT_OPERATION) -> list[Path]:
    """Write a new agency under the project ``root``: its package (connector, simulator, rule,
    configuration with the operation's contract, samples), mappings, wire schemas and
    conformance test, with one working ``operation``; returns the files written. Refuses to
    overwrite anything, and writes nothing unless every name is valid."""
    if not _NAME.fullmatch(name):
        raise ConfigurationError(f"agency name {name!r}: lower-case letters, digits, _")
    if protocol not in ("soap", "rest"):
        raise ConfigurationError("protocol must be soap or rest")
    if (root / "connectors" / name).exists():
        raise ConfigurationError(f"connectors/{name} already exists")
    cls = "".join(part.capitalize() for part in name.split("_"))
    names = operation_names(operation)
    values = {"name": name, "cls": cls, "protocol": protocol,
              "title": title or f"{cls} agency",
              "port": port or max(_existing_ports(root) | {8705}) + 1,
              "namespace": f"urn:ma:gov:{name.replace('_', '-')}:v1", **names}
    package = root / "connectors" / name
    files: dict[Path, str] = {
        package / "__init__.py": "",
        package / "agency.yaml": render("agency.yaml.j2", **values),
        package / "connector.py": render("connector.py.j2", **values),
        package / "simulator.py": render("simulator.py.j2", **values),
        package / "register.py": render("register.py.j2", **values),
        package / "samples.yaml": render("samples.yaml.j2", **values),
        root / "mappings" / name / f"{operation}.request.yaml": render("request.yaml.j2",
                                                                       **values),
        root / "mappings" / name / f"{operation}.reply.yaml": render("reply.yaml.j2", **values),
        root / "tests" / "connectors" / f"test_conformance_{name}.py": render(
            "test_conformance.py.j2", **values),
    }
    agencies = root / "schemas" / "v1" / "agencies"
    if protocol == "soap":
        files[agencies / f"{name}.xsd"] = render("agency.xsd.j2", **values)
        files[agencies / f"{name}.wsdl"] = render_wsdl(
            agency=name, title=values["title"], service_name=f"{cls}Service",
            namespace=values["namespace"],
            operations=[{"name": names["op_pascal"], "request": f"{names['op_pascal']}Request",
                         "response": f"{names['op_pascal']}Response"}],
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
