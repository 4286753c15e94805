"""Re-encryption after a data-key rotation: every sealed row moved to the active key, in batches.

``hub keys rotate`` adds a data key and makes it active (`security.fieldcrypt.KeyRing.rotate`);
new rows are sealed with it at once in this process and within ``reload_interval`` in the others
(`hub.store.privacy.Privacy` re-reads the ring file). Existing rows are then moved by `Reencryption`:

    job = hub.reencryption(batch=200)          # Reencryption(store, privacy, attachments)
    report = job.run(progress=print_line)     # resumable: rows record their key id
    job.retire_unused()                       # drop keys no row and no document uses any more

Each sealed table (`TARGETS`) records the key id beside the value, so the job's work list is a
query (``key IS NULL OR key <> active``), ordered by primary key and walked in batches of one
short transaction each; PostgreSQL skips rows that traffic holds locked (``SKIP LOCKED``) and a
later pass takes them. Nothing is kept in memory between batches: an interrupted job (crash,
SIGTERM, a new deployment) simply runs again and finds what is left. Rows written in clear by
versions before encryption at rest (NULL key) are sealed by the same walk, and attachment files
are re-encrypted on disk (new file renamed over the old, then the row's key id updated).

A key is retired only when no row and no document uses it, and not before every process had
time to stop encrypting with it (``settle`` seconds after the rotation, the processes' reload
interval): otherwise a stale process could seal a new row with a key that is gone.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from hub.errors import HubError
from hub.store import Store
from hub.store.attachments import AttachmentStore
from hub.store.privacy import Privacy
from hub.store.models import (AttachmentRow, BookingRow, CaseRow, DeadLetterRow, ExchangeRow,
                              OutboxRow)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """A table holding sealed values: what to re-encrypt and by which key id column."""

    name: str
    model: type
    key: InstrumentedAttribute[Any]
    #: The stored column (a NULL value with a NULL key is nothing to seal: a reply not given yet).
    stored: InstrumentedAttribute[Any]
    #: json: a `hub.store.encrypted.Encrypted` attribute; body: an encrypted message body;
    #: file: an attachment file.
    kind: str
    attribute: str = ""

    def stale(self, active: str) -> Any:
        """Rows not sealed with ``active``: another key, or in clear (NULL key, a value)."""
        return or_(self.key != active, and_(self.key.is_(None), self.stored.is_not(None)))

    def unsealed(self) -> Any:
        return and_(self.key.is_(None), self.stored.is_not(None))


TARGETS: tuple[Target, ...] = (
    Target("cases", CaseRow, CaseRow.data_key, CaseRow.encrypted_data, "json", "data"),
    Target("exchanges", ExchangeRow, ExchangeRow.reply_key, ExchangeRow.encrypted_reply, "json",
           "reply"),
    Target("appointments", BookingRow, BookingRow.holder_key, BookingRow.encrypted_holder, "json",
           "holder"),
    Target("outbox", OutboxRow, OutboxRow.body_key, OutboxRow.body, "body"),
    Target("dead_letters", DeadLetterRow, DeadLetterRow.body_key, DeadLetterRow.body, "body"),
    Target("attachments", AttachmentRow, AttachmentRow.data_key, AttachmentRow.storage_key,
           "file"),
)


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: list[str] = field(default_factory=list)


@dataclass
class ReencryptionReport:
    key_id: str
    moved: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    remaining: int = 0
    retired: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.remaining == 0 and not self.failed


class Reencryption:
    """Moves the sealed rows of ``store`` (and the document files of ``attachments``) to the
    active data key of ``privacy`` (the keys ``store`` seals with), ``batch`` rows per
    transaction."""

    def __init__(self, store: Store, privacy: Privacy, attachments: AttachmentStore, *,
                 batch: int = 200) -> None:
        self.store = store
        self.privacy = privacy
        self.attachments = attachments
        self.batch = batch

    # -- what is left --------------------------------------------------------------------------

    def pending(self) -> dict[str, int]:
        """Rows per table not sealed with the active key (NULL key: clear or unknown)."""
        active = self.privacy.key_id
        with self.store.session() as session:
            return {t.name: session.scalar(select(func.count()).select_from(t.model)
                                           .where(t.stale(active))) or 0
                    for t in TARGETS}

    def usage(self) -> dict[str | None, int]:
        """How many rows and documents each key id seals (None: rows in clear / unknown)."""
        counts: dict[str | None, int] = {}
        with self.store.session() as session:
            for target in TARGETS:
                for key_id, count in session.execute(
                        select(target.key, func.count()).where(target.key.is_not(None))
                        .group_by(target.key)):
                    counts[key_id] = counts.get(key_id, 0) + count
                unsealed = session.scalar(select(func.count()).select_from(target.model)
                                          .where(target.unsealed())) or 0
                if unsealed:
                    counts[None] = counts.get(None, 0) + unsealed
        return counts

    # -- the walk ------------------------------------------------------------------------------

    def run(self, *, progress: Callable[[Progress], None] | None = None,
            stop: threading.Event | None = None,
            state: Progress | None = None) -> ReencryptionReport:
        """Move every stale row to the active key; stops early (resumable) when ``stop`` is set.
        ``state`` carries the progress of an earlier pass of the same job on."""
        active = self.privacy.key_id
        report = ReencryptionReport(key_id=active)
        pending = sum(self.pending().values())
        if state is None:
            state = Progress(total=pending)
        else:
            state.total, state.failed = state.done + pending, []
        if progress is not None:
            progress(state)
        for target in TARGETS:
            report.moved[target.name] = self._walk(target, active, state, progress, stop)
        report.failed = state.failed
        report.remaining = sum(self.pending().values()) - len(state.failed)
        return report

    def _walk(self, target: Target, active: str, state: Progress,
              progress: Callable[[Progress], None] | None, stop: threading.Event | None) -> int:
        moved, last = 0, None
        pk = target.model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
        while stop is None or not stop.is_set():
            query = select(target.model).where(target.stale(active)).order_by(pk)
            if last is not None:
                query = query.where(pk > last)
            query = query.limit(self.batch)
            if self.store.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            with self.store.transaction() as session:
                rows = list(session.scalars(query))
                if not rows:
                    return moved
                for row in rows:
                    if self._rewrap(session, target, row):
                        moved += 1
                        state.done += 1
                    else:
                        state.failed.append(f"{target.name}:{getattr(row, pk.key)}")
                last = getattr(rows[-1], pk.key)
            if progress is not None:
                progress(state)
        return moved

    def _rewrap(self, session: Session, target: Target, row: Any) -> bool:
        try:
            if target.kind == "json":
                # Reading opens with whatever key sealed it; assigning reseals at flush with the
                # active key (`hub.store.privacy`), which also re-indexes a case.
                setattr(row, target.attribute, getattr(row, target.attribute))
            elif target.kind == "body":
                plain = self.privacy.decrypt_body(row.body, row.body_key, message_id=row.message_id)
                row.body, row.body_key = self.privacy.encrypt_body(plain, message_id=row.message_id)
            else:
                self.attachments.rewrap(row)
            return True
        except (HubError, OSError) as exc:
            # One unreadable row (altered, or sealed with a key no longer held) must not stop the
            # others; it is reported and keeps its key from being retired.
            log.warning("re-encryption skipped %s %s: %s", target.name,
                        getattr(row, "id", "?"), exc)
            session.expire(row)
            return False

    # -- retiring ------------------------------------------------------------------------------

    def retire_unused(self) -> list[str]:
        """Retire every key but the active one that no row or document uses any more.

        Nothing is retired while rows in clear or of unknown key remain (NULL key): an
        attachment file of unknown key may need any of them."""
        usage = self.usage()
        if usage.get(None):
            return []
        ring = self.privacy.ring
        retired = []
        for key_id in ring.key_ids:
            if key_id != ring.active_key_id and not usage.get(key_id):
                ring.retire(key_id)
                retired.append(key_id)
        return retired


def rotate_and_reencrypt(job: Reencryption, *, settle: float | None = None,
                         progress: Callable[[Progress], None] | None = None,
                         stop: threading.Event | None = None, rotate: bool = True,
                         clock: Callable[[], float] = time.monotonic,
                         sleep: Callable[[float], None] = time.sleep) -> ReencryptionReport:
    """``hub keys rotate`` (``rotate=False``: ``hub keys reencrypt``, resuming a walk), over
    ``job``'s store and keys: ``rotate_and_reencrypt(hub.reencryption(batch=200))``.

    Rotates, waits ``settle`` seconds (default: the processes' key reload interval) so that every
    process seals new rows with the new key, walks the tables, walks once more for rows written
    meanwhile, and retires the keys nothing uses any more."""
    ring = job.privacy.ring
    if rotate:
        ring.rotate()
    started = clock()
    state = Progress(total=0)
    report = job.run(progress=progress, stop=stop, state=state)
    wait = (job.privacy.reload_interval if settle is None else settle) - (clock() - started)
    if wait > 0 and not (stop is not None and stop.is_set()):
        sleep(wait)
    if stop is None or not stop.is_set():
        again = job.run(progress=progress, stop=stop, state=state)
        report.moved = {name: report.moved.get(name, 0) + count
                        for name, count in again.moved.items()}
        report.failed, report.remaining = again.failed, again.remaining
        if report.complete:
            report.retired = job.retire_unused()
    return report
