"""``hub keys``: the key lifecycle (docs/security.md, "Key lifecycle").

    hub keys init [--algorithm ec|rsa] [--force]   development PKI, data keys, blind index key
    hub keys status                                certificates, CRL, data keys
    hub keys revoke PARTY [--purpose P]            put a certificate on the CRL
    hub keys crl                                   re-sign the CRL (new nextUpdate)
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from hub.cli.common import settings
from hub.errors import HubError


def register(main: click.Group) -> None:
    main.add_command(keys)


@click.group()
def keys() -> None:
    """Keys and certificates: create, inspect, rotate, revoke."""


@keys.command()
@click.option("--algorithm", type=click.Choice(["ec", "rsa"]),
              help="Key type (default: from HUB_SIGNATURE_ALGORITHM, ecdsa-p256 -> ec).")
@click.option("--force", is_flag=True,
              help="Replace the PKI (new CA and certificates); data keys are kept.")
def init(algorithm: str | None, force: bool) -> None:
    """Create the development PKI, the data-key ring and the blind index key in HUB_KEYS_DIR."""
    from hub.keys import init_keys

    current = settings()
    try:
        layout = init_keys(current.keys_dir, algorithm=algorithm or current.key_algorithm,
                           force=force)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"keys in {layout.keys_dir} ({layout.algorithm.upper()}): "
               f"{', '.join(layout.parties)}")
    click.echo(f"give agencies {layout.ca_cert} and {layout.crl}; keep {layout.ca_key} offline")


@keys.command()
def status() -> None:
    """Certificates (expiry, revocation), the CRL's next update, the data keys."""
    from cryptography import x509

    from security.fieldcrypt import DATA_KEYS_FILE, KeyRing
    from security.pki import PURPOSES, PkiLayout

    current = settings(quiet=True)
    try:
        layout = PkiLayout.read(current.keys_dir)
        ring = KeyRing.load(current.keys_dir / DATA_KEYS_FILE)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    revoked: set[int] = set()
    if layout.crl.is_file():
        crl = x509.load_pem_x509_crl(layout.crl.read_bytes())
        revoked = {entry.serial_number for entry in crl}
        click.echo(f"CRL: {len(revoked)} revoked, next update "
                   f"{crl.next_update_utc.isoformat() if crl.next_update_utc else '-'}")
    now = datetime.now(timezone.utc)
    for party in layout.parties:
        for purpose in PURPOSES:
            path = layout.cert_path(party, purpose)
            if not path.is_file():
                continue
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            state = ("revoked" if cert.serial_number in revoked
                     else "expired" if cert.not_valid_after_utc < now else "valid")
            click.echo(f"{party:10} {purpose:11} {state:8} until "
                       f"{cert.not_valid_after_utc:%Y-%m-%d}")
    click.echo(f"data keys: {', '.join(ring.key_ids)} (active {ring.active_key_id})")


@keys.command()
@click.argument("party")
@click.option("--purpose", type=click.Choice(["signing", "tls-server", "tls-client", "all"]),
              default="all", show_default=True)
def revoke(party: str, purpose: str) -> None:
    """Put PARTY's certificates on the CRL (verifiers refuse them once they reload the CRL)."""
    from security.pki import PURPOSES
    from security.pki import revoke as revoke_certificate

    current = settings()
    purposes = PURPOSES if purpose == "all" else (purpose,)
    try:
        for name in purposes:
            serial = revoke_certificate(current.keys_dir, party, name)  # type: ignore[arg-type]
            click.echo(f"revoked {party} {name} certificate (serial {serial:x})")
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    click.echo("restart hub processes (or let them reload) so that they read the new CRL")


@keys.command()
def crl() -> None:
    """Re-sign the CRL with a new nextUpdate (run it well within the 30-day validity)."""
    from security.pki import refresh_crl

    current = settings()
    try:
        refresh_crl(current.keys_dir)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"CRL refreshed: {current.keys_dir / 'crl.pem'}")
