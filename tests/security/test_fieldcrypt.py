"""security.fieldcrypt: values, fields and files encrypted at rest, with rotation."""
from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest

from hub.errors import ConfigurationError, InvalidMessage, SignatureInvalid
from security.fieldcrypt import DATA_KEYS_FILE, FILE_MAGIC, TOKEN_PREFIX, KeyRing

CTX = b"case:RR-2026-000123/deceased.cause_of_death"


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.generate(tmp_path / DATA_KEYS_FILE)


def test_round_trip_and_token_format(ring: KeyRing) -> None:
    token = ring.encrypt("cardiac arrest".encode(), context=CTX)
    prefix, version, key_id, data = token.split(":")
    assert f"{prefix}:{version}:" == TOKEN_PREFIX and key_id == ring.active_key_id
    assert len(base64.urlsafe_b64decode(data)) == 12 + len("cardiac arrest") + 16
    assert b"cardiac" not in token.encode()
    assert ring.decrypt(token, context=CTX) == "cardiac arrest".encode()
    assert ring.encrypt(b"x", context=CTX) != ring.encrypt(b"x", context=CTX)  # fresh nonces


def test_context_binds_the_value_to_its_row_and_field(ring: KeyRing) -> None:
    token = ring.encrypt(b"AB123456", context=b"case:A/holder.cnie")
    with pytest.raises(SignatureInvalid, match="wrong context") as exc:
        ring.decrypt(token, context=b"case:B/holder.cnie")
    assert exc.value.code == "security.decrypt"


def test_tampering_is_detected(ring: KeyRing) -> None:
    token = ring.encrypt(b"AB123456", context=CTX)
    head, data = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(data))
    raw[-1] ^= 1
    with pytest.raises(SignatureInvalid):
        ring.decrypt(f"{head}:{base64.urlsafe_b64encode(bytes(raw)).decode()}", context=CTX)
    with pytest.raises(SignatureInvalid):
        ring.decrypt(f"{head}:{base64.urlsafe_b64encode(bytes(raw[:20])).decode()}", context=CTX)


@pytest.mark.parametrize("token", ["AB123456", "enc:v1:", "enc:v1:k1", "enc:v1:k1:%%%", 42])
def test_not_a_token(ring: KeyRing, token) -> None:
    with pytest.raises((InvalidMessage, SignatureInvalid, ConfigurationError)):
        ring.decrypt(token, context=CTX)


def test_unknown_key_id(ring: KeyRing) -> None:
    other = KeyRing.generate()
    with pytest.raises(ConfigurationError, match="not in the key ring"):
        ring.decrypt(other.encrypt(b"x", context=CTX), context=CTX)


def test_rotation(ring: KeyRing) -> None:
    old_token = ring.encrypt(b"AB123456", context=CTX)
    old_id = ring.active_key_id
    new_id = ring.rotate()
    assert new_id != old_id and ring.active_key_id == new_id and ring.key_ids == (old_id, new_id)
    assert ring.needs_rotation(old_token)
    assert ring.decrypt(old_token, context=CTX) == b"AB123456"  # old keys still decrypt
    fresh = ring.reencrypt(old_token, context=CTX)
    assert not ring.needs_rotation(fresh) and ring.reencrypt(fresh, context=CTX) == fresh
    with pytest.raises(ConfigurationError, match="cannot be retired"):
        ring.retire(new_id)
    ring.retire(old_id)
    assert ring.decrypt(fresh, context=CTX) == b"AB123456"
    with pytest.raises(ConfigurationError, match="not in the key ring"):
        ring.decrypt(old_token, context=CTX)


def test_persistence_is_0600_and_reload_gives_the_same_keys(ring: KeyRing, tmp_path: Path) -> None:
    path = tmp_path / DATA_KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = ring.encrypt(b"secret", context=CTX)
    ring.rotate()
    loaded = KeyRing.load(path)
    assert loaded.active_key_id == ring.active_key_id and loaded.key_ids == ring.key_ids
    assert loaded.decrypt(token, context=CTX) == b"secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp")), "temporary files left behind"
    assert KeyRing.load_or_create(path).key_ids == ring.key_ids


