"""``hub connector new NAME --soap|--rest``: scaffold a new agency (see docs/connectors.md)."""
from __future__ import annotations

from pathlib import Path

import click


def register(main: click.Group) -> None:
    main.add_command(connector)


@click.group()
def connector() -> None:
    """Agency connectors: scaffold a new one."""


@connector.command("new")
@click.argument("name")
@click.option("--soap", "protocol", flag_value="soap", help="A SOAP 1.1 agency (WSDL, XSD).")
@click.option("--rest", "protocol", flag_value="rest", help="A REST/JSON agency (OpenAPI).")
@click.option("--title", help="The agency's name, e.g. 'Ministry of Equipment'.")
@click.option("--port", type=int, help="The simulator's default port (default: next free).")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=".",
              show_default=True, help="The project's root directory.")
def new(name: str, protocol: str | None, title: str | None, port: int | None,
        root: Path) -> None:
    """Write connector, simulator, mappings, schemas and a conformance test for NAME."""
    from connectors.scaffold import scaffold
    from hub.errors import ConfigurationError

    if protocol is None:
        raise click.UsageError("choose --soap or --rest")
    try:
        written = scaffold(root.resolve(), name, protocol=protocol, title=title, port=port)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    for path in written:
        click.echo(path.relative_to(root.resolve()))
    click.echo(f"next: pytest tests/connectors/test_conformance_{name}.py, then docs/connectors.md",
               err=True)
