"""The local gateway's console files: the bundle under /console/, config.json for this stage, nothing outside."""

from __future__ import annotations

import json
from pathlib import Path

from emulator.console import console_reply, is_console_path


def built(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir(parents=True)
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets" / "index-abc.js").write_text("export {}")
    return tmp_path


def test_the_console_paths_and_no_others() -> None:
    assert is_console_path("/console") and is_console_path("/console/assets/x.js")
    assert not is_console_path("/consoles") and not is_console_path("/v1/console")


def test_index_assets_and_the_redirect_to_the_slash(tmp_path: Path) -> None:
    dist = built(tmp_path)
    assert console_reply("/console", "v1", dist).headers["Location"] == "/console/"
    index = console_reply("/console/", "v1", dist)
    assert index.status == 200 and index.body.startswith(b"<!doctype html>")
    assert index.headers["Content-Type"] == "text/html; charset=utf-8" and index.headers["Cache-Control"] == "no-cache"
    assert "connect-src 'self'" in index.headers["Content-Security-Policy"]
    asset = console_reply("/console/assets/index-abc.js", "v1", dist)
    assert asset.status == 200 and "immutable" in asset.headers["Cache-Control"]


def test_config_points_at_this_stages_admin_api_with_admin_key_sign_in(tmp_path: Path) -> None:
    reply = console_reply("/console/config.json", "v2", built(tmp_path))
    assert json.loads(reply.body) == {"auth": "admin-key", "adminApi": "/v2/admin", "gatewayUrl": "/v2"}


def test_no_file_outside_the_bundle_and_a_clear_answer_when_not_built(tmp_path: Path) -> None:
    dist = built(tmp_path / "dist")
    (tmp_path / "secret.txt").write_text("outside")
    outside = console_reply("/console/../secret.txt", "v1", dist)
    assert outside.status == 404 and b"outside" not in outside.body
    assert console_reply("/console/missing.js", "v1", dist).status == 404
    unbuilt = console_reply("/console/", "v1", tmp_path / "empty")
    assert unbuilt.status == 404 and b"make console" in unbuilt.body
