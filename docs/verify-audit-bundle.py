#!/usr/bin/env python3
"""Verify an audit bundle exported by econsulat-hub (``hub audit export --case REF``), offline.

    python3 verify-audit-bundle.py bundle.json --ca ca.cert.pem [--crl crl.pem]

Needs Python 3.9+ and the ``cryptography`` package only (``pip install cryptography``); no code
of the hub. ``--ca`` is the hub's CA certificate as you received it from the Ministry, out of band:
the copy inside the bundle is never trusted. Exit status 0 when everything verifies, 1 otherwise,
with one line per check.

What is checked:

1. the hub's signing certificate (and each checkpoint's) was issued by that CA, names the party
   ``urn:econsulat:party:hub``, was valid when it signed, and is not on the CRL if one is given;
2. the bundle's signature (detached JWS, ES256 or RS256) covers everything in it;
3. every checkpoint's signature covers its position, chain hash and time;
4. every segment recomputes: from its anchor (the start of the chain, or the previous signed
   checkpoint), hash(p) = SHA-256(hash(p-1) || leaf(p)) reaches the checkpoint's signed hash,
   where leaf(p) = SHA-256(canonical JSON of the record) for the case's records;
5. every record listed for the case sits in a segment at its position, with its hash.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

GENESIS = "0" * 64
HUB_URI = "urn:econsulat:party:hub"
STATEMENT = "econsulat-hub audit checkpoint"
FORMAT = "econsulat-audit-bundle/1"


class Refused(Exception):
    pass


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def check_certificate(pem: str, ca: x509.Certificate, crl: x509.CertificateRevocationList | None,
                      at: datetime) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise Refused("certificate was not issued by the given CA") from None
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if HUB_URI not in san.get_values_for_type(x509.UniformResourceIdentifier):
        raise Refused("certificate does not name the hub")
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise Refused(f"certificate was not valid at {at.isoformat()}")
    if crl is not None and crl.get_revoked_certificate_by_serial_number(cert.serial_number):
        raise Refused(f"certificate {cert.serial_number:x} is revoked")
    return cert


def verify_detached_jws(token: str, payload: bytes, cert: x509.Certificate) -> dict:
    header_b64, empty, signature_b64 = token.split(".")
    if empty:
        raise Refused("expected a detached JWS")
    header = json.loads(unb64url(header_b64))
    thumbprint = b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest())
    if header.get("kid") != thumbprint:
        raise Refused("JWS kid does not name this certificate")
    signing_input = f"{header_b64}.{b64url(payload)}".encode("ascii")
    signature = unb64url(signature_b64)
    key = cert.public_key()
    try:
        if header.get("alg") == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise Refused("ES256 signature must be 64 bytes")
            der = utils.encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                             int.from_bytes(signature[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        elif header.get("alg") == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise Refused(f"algorithm {header.get('alg')!r} does not fit the certificate")
    except InvalidSignature:
        raise Refused("signature does not verify") from None
    return header


def leaf(record: dict) -> str:
    return hashlib.sha256(canonical(record)).hexdigest()


def link(previous: str, leaf_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf_hex)).hexdigest()


def check_checkpoint(checkpoint: dict, ca: x509.Certificate,
                     crl: x509.CertificateRevocationList | None) -> None:
    at = parse_time(checkpoint["signed_at"])
    cert = check_certificate(checkpoint["certificate"], ca, crl, at)
    statement = canonical({"statement": STATEMENT, "position": checkpoint["position"],
                           "hash": checkpoint["hash"], "signed_at": checkpoint["signed_at"]})
    verify_detached_jws(checkpoint["signature"], statement, cert)


def verify(bundle: dict, ca: x509.Certificate,
           crl: x509.CertificateRevocationList | None) -> list[str]:
    """Every check's result line; raises `Refused` at the first failure."""
    lines = []
    payload = bundle["payload"]
    if payload.get("format") != FORMAT:
        raise Refused(f"unknown bundle format {payload.get('format')!r}")
    exported = parse_time(payload["exported_at"])
    hub_cert = check_certificate(payload["hub_certificate"], ca, crl, exported)
    verify_detached_jws(bundle["signature"], canonical(payload), hub_cert)
    lines.append(f"bundle signed by the hub ({hub_cert.subject.rfc4514_string()})")
    proven: dict[int, str] = {}
    for segment in payload["segments"]:
        anchor, checkpoint = segment["anchor"], segment["checkpoint"]
        if anchor["position"] != 0:
            check_checkpoint(anchor, ca, crl)
        elif anchor["hash"] != GENESIS:
            raise Refused("a segment starting the chain must start from the zero hash")
        check_checkpoint(checkpoint, ca, crl)
        current, expected_position = anchor["hash"], anchor["position"] + 1
        for item in segment["links"]:
            if item["position"] != expected_position:
                raise Refused(f"segment skips position {expected_position}")
            digest = leaf(item["record"]) if "record" in item else item["leaf"]
            current = link(current, digest)
            if "record" in item:
                proven[item["position"]] = current
            expected_position += 1
        if expected_position - 1 != checkpoint["position"] or current != checkpoint["hash"]:
            raise Refused(f"segment {anchor['position']}..{checkpoint['position']} does not "
                          "recompute to the checkpoint's signed hash")
        lines.append(f"chain {anchor['position'] + 1}..{checkpoint['position']} recomputes to "
                     f"checkpoint {checkpoint['position']} signed {checkpoint['signed_at']}")
    for record in payload["records"]:
        document = {k: v for k, v in record.items() if k not in ("position", "hash")}
        position = record["position"]
        segment_hash = proven.get(position)
        if segment_hash is None or segment_hash != record["hash"]:
            raise Refused(f"record {record['id']} at position {position} is not proven by the "
                          "chain")
        for segment in payload["segments"]:
            for item in segment["links"]:
                if item["position"] == position and item.get("record") != document:
                    raise Refused(f"record {record['id']} differs from the chained one")
        lines.append(f"  {record['at']}  {record['action']:14} {record['outcome']:16} "
                     f"{record['actor']}  message {record['message_id'] or '-'}")
    lines.append(f"{len(payload['records'])} audit records of case {payload['case']} verified")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an econsulat-hub audit bundle offline.")
    parser.add_argument("bundle")
    parser.add_argument("--ca", required=True, help="the hub's CA certificate (PEM), out of band")
    parser.add_argument("--crl", help="the hub CA's CRL (PEM), to check revocation")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, "rb") as handle:
            bundle = json.load(handle)
        with open(args.ca, "rb") as handle:
            ca = x509.load_pem_x509_certificate(handle.read())
        crl = None
        if args.crl:
            with open(args.crl, "rb") as handle:
                crl = x509.load_pem_x509_crl(handle.read())
            if not crl.is_signature_valid(ca.public_key()):
                raise Refused("the CRL is not signed by the CA")
        for line in verify(bundle, ca, crl):
            print(line)
    except Refused as exc:
        print(f"REFUSED: {exc}")
        return 1
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"REFUSED: unreadable bundle or certificate: {type(exc).__name__}: {exc}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