def test_a_process_picks_up_a_rotation_made_elsewhere(ring: KeyRing, tmp_path: Path) -> None:
    worker = KeyRing.load(tmp_path / DATA_KEYS_FILE)   # loaded once at start-up
    ring.rotate()                                      # `hub keys rotate` in another process
    token = ring.encrypt(b"after rotation", context=CTX)
    assert worker.decrypt(token, context=CTX) == b"after rotation"
    assert worker.active_key_id == ring.active_key_id


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="hub keys init"):
        KeyRing.load(tmp_path / "absent.json")
    path = tmp_path / DATA_KEYS_FILE
    KeyRing.generate(path)
    with pytest.raises(ConfigurationError, match="refusing to overwrite"):
        KeyRing.generate(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        KeyRing.load(path)
    os.chmod(path, 0o600)
    path.write_text('{"version": 1, "active": "k1", "keys": [{"id": "k1", "key": "c2hvcnQ="}]}')
    with pytest.raises(ConfigurationError, match="not 256 bits"):
        KeyRing.load(path)
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="unreadable"):
        KeyRing.load(path)


def test_json_values(ring: KeyRing) -> None:
    value = {"cause": "natural", "codes": ["I21", "I46"], "n": 3}
    assert ring.decrypt_json(ring.encrypt_json(value, context=CTX), context=CTX) == value


def test_encrypt_named_fields_only(ring: KeyRing) -> None:
    payload = {
        "holder": {"cnie": "AB123456", "names": {"first": "Amina"}},
        "deceased": {"cause_of_death": "cardiac arrest", "date_of_death": "2026-11-20"},
        "relatives": [{"cnie": "CD654321"}, {"cnie": None}, {"passport": "AA1234567"}],
        "licence_number": "12/345678",
    }
    paths = ["holder.cnie", "deceased.cause_of_death", "relatives.*.cnie", "absent.field"]
    sealed = ring.encrypt_fields(payload, paths, context=b"case:DLA-1")
    assert payload["holder"]["cnie"] == "AB123456", "input must stay untouched"
    assert sealed["holder"]["cnie"].startswith(TOKEN_PREFIX)
    assert sealed["deceased"]["cause_of_death"].startswith(TOKEN_PREFIX)
    assert sealed["relatives"][0]["cnie"].startswith(TOKEN_PREFIX)
    assert sealed["relatives"][1]["cnie"] is None
    assert sealed["deceased"]["date_of_death"] == "2026-11-20"
    assert sealed["licence_number"] == "12/345678" and sealed["holder"]["names"]["first"] == "Amina"
    assert ring.decrypt_fields(sealed, paths, context=b"case:DLA-1") == payload


def test_an_encrypted_field_cannot_be_moved(ring: KeyRing) -> None:
    sealed = ring.encrypt_fields({"holder": {"cnie": "AB1"}, "deceased": {"cnie": "CD2"}},
                                 ["holder.cnie", "deceased.cnie"], context=b"case:X")
    swapped = {"holder": {"cnie": sealed["deceased"]["cnie"]},
               "deceased": {"cnie": sealed["holder"]["cnie"]}}
    with pytest.raises(SignatureInvalid):
        ring.decrypt_fields(swapped, ["holder.cnie", "deceased.cnie"], context=b"case:X")
    with pytest.raises(SignatureInvalid):  # same field, another case
        ring.decrypt_fields(sealed, ["holder.cnie"], context=b"case:Y")
    with pytest.raises(InvalidMessage, match="not an encrypted token"):
        ring.decrypt_fields({"holder": {"cnie": 5}}, ["holder.cnie"], context=b"case:X")
    with pytest.raises(ConfigurationError, match="invalid field path"):
        ring.encrypt_fields({}, ["holder..cnie"], context=b"case:X")


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 5 * 1024 + 7])
def test_file_round_trip(ring: KeyRing, size: int) -> None:
    data = os.urandom(size)
    sealed = io.BytesIO()
    assert ring.encrypt_file(io.BytesIO(data), sealed, context=b"doc:1", chunk_size=1024) == \
        ring.active_key_id
    assert sealed.getvalue().startswith(FILE_MAGIC)
    assert size < 64 or data[:64] not in sealed.getvalue()  # shorter ones may occur by chance
    out = io.BytesIO()
    ring.decrypt_file(io.BytesIO(sealed.getvalue()), out, context=b"doc:1")
    assert out.getvalue() == data


