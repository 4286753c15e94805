"""The back-office with the security package's real tokens, and documents under its key ring."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from hub.demo.scenarios import sample_request
from hub.errors import SignatureInvalid
from hub.store.models import AttachmentRow
from hub.web.app import create_app
from security.keys import KeyStore
from security.pki import init_pki
from security.tokens import TokenAuthority
from webkit import PDF, with_uploaded_documents


@pytest.fixture
def keyed_hub(mock_hub, tmp_path):
    keys = tmp_path / "keys"
    init_pki(keys, ["hub"])
    return mock_hub(env={"HUB_KEYS_DIR": str(keys)})


def test_staff_tokens_of_the_hub_authority_are_verified_and_scoped(keyed_hub):
    hub = keyed_hub
    web = create_app(hub).test_client()  # default authenticator: the hub's token authority
    data = with_uploaded_documents(web, sample_request("consular_registration_new"))
    reference = web.post("/api/v1/services/consular_registration_new/requests",
                         json=data).get_json()["reference"]
    authority = TokenAuthority(KeyStore.load(hub.settings.keys_dir).signer("hub"))
    madrid = authority.issue_token("u-1", "post_staff", post="ES-MAD")
    paris = authority.issue_token("u-2", "post_staff", post="FR-PAR")
    url = f"/api/v1/backoffice/cases/{reference}"
    assert web.get(url, headers={"Authorization": f"Bearer {madrid}"}).status_code == 200
    assert web.get(url, headers={"Authorization": f"Bearer {paris}"}).status_code == 403
    forged = madrid[:-4] + ("AAAA" if not madrid.endswith("AAAA") else "BBBB")
    response = web.get(url, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "security.token"

    # `hub staff token` issues the same kind of token.
    from hub.cli import main

    result = CliRunner().invoke(main, ["staff", "token", "--role", "central", "--subject", "u-9"],
                                env={"HUB_KEYS_DIR": str(hub.settings.keys_dir),
                                     "HUB_DATA_DIR": str(hub.settings.data_dir)})
    assert result.exit_code == 0, result.output
    central = result.stdout.strip()
    assert web.get(url, headers={"Authorization": f"Bearer {central}"}).status_code == 200


def test_documents_are_sealed_to_their_reference(hub):
    with hub.store.transaction() as session:
        one = hub.attachments.put(session, PDF, declared_type="application/pdf",
                                  uploaded_by="applicant")
        two = hub.attachments.put(session, PDF, declared_type="application/pdf",
                                  uploaded_by="applicant")
        one.case_id = two.case_id = None
    root = hub.attachments.root
    # A file copied under another reference does not open; neither does an altered one.
    (root / two.storage_key).write_bytes((root / one.storage_key).read_bytes())
    with hub.store.session() as session:
        row = session.get(AttachmentRow, two.id)
        with pytest.raises(SignatureInvalid):
            hub.attachments.cipher.decrypt((root / row.storage_key).read_bytes(),
                                           context=two.id.encode())
    blob = bytearray((root / one.storage_key).read_bytes())
    blob[-5] ^= 1
    with pytest.raises(SignatureInvalid):
        hub.attachments.cipher.decrypt(bytes(blob), context=one.id.encode())
