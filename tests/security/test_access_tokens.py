"""security.tokens: issuing and verifying access tokens; the least-privilege table."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from hub.errors import ConfigurationError, InvalidToken
from security.jws import sign_json
from security.keys import KeyStore, Signer
from security.pki import issue
from security.tokens import MAX_TTL, TOKEN_TYPE, Principal, TokenAuthority


@pytest.fixture
def authority(store: KeyStore, clock) -> TokenAuthority:
    return TokenAuthority(store.signer("hub"), clock=clock)


def claims_of(token: str) -> dict:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def header_of(token: str) -> dict:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def reason(exc: pytest.ExceptionInfo) -> str:
    return exc.value.details["reason"]


def test_issue_and_verify(authority: TokenAuthority, clock) -> None:
    token = authority.issue_token("u-7f3a", "post_staff", post="MA-FR-PAR", ttl=600)
    header, claims = header_of(token), claims_of(token)
    assert header["typ"] == TOKEN_TYPE and header["alg"] == "ES256"
    assert header["kid"] == authority.signer.thumbprint
    assert claims["exp"] - claims["iat"] == 600 and claims["post"] == "MA-FR-PAR"
    assert {"iss", "aud", "sub", "nbf", "jti", "role"} <= claims.keys()
    who = authority.verify_token(token)
    assert who == Principal(subject="u-7f3a", role="post_staff", post="MA-FR-PAR",
                            token_id=claims["jti"], expires_at=clock.now.replace(microsecond=0)
                            + timedelta(seconds=600))


def test_rsa_hub_key_issues_rs256(rsa_store: KeyStore) -> None:
    authority = TokenAuthority(rsa_store.signer("hub"))
    token = authority.issue_token("admin-1", "admin")
    assert header_of(token)["alg"] == "RS256"
    assert authority.verify_token(token).can_operate()


def test_expiry_and_not_before(authority: TokenAuthority, clock) -> None:
    token = authority.issue_token("u-1", "central", ttl=60)
    clock.advance(60 + 29)  # within the 30 s leeway
    assert authority.verify_token(token).role == "central"
    clock.advance(1)
    with pytest.raises(InvalidToken, match="expired") as exc:
        authority.verify_token(token)
    assert reason(exc) == "expired"
    clock.advance(-3600)
    with pytest.raises(InvalidToken, match="not valid before") as exc:
        authority.verify_token(token)
    assert reason(exc) == "not_before"


def test_issuer_and_audience(store: KeyStore, authority: TokenAuthority, clock) -> None:
    token = authority.issue_token("u-1", "central")
    other_aud = TokenAuthority(store.signer("hub"), audience="urn:other:api", clock=clock)
    with pytest.raises(InvalidToken, match="another audience") as exc:
        other_aud.verify_token(token)
    assert reason(exc) == "audience"
    other_iss = TokenAuthority(store.signer("hub"), issuer="urn:other", clock=clock)
    with pytest.raises(InvalidToken, match="issued by someone else"):
        other_iss.verify_token(token)


def test_tampered_claims(authority: TokenAuthority) -> None:
    header, payload, signature = authority.issue_token("u-1", "call_centre").split(".")
    claims = claims_of(f"{header}.{payload}.{signature}")
    claims["role"] = "central"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="does not verify") as exc:
        authority.verify_token(f"{header}.{forged}.{signature}")
    assert reason(exc) == "signature"


def test_alg_none_and_garbage(authority: TokenAuthority) -> None:
    token = authority.issue_token("u-1", "central")
    header = header_of(token)
    header["alg"] = "none"
    none = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="does not fit"):
        authority.verify_token(f"{none}.{token.split('.')[1]}.")
    for garbage in ("", "abc", "a.b.c", "x" * 9000):
        with pytest.raises(InvalidToken):
            authority.verify_token(garbage)


def test_key_the_hub_does_not_know(other_store: KeyStore, authority: TokenAuthority) -> None:
    foreign = TokenAuthority(other_store.signer("hub")).issue_token("u-1", "admin")
    with pytest.raises(InvalidToken, match="does not know") as exc:
        authority.verify_token(foreign)
    assert reason(exc) == "kid"


def test_a_message_signature_is_not_a_token(store: KeyStore, authority: TokenAuthority) -> None:
    claims = {"iss": "urn:econsulat:hub", "aud": "urn:econsulat:hub:api", "sub": "x",
              "role": "central", "iat": 0, "nbf": 0, "exp": 2**40, "jti": "j"}
    message = sign_json(json.dumps(claims).encode(), store.signer("hub"))
    with pytest.raises(InvalidToken, match="is not at\\+jwt") as exc:
        authority.verify_token(message)
    assert reason(exc) == "typ"


def test_previous_hub_key_is_accepted_during_rotation(store: KeyStore, clock) -> None:
    old = issue(store.layout.keys_dir, "hub")
    old_authority = TokenAuthority(Signer("hub", old.key, old.cert), clock=clock)
    token = old_authority.issue_token("u-1", "central")
    current = TokenAuthority(store.signer("hub"), clock=clock)
    with pytest.raises(InvalidToken):
        current.verify_token(token)
    rotated = TokenAuthority(store.signer("hub"), clock=clock, previous=[old.cert])
    assert rotated.verify_token(token).role == "central"


@pytest.mark.parametrize("role, scope, message", [
    ("applicant", {}, "needs a valid 'case'"),
    ("post_staff", {"agency": "narsa"}, "needs a valid 'post'"),
    ("agency", {"agency": "narsa", "post": "MA-FR-PAR"}, "may not carry a 'post'"),
    ("central", {"case": "DLA-1"}, "may not carry a 'case'"),
    ("admin", {"agency": "../x"}, "may not carry"),
    ("agency", {"agency": "na rsa"}, "needs a valid 'agency'"),
    ("superuser", {}, "unknown role"),
])
def test_issue_checks_role_scope(authority: TokenAuthority, role, scope, message) -> None:
    with pytest.raises(ConfigurationError, match=message):
        authority.issue_token("u-1", role, **scope)


def test_issue_checks_subject_and_ttl(authority: TokenAuthority) -> None:
    with pytest.raises(ConfigurationError, match="opaque id"):
        authority.issue_token("Amina El Idrissi", "central")
    with pytest.raises(ConfigurationError, match="ttl"):
        authority.issue_token("u-1", "central", ttl=MAX_TTL + 1)
    with pytest.raises(ConfigurationError, match="ttl"):
        authority.issue_token("u-1", "central", ttl=0)


# -- the least-privilege table ---------------------------------------------------------------------

OWN_POST, OTHER_POST = "MA-FR-PAR", "MA-ES-MAD"
OWN_CASE, OTHER_CASE = "RR-2026-000001", "RR-2026-000002"

PRINCIPALS = {
    "applicant": Principal("u-a", "applicant", case=OWN_CASE),
    "post_staff": Principal("u-p", "post_staff", post=OWN_POST),
    "central": Principal("u-c", "central"),
    "call_centre": Principal("u-cc", "call_centre"),
    "agency": Principal("narsa-gw", "agency", agency="narsa"),
    "admin": Principal("u-ops", "admin"),
}

# role: (read own-scope case, read other case, contents own, contents other, change own,
#        change other, operate, inbound as narsa, inbound as dgsn)
TABLE = {
    "applicant":   (True,  False, True,  False, False, False, False, False, False),
    "post_staff":  (True,  False, True,  False, True,  False, False, False, False),
    "central":     (True,  True,  True,  True,  True,  True,  False, False, False),
    "call_centre": (True,  True,  False, False, False, False, False, False, False),
    "agency":      (False, False, False, False, False, False, False, True,  False),
    "admin":       (False, False, False, False, False, False, True,  False, False),
}


@pytest.mark.parametrize("role", TABLE)
def test_least_privilege_table(role: str) -> None:
    who = PRINCIPALS[role]
    own, other = (OWN_POST, OWN_CASE), (OTHER_POST, OTHER_CASE)
    actual = (who.can_read_case(*own), who.can_read_case(*other),
              who.can_read_case_contents(*own), who.can_read_case_contents(*other),
              who.can_change_case(*own), who.can_change_case(*other),
              who.can_operate(), who.can_call_inbound("narsa"), who.can_call_inbound("dgsn"))
    assert actual == TABLE[role]


def test_applicant_scope_is_the_case_not_the_post() -> None:
    who = PRINCIPALS["applicant"]
    assert who.can_read_case(OTHER_POST, OWN_CASE) and who.owns_case(OWN_CASE)
    assert not who.can_read_case(OWN_POST, OTHER_CASE)
    assert not PRINCIPALS["post_staff"].owns_case(OWN_CASE)


def test_verified_tokens_carry_their_scope(authority: TokenAuthority) -> None:
    who = authority.verify_token(authority.issue_token("u-a", "applicant", case=OWN_CASE))
    assert who.can_read_case_contents(OTHER_POST, OWN_CASE)
    assert not who.can_read_case_contents(OTHER_POST, OTHER_CASE)
    agency = authority.verify_token(authority.issue_token("narsa-gw", "agency", agency="narsa"))
    assert agency.can_call_inbound("narsa") and not agency.can_call_inbound("health")
