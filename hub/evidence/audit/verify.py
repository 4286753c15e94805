"""``hub audit verify``: prove the audit chain intact, or say exactly where it breaks.

    report = verify_chain(store, keys.trust)                  # the whole chain
    report = verify_chain(store, keys.trust, start=5000)      # from the last good checkpoint
    report.intact, report.problems[0].describe()              # before position 5000 onwards

Checkpoints are verified first (signature by a hub certificate our CA issued, in date when it
signed, not revoked). A range starts at the newest *good* checkpoint at or before ``start``: its
signed hash is the anchor, so nothing before it is re-hashed. Then every record is re-hashed in
position order and compared with its stored hash, and every checkpoint crossed with the chain.

Problems, each with the position and record id where it is seen:

- ``record_altered``: the recomputed hash differs from the stored one (``expected`` vs ``found``):
  the record or its hash was changed (or the record before it was, and its hash recomputed);
- ``record_missing``: a position has no record (deleted);
- ``checkpoint_mismatch``: the chain at a checkpoint's position differs from what was signed,
  i.e. records between the previous good checkpoint and this one were rewritten consistently;
- ``checkpoint_signature``: a checkpoint's signature or certificate does not verify;
- ``head_mismatch``: the chain head disagrees with the last record (records cut off the end).

After a break, checking continues from the stored hash, so independent breaks are all listed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.evidence.audit.chain import (GENESIS, HEAD_ID, Checkpoint, certificate_of, leaf_of, link,
                             load_checkpoints, record_document, unchained_count)
from hub.errors import HubError
from hub.store import Store
from hub.store.models import AuditChainHead, AuditRow
from security.jws import verify_detached
from security.trust import PartyTrust, TrustStore

_PAGE = 2000


@dataclass(frozen=True)
class Problem:
    kind: str
    position: int
    record_id: int | None = None
    expected: str | None = None
    found: str | None = None
    detail: str = ""

    def describe(self) -> str:
        where = f"position {self.position}" + (f" (record id {self.record_id})"
                                               if self.record_id is not None else "")
        text = f"{self.kind} at {where}"
        if self.expected is not None or self.found is not None:
            text += f": expected {self.expected}, found {self.found}"
        return text + (f"; {self.detail}" if self.detail else "")


@dataclass
class VerifyReport:
    start: int
    end: int
    anchor: int
    checked: int = 0
    checkpoints_verified: int = 0
    last_good_checkpoint: int | None = None
    unsealed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"intact": self.intact, "from": self.start, "to": self.end,
                "anchor": self.anchor, "records_checked": self.checked,
                "checkpoints_verified": self.checkpoints_verified,
                "last_good_checkpoint": self.last_good_checkpoint, "unsealed": self.unsealed,
                "problems": [p.__dict__ | {"message": p.describe()} for p in self.problems]}


def checkpoint_problem(checkpoint: Checkpoint, trust: TrustStore) -> str | None:
    """Why a checkpoint's signature cannot be believed, or None when it can."""
    try:
        cert = certificate_of(checkpoint)
        # Checked as of when it was signed: a checkpoint outlives its certificate's validity,
        # not its revocation.
        one = TrustStore(trust.ca, crl=trust.crl,
                         parties={"hub": PartyTrust(certificates=(cert,))},
                         clock=lambda: checkpoint.signed_at)
        one.require_fresh_crl = False
        verify_detached(checkpoint.signature, checkpoint.statement(), one, "hub",
                        at=checkpoint.signed_at)
        return None
    except HubError as exc:
        return exc.message
    except ValueError as exc:
        return f"unreadable certificate: {exc}"


def _rows(session: Session, first: int, last: int) -> Iterator[AuditRow]:
    position = first
    while position <= last:
        page = list(session.scalars(select(AuditRow).where(
            AuditRow.chain_position >= position, AuditRow.chain_position <= last)
            .order_by(AuditRow.chain_position).limit(_PAGE)))
        if not page:
            return
        yield from page
        position = page[-1].chain_position + 1  # type: ignore[operator]


def verify_chain(store: Store, trust: TrustStore, *, start: int | None = None,
                 end: int | None = None) -> VerifyReport:
    """Verify positions ``start``..``end`` (default: all) and the checkpoints among them."""
    with store.session() as session:
        head = session.get(AuditChainHead, HEAD_ID)
        top = session.scalar(select(func.max(AuditRow.chain_position))) or 0
        last = min(end, top) if end is not None else top
        checkpoints = load_checkpoints(session)
        report = VerifyReport(start=start or 1, end=last, anchor=0,
                              unsealed=unchained_count(session))
        good: dict[int, Checkpoint] = {}
        for checkpoint in checkpoints:
            reason = checkpoint_problem(checkpoint, trust)
            if reason is None:
                good[checkpoint.position] = checkpoint
                report.checkpoints_verified += 1
            else:
                report.problems.append(Problem("checkpoint_signature", checkpoint.position,
                                               detail=reason))
        anchor_hash = GENESIS
        if start is not None and start > 1:
            anchors = [p for p in good if p < start]
            if anchors:
                report.anchor = max(anchors)
                anchor_hash = good[report.anchor].hash
        _walk(session, report, anchor_hash, good)
        if end is None:
            last_hash = session.scalar(select(AuditRow.chain_hash)
                                       .where(AuditRow.chain_position == top)) if top else GENESIS
            _check_head(head, report, top, last_hash)
    report.problems.sort(key=lambda p: p.position)
    return report


def _walk(session: Session, report: VerifyReport, previous: str,
          good: dict[int, Checkpoint]) -> None:
    expected_position = report.anchor + 1
    for row in _rows(session, expected_position, report.end):
        position = row.chain_position
        assert position is not None
        while expected_position < position:  # a hole: the record there was deleted
            report.problems.append(Problem("record_missing", expected_position))
            expected_position += 1
        expected = link(previous, leaf_of(record_document(row)))
        if expected != row.chain_hash:
            report.problems.append(Problem("record_altered", position, row.id, expected,
                                           row.chain_hash))
        report.checked += 1
        # Continue from what is stored: a later, independent break is reported on its own.
        previous = row.chain_hash or expected
        checkpoint = good.get(position)
        if checkpoint is not None:
            if checkpoint.hash != previous:
                report.problems.append(Problem(
                    "checkpoint_mismatch", position, row.id, checkpoint.hash, previous,
                    "records since the previous checkpoint were rewritten"))
            elif not any(p.position <= position for p in report.problems):
                report.last_good_checkpoint = position
        expected_position = position + 1
    if expected_position <= report.end:
        report.problems.append(Problem("record_missing", expected_position))


def _check_head(head: AuditChainHead | None, report: VerifyReport, top: int,
                last_hash: str | None) -> None:
    if head is None:
        report.problems.append(Problem("head_mismatch", top, detail="the chain head is missing"))
    elif head.position == top and head.hash != last_hash:
        report.problems.append(Problem("head_mismatch", top, expected=head.hash, found=last_hash,
                                       detail="the last record's hash is not the head's"))
    elif head.position != top:
        report.problems.append(Problem(
            "head_mismatch", min(head.position, top) + 1,
            detail=f"the head is at position {head.position} but the last record is at {top}"
                   + (" (records were cut off the end)" if head.position > top else "")))
