"""Personal access tokens (security.tokens): role admin operates the hub, other roles do not."""
from __future__ import annotations

import pytest



@pytest.fixture
def authority(ops_hub):  # type: ignore[no-untyped-def]
    return ops_hub.tokens


def test_an_admin_token_operates_and_names_the_operator(client, authority, ops_hub):
    token = authority.issue_token("u-ops-7", "admin")
    response = client.post("/admin/api/connectors/narsa/pause",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    from sqlalchemy import select

    from hub.store.models import AuditRow

    with ops_hub.store.session() as session:
        actors = list(session.scalars(select(AuditRow.actor).where(AuditRow.action == "paused")))
    assert actors == ["admin:u-ops-7"]


def test_other_roles_and_forged_tokens_are_refused(client, authority):
    staff = authority.issue_token("u-post-1", "post_staff", post="ES-MAD")
    response = client.get("/admin/api/overview", headers={"Authorization": f"Bearer {staff}"})
    assert response.status_code == 401
    assert "does not operate the hub" in response.json["error"]["message"]
    admin = authority.issue_token("u-ops-7", "admin")
    forged = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    response = client.get("/admin/api/overview", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_console_sign_in_with_a_personal_token(client, authority):
    token = authority.issue_token("u-ops-7", "admin")
    response = client.post("/admin/login", data={"name": "ignored", "token": token})
    assert response.status_code == 302
    page = client.get("/admin/").data.decode()
    assert 'class="who">u-ops-7<' in page
    refused = client.post("/admin/login", data={"token": authority.issue_token("u-cc", "call_centre")})
    assert refused.status_code == 403


