"""``hub keys``: the key lifecycle (docs/security.md, "Key lifecycle").

    hub keys init [--algorithm ec|rsa] [--force]   development PKI, data keys, blind index key,
                                                   the console's operator token
    hub keys add PARTY                             keys for an agency packaged since `init`
    hub keys status                                certificates, CRL, data keys
    hub keys revoke PARTY [--purpose P]            put a certificate on the CRL
    hub keys crl                                   re-sign the CRL (new nextUpdate)
    hub keys rotate [--batch N]                    new data key, re-encrypt rows, retire old keys
    hub keys reencrypt [--batch N]                 resume an interrupted re-encryption
"""
from __future__ import annotations

from datetime import datetime, timezone

import click

from hub.cli.common import build_hub, progress_stream, settings
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
    """Create the development PKI (the hub and every packaged agency), the data-key ring, the
    blind index key and the console's operator token in HUB_KEYS_DIR."""
    from connectors.registry import key_parties
    from hub.keyset import init_keys, init_operator_token

    current = settings()
    try:
        layout = init_keys(current.keys_dir, algorithm=algorithm or current.key_algorithm,
                           force=force, parties=key_parties())
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"keys in {layout.keys_dir} ({layout.algorithm.upper()}): "
               f"{', '.join(layout.parties)}")
    click.echo(f"give agencies {layout.ca_cert} and {layout.crl}; keep {layout.ca_key} offline")
    token = init_operator_token(layout.keys_dir)
    if current.admin_token:
        click.echo(f"operator token: HUB_ADMIN_TOKEN is set, so {token} is not used")
    else:
        click.echo(f"operator token for the console (/admin/): in {token} (mode 0600)")


@keys.command()
@click.argument("party")
def add(party: str) -> None:
    """Issue PARTY's signing and TLS credentials from the existing CA (an agency packaged after
    `hub keys init`); nothing else changes. Processes trust it once they reload the keys."""
    from connectors.registry import packaged_agencies
    from hub.keyset import add_party

    current = settings()
    agencies = packaged_agencies()
    if party not in agencies:
        raise click.BadParameter(f"no packaged agency {party!r} (known: "
                                 f"{', '.join(sorted(agencies))})", param_hint="PARTY")
    try:
        layout = add_party(current.keys_dir, party)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"keys of {party} in {layout.party_dir(party)} (issued by {layout.ca_cert});"
               f" parties: {', '.join(layout.parties)}")


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


@keys.command()
@click.option("--batch", default=200, show_default=True, help="Rows per transaction.")
@click.option("--settle", type=float, default=None,
              help="Seconds to let running processes pick up the new key before the last pass "
                   "(default: their reload interval).")
def rotate(batch: int, settle: float | None) -> None:
    """Add a data key and make it active, re-encrypt every sealed row and document with it, then
    retire the keys nothing uses any more. Traffic goes on meanwhile (one short transaction per
    batch); if interrupted, `hub keys reencrypt` continues where it stopped."""
    _reencrypt(rotate=True, batch=batch, settle=settle)


@keys.command()
@click.option("--batch", default=200, show_default=True, help="Rows per transaction.")
def reencrypt(batch: int) -> None:
    """Re-encrypt what is not under the active data key yet (after an interrupted rotation, or
    rows stored in clear by versions before encryption at rest), then retire unused keys."""
    _reencrypt(rotate=False, batch=batch, settle=0.0)


def _reencrypt(*, rotate: bool, batch: int, settle: float | None) -> None:
    import signal
    import threading

    from hub.store.rekey import Progress, rotate_and_reencrypt

    hub = build_hub()
    hub.setup()
    job = hub.reencryption(batch=batch)
    ring = job.privacy.ring
    before = ring.active_key_id
    stream = progress_stream()
    last = [""]

    def show(state: Progress) -> None:
        share = 100 if not state.total else min(100, state.done * 100 // state.total)
        line = (f"re-encrypting with {ring.active_key_id}: {state.done}/{state.total} rows "
                f"({share}%)" + (f", {len(state.failed)} unreadable" if state.failed else ""))
        if line != last[0]:
            # One line rewritten in place on a terminal; one line per batch in a log file.
            end = "\r" if stream.isatty() else "\n"
            stream.write(line + end)
            stream.flush()
            last[0] = line

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # SIGINT/SIGTERM end the current batch and stop: the next run resumes from there.
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        report = rotate_and_reencrypt(job, settle=settle, progress=show, stop=stop,
                                      rotate=rotate)
    except HubError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        hub.close()
    if stream.isatty():
        stream.write("\n")
    if rotate:
        click.echo(f"data key rotated: {before} -> {ring.active_key_id}")
    moved = sum(report.moved.values())
    click.echo(f"re-encrypted {moved} rows and documents "
               f"({', '.join(f'{k} {v}' for k, v in report.moved.items() if v) or 'none'})")
    if report.retired:
        click.echo(f"retired: {', '.join(report.retired)}")
    if not report.complete:
        click.echo(f"{report.remaining} rows left, {len(report.failed)} unreadable "
                   f"({', '.join(report.failed[:10])}): run `hub keys reencrypt` again; old keys "
                   "are kept until nothing uses them", err=True)
        raise SystemExit(1)
