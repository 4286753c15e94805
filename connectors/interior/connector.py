"""Ministry of Interior over SOAP: burial permits at the commune of burial.

Operation (see ``docs/exchanges.md``): ``burial_permit`` -> ``granted``, ``refused``.
Wire format: ``schemas/v1/agencies/interior.wsdl`` and ``interior.xsd``; mappings:
``mappings/interior/``.
"""
from __future__ import annotations

from connectors.soap import SoapConnector, SoapOperation


class InteriorConnector(SoapConnector):
    operations = {
        "burial_permit": SoapOperation("BurialPermit", service_code="burialPermit"),
    }
