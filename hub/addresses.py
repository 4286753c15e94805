"""Where a message goes on the bus: its routing key, named by who or what receives it.

The use cases address their messages with these keys and write them to the outbox; the broker
topology (`hub.delivery.broker.topology`) binds its queues to the same keys. Neither needs the
other: both depend on this module only::

    agency_routing_key("narsa")                  'agency.narsa'      a request to an agency
    case_routing_key("repatriation", "reply")    'case.repatriation.reply'
"""
from __future__ import annotations


def agency_routing_key(agency: str) -> str:
    """Requests to ``agency``: its connector workers consume them."""
    return f"agency.{agency}"


def case_routing_key(service: str, kind: str) -> str:
    """What is applied to a case of ``service`` (``kind``: reply, fault, event)."""
    return f"case.{service}.{kind}"