def _sealed_file(ring: KeyRing, data: bytes) -> bytes:
    sealed = io.BytesIO()
    ring.encrypt_file(io.BytesIO(data), sealed, context=b"doc:1", chunk_size=1024)
    return sealed.getvalue()


def test_file_truncation_reordering_and_context_are_detected(ring: KeyRing) -> None:
    data = os.urandom(3000)
    sealed = _sealed_file(ring, data)
    header_len = len(FILE_MAGIC) + 1 + len(ring.active_key_id) + 11
    chunk = 4 + 1024 + 16
    header, chunks = sealed[:header_len], sealed[header_len:]
    first, second, rest = chunks[:chunk], chunks[chunk:2 * chunk], chunks[2 * chunk:]
    cases = {
        "truncated at a chunk boundary": header + first + second,
        "truncated mid-chunk": sealed[:-10],
        "chunks swapped": header + second + first + rest,
        "chunk dropped": header + first + rest,
        "bit flipped": sealed[:-1] + bytes([sealed[-1] ^ 1]),
        "trailing garbage": sealed + b"\x00\x00\x00\x20" + b"x" * 32,
    }
    for name, blob in cases.items():
        try:
            ring.decrypt_file(io.BytesIO(blob), io.BytesIO(), context=b"doc:1")
        except SignatureInvalid:
            continue
        pytest.fail(f"{name}: accepted")
    with pytest.raises(SignatureInvalid):
        ring.decrypt_file(io.BytesIO(sealed), io.BytesIO(), context=b"doc:2")
    with pytest.raises(InvalidMessage, match="bad magic"):
        ring.decrypt_file(io.BytesIO(b"%PDF-1.7"), io.BytesIO(), context=b"doc:1")


def test_file_paths_appear_only_when_decryption_succeeds(ring: KeyRing, tmp_path: Path) -> None:
    plain, sealed, back = tmp_path / "death.pdf", tmp_path / "death.pdf.enc", tmp_path / "out.pdf"
    plain.write_bytes(b"%PDF-1.7 " + os.urandom(200_000))
    ring.encrypt_file(plain, sealed, context=b"doc:7")
    assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
    ring.decrypt_file(sealed, back, context=b"doc:7")
    assert back.read_bytes() == plain.read_bytes()
    back.unlink()
    sealed.write_bytes(sealed.read_bytes()[:-5])
    with pytest.raises(SignatureInvalid):
        ring.decrypt_file(sealed, back, context=b"doc:7")
    assert not back.exists() and not list(tmp_path.glob(".*.part"))


def test_files_survive_rotation(ring: KeyRing) -> None:
    sealed = _sealed_file(ring, b"scan of licence, front")
    ring.rotate()
    out = io.BytesIO()
    ring.decrypt_file(io.BytesIO(sealed), out, context=b"doc:1")
    assert out.getvalue() == b"scan of licence, front"


def test_truncated_file_header(ring: KeyRing) -> None:
    sealed = _sealed_file(ring, b"x" * 10)
    full_id = len(FILE_MAGIC) + 1 + len(ring.active_key_id)
    for cut in (len(FILE_MAGIC), len(FILE_MAGIC) + 3, full_id, full_id + 6):
        with pytest.raises(SignatureInvalid):
            ring.decrypt_file(io.BytesIO(sealed[:cut]), io.BytesIO(), context=b"doc:1")
