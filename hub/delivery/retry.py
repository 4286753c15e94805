"""Retry policy: exponential backoff with jitter, capped, configured per agency.

    >>> policy = RetryPolicy(base_delay=1.0, max_delay=30.0, max_attempts=5)
    >>> policy.ladder
    (1.0, 2.0, 4.0, 8.0)

``max_attempts`` counts deliveries to the agency, the first one included: with 5 attempts there
are 4 retries, one per rung of the ladder. The broker topology declares one delay queue per rung;
`delay` draws the actual wait from ``[rung * (1 - jitter), rung]`` so many messages failing
together (an agency outage) do not come back together. The draw never exceeds the rung, which the
RabbitMQ delay queue's TTL enforces anyway.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from hub.errors import ConfigurationError


@dataclass(frozen=True)
class RetryPolicy:
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_attempts: int = 6
    jitter: float = 0.5
    _random: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ConfigurationError("retry delays must satisfy 0 < base_delay <= max_delay")
        if self.max_attempts < 1:
            raise ConfigurationError("retry max_attempts must be at least 1")
        if not 0.0 <= self.jitter < 1.0:
            raise ConfigurationError("retry jitter must be in [0, 1)")

    @property
    def ladder(self) -> tuple[float, ...]:
        """Delay of each rung, one per retry; empty when nothing is retried."""
        return tuple(min(self.max_delay, self.base_delay * 2 ** n)
                     for n in range(self.max_attempts - 1))

    def exhausted(self, attempt: int) -> bool:
        """True when the delivery numbered ``attempt`` (0-based) was the last one allowed."""
        return attempt + 1 >= self.max_attempts

    def delay(self, attempt: int) -> float:
        """Seconds to wait before the next delivery after failed delivery ``attempt``."""
        rung = self.ladder[min(attempt, len(self.ladder) - 1)]
        return rung * (1.0 - self.jitter * self._random.random())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> "RetryPolicy":
        data = dict(data or {})
        unknown = set(data) - {"base_delay", "max_delay", "max_attempts", "jitter"}
        if unknown:
            raise ConfigurationError(f"unknown retry settings: {sorted(unknown)}")
        return cls(**{k: (int(v) if k == "max_attempts" else float(v)) for k, v in data.items()})
