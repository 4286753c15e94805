from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.envelope import Envelope, SchemaRef, canonical_json, json_depth, parse_json
from hub.errors import MalformedEnvelope, MessageTooLarge


def make(**changes):
    fields = dict(service="driving_licence_authentication", kind="request", sender="ES-MAD",
                  recipient="narsa", correlation_id="DLA-2026-7K3M9QX",
                  schema=SchemaRef(name="narsa.verify_licence.request", version="1"),
                  payload={"licence": {"number": "12/3456781"}, "holder": {"cnie": "AB123456"}},
                  id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
                  created_at=datetime(2026, 11, 29, 6, 0, tzinfo=timezone.utc))
    fields.update(changes)
    return Envelope.new(**fields)


def test_roundtrip_preserves_every_field():
    env = make(attempt=2, signature="sig")
    again = Envelope.from_bytes(env.to_bytes())
    assert again == env
    assert again.attempt == 2 and again.signature == "sig"


def test_canonical_bytes_are_stable_and_sorted():
    env = make()
    expected = canonical_json({
        "causation_id": None, "correlation_id": "DLA-2026-7K3M9QX",
        "created_at": "2026-11-29T06:00:00.000000Z",
        "id": "00000000-0000-4000-8000-000000000001", "kind": "request",
        "payload": {"holder": {"cnie": "AB123456"}, "licence": {"number": "12/3456781"}},
        "recipient": "narsa", "schema": {"name": "narsa.verify_licence.request", "version": "1"},
        "sender": "ES-MAD", "service": "driving_licence_authentication"})
    assert env.canonical_bytes() == expected
    # Key order in the payload as built does not matter.
    reordered = make(payload={"holder": {"cnie": "AB123456"}, "licence": {"number": "12/3456781"}})
    assert reordered.canonical_bytes() == env.canonical_bytes()


def test_digest_ignores_attempt_and_signature_but_not_content():
    env = make()
    assert env.with_attempt(5).digest() == env.digest()
    assert env.with_signature("x").digest() == env.digest()
    assert make(payload={"licence": {"number": "other"}}).digest() != env.digest()


def test_timestamps_are_normalized_to_utc():
    paris = timezone(timedelta(hours=1))
    env = make(created_at=datetime(2026, 11, 29, 7, 0, tzinfo=paris))
    assert env.created_at == datetime(2026, 11, 29, 6, 0, tzinfo=timezone.utc)


def test_naive_timestamp_is_refused():
    doc = make().to_dict()
    doc["created_at"] = "2026-11-29T06:00:00"
    with pytest.raises(MalformedEnvelope, match="created_at"):
        Envelope.from_dict(doc)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("id"), "id"),
    (lambda d: d.update(kind="order"), "kind"),
    (lambda d: d.update(extra="x"), "extra"),
    (lambda d: d.update(service="Not A Name"), "service"),
    (lambda d: d.update(attempt=-1), "attempt"),
    (lambda d: d.update(payload=[1, 2]), "payload"),
    (lambda d: d.update(correlation_id="../etc"), "correlation_id"),
])
def test_strict_validation_names_the_field(mutate, field):
    doc = make().to_dict()
    mutate(doc)
    with pytest.raises(MalformedEnvelope) as caught:
        Envelope.from_bytes(json.dumps(doc).encode())
    assert field in caught.value.message


def test_duplicate_keys_are_refused():
    raw = make().to_bytes().replace(b'"kind":"request"', b'"kind":"request","kind":"reply"')
    with pytest.raises(MalformedEnvelope, match="duplicate key 'kind'"):
        Envelope.from_bytes(raw)


def test_size_limit_is_checked_before_parsing():
    env = make(payload={"blob": "x" * 5000})
    with pytest.raises(MessageTooLarge) as caught:
        Envelope.from_bytes(env.to_bytes(), max_bytes=4096)
    assert caught.value.details["limit"] == 4096


def test_depth_limit_refuses_deep_nesting():
    deep = b'{"a":' * 40 + b'1' + b'}' * 40
    assert json_depth(deep) == 40
    with pytest.raises(MalformedEnvelope, match="deeper than"):
        parse_json(deep)


def test_depth_ignores_brackets_inside_strings():
    assert json_depth(b'{"a":"[[[[{{{{"}') == 1


@pytest.mark.parametrize("raw", [b"not json", b'{"a": NaN}', b"\xff\xfe", b'{"a":1'])
def test_invalid_json_is_malformed(raw):
    with pytest.raises(MalformedEnvelope):
        Envelope.from_bytes(raw)


def test_reply_links_to_its_request():
    request = make()
    reply = request.reply(schema={"name": "narsa.verify_licence.reply", "version": "1"},
                          payload={"outcome": "authentic"})
    assert reply.causation_id == request.id
    assert reply.correlation_id == request.correlation_id
    assert (reply.sender, reply.recipient) == ("narsa", "ES-MAD")
    assert reply.id != request.id
