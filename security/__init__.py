"""Keys, signatures, trust, encryption and access control for the hub.

Each module is one concept and converts every lower-level error (lxml, signxml, joserfc,
cryptography) into a `hub.errors` class:

- `security.pki`: development PKI (CA, signing and TLS certificates per party, CRL).
- `security.keys`: `KeyStore`, everything loaded once from the keys directory.
- `security.trust`: `TrustStore`, which certificate may speak for which party.
- `security.safexml`: hardened XML parsing (no DTD, entities, PIs; size and depth limits).
- `security.xmldsig`: XML-DSig for SOAP (Body by wsu:Id, signature in wsse:Security) and documents.
- `security.jws`: compact and detached JWS (ES256/RS256) for REST agencies and envelopes.
- `security.replay`: `ReplayGuard`, freshness window and seen message ids.
- `security.fieldcrypt`: `KeyRing`, AES-256-GCM encryption of personal fields and files at rest.
- `security.tokens`: access tokens, roles and `Principal` permission checks.
- `security.tls`: mTLS contexts and a pinning requests adapter.

docs/security.md has the threat model and how agencies verify what the hub sends.
"""
