"""The web console on the local gateway: its built files under /console/ and the settings that point it here."""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from emulator import PROJECT_ROOT
from emulator.events import HttpReply

CONSOLE_PATH = "/console"
# Where `make console` (npm run build in console/) puts the bundle.
CONSOLE_DIST = PROJECT_ROOT / "console" / "dist"
# The bundle loads nothing from elsewhere; locally it calls only this origin (the admin API under the stage).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


def console_reply(path: str, stage: str, dist: Path = CONSOLE_DIST) -> HttpReply:
    """The console file at `path` (under /console/), `config.json` made for this gateway (local admin-key sign-in,
    the admin API of `stage`), or a JSON 404 (unknown file, or a console not built yet)."""
    if path == CONSOLE_PATH:
        return HttpReply(301, {"Location": CONSOLE_PATH + "/", "Content-Type": "text/plain"}, b"")
    name = path[len(CONSOLE_PATH) + 1 :] or "index.html"
    if name == "config.json":
        settings = {"auth": "admin-key", "adminApi": f"/{stage}/admin", "gatewayUrl": f"/{stage}"}
        return HttpReply(
            200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, json.dumps(settings).encode()
        )
    root = dist.resolve()
    file = (root / name).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        message = "Not found" if (root / "index.html").is_file() else "The console is not built: run `make console`"
        return HttpReply(404, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    # Vite names assets by their content's hash, so they never change; index.html names the current ones.
    cache = "public, max-age=31536000, immutable" if name.startswith("assets/") else "no-cache"
    headers = {
        "Content-Type": content_type + ("; charset=utf-8" if content_type.startswith("text/") else ""),
        "Cache-Control": cache,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HttpReply(200, headers, file.read_bytes())
