"""`hub keys init` creates the console's operator token and says where it is: an operator can
sign in to the console from the first visit (before, the file appeared only after a first,
failed sign-in)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from click.testing import CliRunner

from hub.cli import main
from hub.config import Settings
from hub.web.admin.auth import check_token, operator_token


def test_keys_init_creates_the_operator_token_and_names_its_file(tmp_path: Path):
    env = {"HUB_DATA_DIR": str(tmp_path / "data"), "HUB_KEYS_DIR": str(tmp_path / "keys"),
           "HUB_ADMIN_TOKEN": ""}
    result = CliRunner().invoke(main, ["keys", "init"], env=env)
    assert result.exit_code == 0, result.output
    path = tmp_path / "keys" / "admin-token"
    assert f"operator token for the console (/admin/): in {path}" in result.output
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = path.read_text("ascii").strip()
    assert len(token) >= 32
    # The console takes that token; running init again keeps it.
    settings = Settings.from_env(env)
    assert operator_token(settings) == token and check_token(settings, token)
    assert CliRunner().invoke(main, ["keys", "init"], env=env).exit_code == 0
    assert path.read_text("ascii").strip() == token


def test_with_hub_admin_token_set_init_says_the_file_is_not_used(tmp_path: Path):
    env = {"HUB_DATA_DIR": str(tmp_path / "data"), "HUB_KEYS_DIR": str(tmp_path / "keys"),
           "HUB_ADMIN_TOKEN": "from-the-environment"}
    result = CliRunner().invoke(main, ["keys", "init"], env=env)
    assert result.exit_code == 0, result.output
    assert "HUB_ADMIN_TOKEN is set" in result.output


def test_the_sign_in_page_says_where_the_operator_token_is(client):
    page = client.get("/admin/login").get_data(as_text=True)
    assert "admin-token" in page and "hub keys init" in page and "HUB_KEYS_DIR" in page
