"""``hub audit export --case REF``: a signed bundle proving one case's audit trail, offline.

When an agency disputes an exchange ("we never received it"), the hub hands over this bundle;
the agency checks it with ``python3 docs/verify-audit-bundle.py bundle.json --ca ca.cert.pem``
(Python 3 and ``cryptography`` only, no hub code). The bundle holds:

- ``records``: the case's audit records, each with its chain position and hash;
- ``segments``: for each checkpoint covering one of those records, every link from the previous
  checkpoint (or the start of the chain) to it: the case's records in full, other records as
  their leaf digest only (no other case is disclosed); recomputing the links from the anchor
  must give the checkpoint's signed hash;
- the checkpoints (signed by the hub key, each with its certificate), the hub's current signing
  certificate, our CA certificate and CRL (informational: the agency must verify against the CA
  certificate it received from us out of band, never the copy inside);
- ``signature``: a detached JWS by the hub over the canonical JSON of everything else.

A checkpoint is made first, so every record of the case written so far is covered.
"""
from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from hub.evidence.audit.chain import (GENESIS, Checkpoint, leaf_of, load_checkpoints, make_checkpoint,
                             record_document)
from hub.envelope import canonical_json, format_timestamp
from hub.errors import UnknownRoute
from hub.keyset import HubKeys
from hub.store import Store
from hub.store.models import AuditRow, utcnow
from security.jws import sign_detached

FORMAT = "econsulat-audit-bundle/1"


def export_case(store: Store, keys: HubKeys, reference: str) -> dict[str, Any]:
    """The signed bundle for case ``reference`` (see module docstring)."""
    reference = reference.upper()
    make_checkpoint(store, keys.signer)
    with store.session() as session:
        checkpoints = load_checkpoints(session)
        covered_to = checkpoints[-1].position if checkpoints else 0
        rows = list(session.scalars(select(AuditRow).where(
            AuditRow.correlation_id == reference, AuditRow.chain_position.is_not(None),
            AuditRow.chain_position <= covered_to).order_by(AuditRow.chain_position)))
        if not rows:
            raise UnknownRoute(f"no audit records of case {reference} are sealed yet",
                               code="audit.no_records")
        segments = _segments(session, [row.chain_position for row in rows],  # type: ignore[misc]
                             checkpoints, reference)
        records = [{**record_document(row), "position": row.chain_position,
                    "hash": row.chain_hash} for row in rows]
    payload = {
        "format": FORMAT,
        "case": reference,
        "exported_at": format_timestamp(utcnow()),
        "records": records,
        "segments": segments,
        "hub_certificate": _pem(keys.signer.cert),
        "ca_certificate": _pem(keys.store.ca),
        "crl": (keys.store.crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
                if keys.store.crl is not None else None),
    }
    signature = sign_detached(canonical_json(payload), keys.signer,
                              message_id=f"audit-export-{reference}-{payload['exported_at']}")
    return {"payload": payload, "signature": signature}


def _segments(session: Any, positions: list[int], checkpoints: list[Checkpoint],
              reference: str) -> list[dict[str, Any]]:
    wanted: list[tuple[Checkpoint | None, Checkpoint]] = []
    for position in positions:
        index = next(i for i, c in enumerate(checkpoints) if c.position >= position)
        pair = (checkpoints[index - 1] if index else None, checkpoints[index])
        if pair not in wanted:
            wanted.append(pair)
    segments = []
    for anchor, checkpoint in wanted:
        first = anchor.position + 1 if anchor else 1
        links = []
        for row in session.scalars(select(AuditRow).where(
                AuditRow.chain_position >= first,
                AuditRow.chain_position <= checkpoint.position).order_by(AuditRow.chain_position)):
            document = record_document(row)
            if row.correlation_id == reference:
                links.append({"position": row.chain_position, "record": document})
            else:
                links.append({"position": row.chain_position, "leaf": leaf_of(document)})
        segments.append({
            "anchor": anchor.as_dict() if anchor else {"position": 0, "hash": GENESIS},
            "checkpoint": checkpoint.as_dict(),
            "links": links,
        })
    return segments


def _pem(cert: Any) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
