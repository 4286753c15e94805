"""``hub staff``: access tokens for consular staff (until an identity provider issues them)."""
from __future__ import annotations

import click

from hub.cli.common import settings


def register(main: click.Group) -> None:
    main.add_command(staff)


@click.group()
def staff() -> None:
    """Consular staff access to the back-office."""


@staff.command()
@click.option("--role", type=click.Choice(["post_staff", "central", "call_centre"]),
              required=True)
@click.option("--post", help="The post's code, for post_staff (e.g. ES-MAD).")
@click.option("--subject", required=True, help="An opaque user id (never a name or e-mail).")
@click.option("--ttl", default=3600, show_default=True, help="Lifetime in seconds (max 8 h).")
def token(role: str, post: str | None, subject: str, ttl: int) -> None:
    """Print a signed access token for the back-office (Authorization: Bearer <token>)."""
    from hub.errors import HubError
    from hub.cases.posts import get_post
    from security.keys import KeyStore
    from security.tokens import TokenAuthority

    if role == "post_staff" and (post is None or get_post(post) is None):
        raise click.BadParameter("post_staff needs --post with a known post code", param_hint="--post")
    try:
        authority = TokenAuthority(KeyStore.load(settings(quiet=True).keys_dir).signer("hub"))
        click.echo(authority.issue_token(subject, role,  # type: ignore[arg-type]
                                         post=post if role == "post_staff" else None, ttl=ttl))
    except HubError as exc:
        raise click.ClickException(exc.message) from None
