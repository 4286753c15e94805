"""Ministry of Justice over SOAP, hub -> Justice: the certificate of delivery of a judicial
document (Justice -> hub documents arrive at `hub.web.inbound.health`).

Operation (see ``docs/exchanges.md``): ``delivery_certificate`` -> ``received``, ``rejected``.
Wire format: ``schemas/v1/agencies/justice.wsdl`` and ``justice.xsd``; mappings:
``mappings/justice/``.
"""
from __future__ import annotations

from connectors.soap import SoapConnector, SoapOperation


class JusticeConnector(SoapConnector):
    operations = {
        "delivery_certificate": SoapOperation("DeliveryCertificate",
                                              service_code="deliveryCertificate"),
    }
