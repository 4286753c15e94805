"""DGSN (national police) over SOAP: identity checks and notices to border posts.

Operations (see ``docs/exchanges.md``): ``verify_identity`` -> ``confirmed``, ``mismatch``,
``not_found``; ``notify_border`` -> ``cleared``, ``identity_mismatch``, ``refused``.
Wire format: ``schemas/v1/agencies/dgsn.wsdl`` and ``dgsn.xsd``; mappings: ``mappings/dgsn/``.
"""
from __future__ import annotations

from connectors.soap import SoapConnector, SoapOperation


class DgsnConnector(SoapConnector):
    operations = {
        "verify_identity": SoapOperation("VerifyIdentity", service_code="verifyIdentity"),
        "notify_border": SoapOperation("NotifyBorder", service_code="notifyBorder"),
    }
