"""HTTP for connectors: one pooled `requests.Session` per connector, bounded answers, and the
mapping of transport failures into `hub.errors` that REST and SOAP connectors share.

    session = agency_session(config)
    answer = exchange(session, "POST", url, body=b"...", headers={...}, agency="dgsn",
                      timeout=config.timeout)
    answer.status, answer.headers["Content-Type"], answer.content

Transport failures: a timeout is `AgencyTimeout`; a refused, reset or broken connection is
`AgencyUnavailable`; an answer larger than `MAX_REPLY_BYTES` is `BadAgencyReply` (refused unread).
The HTTP status is left to the caller, whose protocol decides what a 500 means (a SOAP fault is a
500 with a body worth reading).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from hub.errors import AgencyTimeout, AgencyUnavailable, BadAgencyReply

#: Largest answer accepted from an agency, before parsing.
MAX_REPLY_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CaseInsensitiveDict
    content: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


def agency_session(concurrency: int = 4, *, verify: bool | str = True,
                   cert: str | tuple[str, str] | None = None) -> requests.Session:
    """A session whose pool fits the connector's concurrency; TLS settings from the agency."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, concurrency))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.verify = verify
    if cert is not None:
        session.cert = cert
    session.trust_env = False  # agencies are reached directly, never through a proxy variable
    return session


def connector_session(concurrency: int, options: Mapping[str, object],
                      tls_session: Callable[[], requests.Session] | None = None
                      ) -> requests.Session:
    """The session a connector talks to its agency with: pinned mutual TLS when the hub gives
    one (`connectors.base.ConnectorDeps.tls_session`, from
    `hub.runtime.Hub.connector_dependencies`), else plain `agency_session` with the agency's own
    TLS options."""
    if tls_session is not None:
        return tls_session()
    return agency_session(concurrency, **tls_options(options))  # type: ignore[arg-type]


def tls_options(options: Mapping[str, object]) -> dict[str, object]:
    """``verify``/``cert`` for `agency_session` from an agency's options (``ca_file``,
    ``client_cert``, ``client_key``)."""
    verify: bool | str = str(options["ca_file"]) if options.get("ca_file") else True
    cert = None
    if options.get("client_cert"):
        cert = ((str(options["client_cert"]), str(options["client_key"]))
                if options.get("client_key") else str(options["client_cert"]))
    return {"verify": verify, "cert": cert}


def exchange(session: requests.Session, method: str, url: str, *, body: bytes,
             headers: Mapping[str, str], agency: str, timeout: float) -> Answer:
    """Send one request; return the answer read up to `MAX_REPLY_BYTES`."""
    try:
        response = session.request(method, url, data=body, headers=dict(headers),
                                   timeout=(min(3.0, timeout), timeout), stream=True)
        try:
            # Read at most one byte over the limit: an oversized answer is refused unread.
            content = response.raw.read(MAX_REPLY_BYTES + 1, decode_content=True)
            if len(content) <= MAX_REPLY_BYTES:
                # Fully read: lets close() hand the connection back to the pool.
                response._content_consumed = True  # noqa: SLF001
        finally:
            response.close()
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise AgencyTimeout(f"{agency} did not answer within {timeout}s") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise AgencyUnavailable(f"{agency} unreachable: {type(exc).__name__}") from None
    except (OSError, ValueError) as exc:
        raise AgencyUnavailable(f"{agency} connection failed: {exc!r}") from None
    if len(content) > MAX_REPLY_BYTES:
        raise BadAgencyReply(f"{agency} answer exceeds {MAX_REPLY_BYTES} bytes")
    return Answer(status=response.status_code, headers=response.headers, content=content)
