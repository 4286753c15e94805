"""Reads the operation tables of ``docs/exchanges.md`` (the hub's local operations; the agencies'
contracts are data, in each ``connectors/<agency>/agency.yaml``)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "exchanges.md"
_TICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Operation:
    agency: str
    operation: str
    payload: frozenset[str]
    outcomes: frozenset[str]


def _payload_names(cell: str) -> frozenset[str]:
    # Top-level names only: what is in parentheses describes a field's parts, and what follows
    # "with" describes values.
    cell = re.sub(r"\([^()]*\)", "", cell).split(" with ")[0]
    return frozenset(re.split(r"[ {]", group.strip())[0] for group in _TICKED.findall(cell))


def operations(section: str) -> dict[tuple[str, str], Operation]:
    """The rows of the table under the ``## <section>`` heading."""
    text = DOC.read_text("utf-8")
    start = text.index(f"## {section}\n")
    end = text.find("\n## ", start + 1)
    found: dict[tuple[str, str], Operation] = {}
    for line in text[start:end if end > 0 else None].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not _TICKED.search(cells[1]):
            continue
        agency, operation = cells[0], _TICKED.findall(cells[1])[0]
        found[(agency, operation)] = Operation(
            agency, operation, _payload_names(cells[2]), frozenset(_TICKED.findall(cells[3])))
    return found
