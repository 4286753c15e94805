"""The broker topology, as data both adapters declare identically.

One topic exchange ``<ns>.events``. Each work queue has bindings (topic patterns), a ladder of
retry delays and a dead-letter queue::

    <ns>.agency.narsa            bound to agency.narsa     connector worker for NARSA
    <ns>.agency.narsa.retry.1000ms   TTL 1 s -> back to <ns>.agency.narsa
    <ns>.agency.narsa.retry.2000ms   TTL 2 s -> back to <ns>.agency.narsa
    ...
    <ns>.agency.narsa.dlq        parked messages, with their reason in headers
    <ns>.cases                   bound to case.#           case worker (replies, agency events)

Routing keys: ``agency.<agency>`` for requests to an agency, ``case.<service>.<kind>`` for what
the case worker applies (replies, faults, inbound agency events).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from hub.addresses import agency_routing_key


@dataclass(frozen=True)
class QueueSpec:
    """A work queue: what it is bound to, its retry ladder (seconds) and its dead-letter queue."""

    name: str
    bindings: tuple[str, ...]
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    #: A message delivered this many times without ever being settled (its consumer keeps
    #: crashing on it) is parked on the DLQ instead of looping forever: poison protection.
    delivery_limit: int = 10

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"

    def retry_queue(self, step: int) -> str:
        # Named by delay, not rung number: changing a policy declares new queues instead of
        # clashing with the arguments of existing ones (RabbitMQ refuses a redeclare that differs).
        return f"{self.name}.retry.{round(self.retry_delays[step] * 1000)}ms"

    def step_for(self, retry_number: int) -> int:
        """The ladder rung for the n-th retry (0-based); the last rung repeats."""
        return min(retry_number, len(self.retry_delays) - 1)


@dataclass(frozen=True)
class Topology:
    """Every exchange and queue a hub deployment needs, derived from its namespace and agencies."""

    namespace: str
    queues: tuple[QueueSpec, ...] = field(default_factory=tuple)

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def agency_queue(self, agency: str) -> str:
        return f"{self.namespace}.agency.{agency}"

    @property
    def cases_queue(self) -> str:
        return f"{self.namespace}.cases"

    def all_queue_names(self) -> list[str]:
        names: list[str] = []
        for spec in self.queues:
            names.append(spec.name)
            names.extend(spec.retry_queue(i) for i in range(len(spec.retry_delays)))
            names.append(spec.dead_letter_queue)
        return list(dict.fromkeys(names))  # capped ladders repeat a delay: one queue per delay

    def owner_of(self, queue: str) -> QueueSpec:
        """The work queue a retry or dead-letter queue belongs to (or the work queue itself)."""
        for spec in self.queues:
            if queue == spec.name or queue == spec.dead_letter_queue or queue.startswith(
                    spec.name + ".retry."):
                return spec
        raise KeyError(queue)

    @classmethod
    def for_hub(cls, namespace: str, agencies: dict[str, tuple[float, ...]],
                case_retry_delays: tuple[float, ...] = (0.5, 2.0, 10.0)) -> "Topology":
        """The hub's topology: one work queue per agency (with its retry ladder) and the cases queue."""
        specs = [
            QueueSpec(f"{namespace}.agency.{agency}", (agency_routing_key(agency),), tuple(delays))
            for agency, delays in sorted(agencies.items())
        ]
        specs.append(QueueSpec(f"{namespace}.cases", ("case.#",), case_retry_delays))
        return cls(namespace=namespace, queues=tuple(specs))


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` is zero or more words."""
    return _match(pattern.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _match(rest, words[1:])
