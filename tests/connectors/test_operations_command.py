"""``hub connector operations``: the agencies' contracts (``operations:`` of each agency.yaml) as
one Markdown table, the overview docs/exchanges.md points to."""
from __future__ import annotations

from click.testing import CliRunner

from connectors.registry import packaged_agencies
from hub.cli import main


def test_one_row_per_operation_of_every_packaged_agency():
    result = CliRunner().invoke(main, ["connector", "operations"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| ")][2:]
    expected = {(name, op) for name, config in packaged_agencies().items()
                for op in config.operations}
    assert {(r.split(" | ")[0][2:], r.split(" | ")[1].split("`")[1]) for r in rows} == expected
    assert any("`sanitary_clearance` (asynchronous" in r for r in rows)
    narsa = CliRunner().invoke(main, ["connector", "operations", "--agency", "narsa"])
    assert [line for line in narsa.output.splitlines() if line.startswith("| narsa")] and \
        "| dgsn" not in narsa.output


def test_an_unknown_agency_is_named():
    result = CliRunner().invoke(main, ["connector", "operations", "--agency", "atlantis"])
    assert result.exit_code != 0 and "no agency atlantis" in result.output
