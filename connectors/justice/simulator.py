"""Justice simulator: both directions of the judicial-documents exchange.

- Justice -> hub: `JusticeSimulator.send_document` submits a judicial document to the hub's SOAP
  endpoint with Zeep, as a client of the WSDL the hub serves (``/inbound/v1/justice?wsdl``), and
  remembers the reference it sent (operator endpoint: ``POST /_sim/justice/documents`` with
  ``{"hub_url": ..., "document": {...}}``).
- hub -> Justice: the ``DeliveryCertificate`` SOAP operation answers ``RECEIVED`` for a reference
  this simulator sent (or one listed in the ``known_references`` option), ``REJECTED`` otherwise.

Options: ``client`` (Justice's X-Road identity), ``token`` (bearer credential for the hub, until
message signatures replace it), ``known_references``.
"""
from __future__ import annotations

import itertools
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

import requests
from flask import Flask, Response, jsonify, request

from connectors.soap import LocalTransport
from connectors.soap_simulator import SoapSimulator
from connectors.xml import XRoadHeader
from hub.errors import AgencyUnavailable, ConfigurationError

CLIENT = "MA/GOV/JUSTICE/NOTIFICATIONS"
HUB_SERVICE = "MA/GOV/MAEC/ECONSULAT-HUB/submitJudicialDocument/v1"


class JusticeSimulator(SoapSimulator):
    agency = "justice"
    namespace = "urn:ma:gov:justice:v1"
    path = "/justice/soap"
    handlers = {"DeliveryCertificateRequest": "delivery_certificate"}

    def routes(self, app: Flask) -> None:
        self._serial = itertools.count(1)
        self._references = itertools.count(1)
        #: justice reference -> the hub's case reference, for every document sent.
        self.sent: dict[str, str] = {}
        self._sent_lock = threading.Lock()
        super().routes(app)

        @app.post("/_sim/justice/documents")
        def send() -> tuple[Response, int]:
            spec = request.get_json(force=True, silent=True) or {}
            try:
                reference = self.send_document(spec["hub_url"], spec.get("document") or {})
            except (KeyError, AgencyUnavailable, ConfigurationError) as exc:
                return jsonify(error=str(exc)), 400
            return jsonify(reference), 201

    # -- hub -> Justice ----------------------------------------------------------------------------

    def delivery_certificate(self, body: dict) -> tuple[str, dict]:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        reference = body["justiceReference"]
        with self._sent_lock:
            known = reference in self.sent or reference in self.options.get(
                "known_references", ())
        return "DeliveryCertificateResponse", {
            "acknowledgementId": f"AC-{now.year}-{next(self._serial):06d}",
            "status": "RECEIVED" if known else "REJECTED",
            "reason": None if known else "no judicial document was sent under this reference",
            "receivedAt": now.isoformat().replace("+00:00", "Z"),
        }

    # -- Justice -> hub ----------------------------------------------------------------------------

    def new_reference(self) -> str:
        return f"MJ-{datetime.now(timezone.utc).year}-{next(self._references):06d}"

    def send_document(self, hub_url: str, document: dict[str, Any], *,
                      message_id: str | None = None) -> dict[str, Any]:
        """Submit ``document`` (the wire fields of ``SubmitJudicialDocumentRequest``; a
        ``justiceReference`` is added when absent) to the hub; returns the hub's answer."""
        import zeep
        import zeep.exceptions
        import zeep.helpers

        document = dict(document)
        document.setdefault("justiceReference", self.new_reference())
        session = self.hub_session()
        if self.options.get("token"):
            session.headers["Authorization"] = f"Bearer {self.options['token']}"
        base = hub_url.rstrip("/")
        transport = LocalTransport(session=session, timeout=10, operation_timeout=10,
                                   allowed=(base,))
        header = XRoadHeader(client=self.options.get("client", CLIENT), service=HUB_SERVICE,
                             id=message_id or str(uuid.uuid4()), user_id="greffe",
                             issue=document["justiceReference"])
        try:
            client = zeep.Client(f"{base}/inbound/v1/justice?wsdl", transport=transport,
                                 wsse=_Signatures(self.signing) if self.signing else None)
            result = client.service.SubmitJudicialDocument(_soapheaders=header.elements(),
                                                           **document)
        except zeep.exceptions.Fault as fault:
            raise AgencyUnavailable(f"the hub refused the document: {fault.message}",
                                    fault_code=fault.code) from None
        except (zeep.exceptions.Error, requests.RequestException, OSError) as exc:
            raise AgencyUnavailable(f"the hub could not be reached: {exc}") from None
        finally:
            session.close()
        answer = zeep.helpers.serialize_object(getattr(result, "body", result), target_cls=dict)
        if isinstance(answer, dict) and set(answer) == {"body"}:
            answer = answer["body"]
        with self._sent_lock:
            self.sent[document["justiceReference"]] = answer["caseReference"]
        return {"justiceReference": document["justiceReference"], **answer}


class _Signatures:
    """Zeep's WS-Security hook: sign what Justice sends, verify what the hub answers."""

    def __init__(self, signing: Any) -> None:
        self.signing = signing

    def apply(self, envelope: Any, headers: dict) -> tuple[Any, dict]:
        return self.signing.sign_soap(envelope), headers

    def verify(self, envelope: Any) -> Any:
        from lxml import etree

        from connectors.xml import SOAP_ENV

        # A fault is left to zeep, unverified: it changes nothing here and a refusal by the
        # hub's front (or a gateway in between) is not signed. Only answers are acted upon.
        if envelope.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault") is not None:
            return envelope
        self.signing.verify_soap(etree.tostring(envelope), "hub")
        return envelope
