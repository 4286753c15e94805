"""``hub connector``: add an agency, and read what the agencies offer (see docs/connectors.md).

    hub connector new NAME --soap|--rest [--operation OP]   scaffold a new agency
    hub connector operations [--agency A]                    the operations' contract, as a table
"""
from __future__ import annotations

from pathlib import Path

import click

from hub.errors import ConfigurationError


def register(main: click.Group) -> None:
    main.add_command(connector)


@click.group()
def connector() -> None:
    """Agency connectors: scaffold a new one, list the operations of all."""


@connector.command("new")
@click.argument("name")
@click.option("--soap", "protocol", flag_value="soap", help="A SOAP 1.1 agency (WSDL, XSD).")
@click.option("--rest", "protocol", flag_value="rest", help="A REST/JSON agency (OpenAPI).")
@click.option("--operation", default="check_record", show_default=True,
              help="The operation's name (lower case, words joined by _), e.g."
                   " check_birth_record.")
@click.option("--title", help="The agency's name, e.g. 'Ministry of Equipment'.")
@click.option("--port", type=int, help="The simulator's default port (default: next free).")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=".",
              show_default=True, help="The project's root directory.")
def new(name: str, protocol: str | None, operation: str, title: str | None, port: int | None,
        root: Path) -> None:
    """Write everything agency NAME needs: connector, simulator and its rule, configuration with
    the operation's contract, samples, mappings, wire schemas and a conformance test."""
    from connectors.scaffold import scaffold

    if protocol is None:
        raise click.UsageError("choose --soap or --rest")
    try:
        written = scaffold(root.resolve(), name, protocol=protocol, title=title, port=port,
                           operation=operation)
    except ConfigurationError as exc:
        raise click.ClickException(exc.message) from None
    for path in written:
        click.echo(path.relative_to(root.resolve()))
    click.echo(f"next: pytest tests/connectors/test_conformance_{name}.py (it passes as"
               f" generated); keys for an existing installation: hub keys add {name};"
               " then docs/connectors.md", err=True)


@connector.command("operations")
@click.option("--agency", "only", multiple=True, help="Only this agency (repeatable).")
def operations(only: tuple[str, ...]) -> None:
    """The contract of every packaged agency's operations (docs/exchanges.md), as a Markdown
    table: the canonical payload a route step sends, the outcomes it must give a rule for, the
    answer's data fields and the simulator's rule."""
    from connectors.registry import packaged_agencies

    agencies = packaged_agencies()
    unknown = sorted(set(only) - set(agencies))
    if unknown:
        raise click.BadParameter(f"no agency {', '.join(unknown)} (known: "
                                 f"{', '.join(sorted(agencies))})", param_hint="--agency")
    click.echo("| agency | operation | canonical payload | outcomes | answer data |"
               " simulator rule |")
    click.echo("| --- | --- | --- | --- | --- | --- |")
    for name, config in agencies.items():
        if only and name not in only:
            continue
        for op, contract in config.operations.items():
            payload = ", ".join(f"`{key}` ({shape})" for key, shape in contract.payload.items())
            outcomes = ", ".join(f"`{o}`" for o in contract.outcomes)
            data = ", ".join(f"`{key}`: {meaning}" for key, meaning in contract.data.items())
            late = " (asynchronous: answered by callback)" if contract.asynchronous else ""
            click.echo(f"| {name} | `{op}`{late} | {payload} | {outcomes} | {data or '-'} |"
                       f" {contract.rule or '-'} |")
