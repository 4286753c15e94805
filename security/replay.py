"""Refuse a signed message that is stale, from the future, or already seen.

A valid signature proves who wrote a message, not that it is new: a recorded SOAP request or JWS
replayed an hour later verifies just as well. `ReplayGuard.check` closes that gap with the two
things every signed message carries under its signature: a timestamp (``wsu:Created``, JWS
``iat``, envelope ``created_at``) and a message id (X-Road ``id``, JWS ``jti``, envelope ``id``)::

    guard = ReplayGuard(seen=InMemorySeenIds(), window_seconds=300, skew_seconds=60)
    guard.check("narsa", verified.message_id, verified.issued_at)   # or raises ReplayDetected

Order matters: the timestamp is checked first, so a stale message is refused without touching
the store, and an id only has to be remembered for ``window + skew`` (`ReplayGuard.retention`):
anything older is refused on its timestamp alone. The store is injected (`SeenIds`):
`InMemorySeenIds` here for tests and a single process; the hub's database implementation must
make ``add_if_new`` atomic (an INSERT on a unique ``(party, message_id)`` key) so two workers
cannot both accept the same message.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol, runtime_checkable

from hub.errors import ConfigurationError, MalformedEnvelope, ReplayDetected

Clock = Callable[[], datetime]

#: Message ids are opaque but bounded: they end up in a database key.
MAX_ID_LENGTH = 128


@runtime_checkable
class SeenIds(Protocol):
    """Remembers message ids per party."""

    def add_if_new(self, party: str, message_id: str) -> bool:
        """Record ``(party, message_id)``; return False if it was already recorded. Atomic."""
        ...


class InMemorySeenIds:
    """A `SeenIds` in a dict, bounded: the oldest entries go first beyond ``max_entries``.

    An evicted id could be replayed while still inside the window, so size ``max_entries`` above
    the number of messages a process receives in `ReplayGuard.retention`. Per process only: use the
    database store whenever more than one worker consumes the same messages.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    def add_if_new(self, party: str, message_id: str) -> bool:
        key = (party, message_id)
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        return len(self._seen)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ReplayGuard:
    """Freshness window plus seen-id check. Stateless apart from the injected store."""

    def __init__(self, seen: SeenIds, *, window_seconds: float = 300.0,
                 skew_seconds: float = 60.0, clock: Clock = _utc_now) -> None:
        if not isinstance(seen, SeenIds):
            raise ConfigurationError("seen must provide add_if_new(party, message_id) -> bool")
        if window_seconds <= 0 or skew_seconds < 0:
            raise ConfigurationError("window_seconds must be > 0 and skew_seconds >= 0")
        self.seen = seen
        self.window = timedelta(seconds=window_seconds)
        self.skew = timedelta(seconds=skew_seconds)
        self.clock = clock

    @property
    def retention(self) -> timedelta:
        """How long a `SeenIds` store must keep an id; older ones may be purged."""
        return self.window + self.skew

    def check(self, party: str, message_id: str, created: datetime | int | float | str,
              *, expires: datetime | None = None) -> None:
        """Accept the message once, or raise `ReplayDetected` (reason in ``details``)."""
        if not isinstance(message_id, str) or not message_id or len(message_id) > MAX_ID_LENGTH:
            raise MalformedEnvelope(f"message id must be a string of 1..{MAX_ID_LENGTH} characters")
        when = _as_datetime(created)
        now = self.clock().astimezone(timezone.utc)
        if when > now + self.skew:
            raise ReplayDetected(f"message {message_id} from {party} is dated {when.isoformat()}, "
                                 f"more than {self.skew.total_seconds():g}s in the future",
                                 reason="future", party=party, message_id=message_id)
        if when < now - self.window:
            raise ReplayDetected(f"message {message_id} from {party} is dated {when.isoformat()}, "
                                 f"older than the {self.window.total_seconds():g}s window",
                                 reason="stale", party=party, message_id=message_id)
        if expires is not None and expires.astimezone(timezone.utc) < now - self.skew:
            raise ReplayDetected(f"message {message_id} from {party} expired at "
                                 f"{expires.isoformat()}", reason="expired", party=party,
                                 message_id=message_id)
        if not self.seen.add_if_new(party, message_id):
            raise ReplayDetected(f"message {message_id} from {party} was already received",
                                 reason="seen", party=party, message_id=message_id)


def _as_datetime(value: datetime | int | float | str) -> datetime:
    if isinstance(value, bool):
        raise MalformedEnvelope("timestamp must be a datetime, epoch seconds or RFC 3339 text")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise MalformedEnvelope(f"timestamp {value!r} is out of range") from None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise MalformedEnvelope(f"timestamp {value!r} is not RFC 3339") from None
    if not isinstance(value, datetime):
        raise MalformedEnvelope("timestamp must be a datetime, epoch seconds or RFC 3339 text")
    if value.tzinfo is None:
        # A timestamp without a zone can be read several hours apart by two parties.
        raise MalformedEnvelope("timestamp must carry a time zone")
    return value.astimezone(timezone.utc)
