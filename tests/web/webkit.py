"""Helpers of the web tests: sample documents and uploading them."""
from __future__ import annotations

from typing import Any

from hub.store.attachments import document_fields
from hub.mapping import set_path

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"


def upload(client: Any, content: bytes = PDF, content_type: str = "application/pdf") -> str:
    response = client.post("/api/v1/attachments", data=content, content_type=content_type)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def with_uploaded_documents(client: Any, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every document reference replaced by a real upload."""
    for path, _ in list(document_fields(data)):
        set_path(data, path, upload(client))
    return data


def staff_tokens() -> dict[str, Any]:
    """Opaque test tokens and the principals they stand for."""
    from hub.cases.access import Principal

    return {
        "madrid": Principal("u-madrid", "post_staff", post="ES-MAD"),
        "paris": Principal("u-paris", "post_staff", post="FR-PAR"),
        "central": Principal("u-dacs", "central"),
        "callcentre": Principal("u-cc", "call_centre"),
        "admin": Principal("u-admin", "admin"),
    }


def authenticator(tokens: dict[str, Any]):
    from hub.errors import SecurityError

    def authenticate(token: str) -> Any:
        if token not in tokens:
            raise SecurityError("unknown token", code="security.token")
        return tokens[token]

    return authenticate


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"}


def submit(client: Any, service: str = "consular_registration_new", **changes: Any) -> dict[str, Any]:
    """Submit a sample request of ``service`` (documents uploaded first); the 201 body."""
    from hub.demo.scenarios import sample_request

    data = with_uploaded_documents(client, sample_request(service, **changes))
    response = client.post(f"/api/v1/services/{service}/requests", json=data)
    assert response.status_code == 201, response.get_json()
    return response.get_json()
