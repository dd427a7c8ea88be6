"""A message thread's expiry brought forward in the local gateway's store (its SQLite file, named in the banner), so
that a test sees what a client sees 5 minutes after a thread's last reply without waiting for them."""

from __future__ import annotations

import re
import sqlite3
import time
from contextlib import closing

from tests.e2e.conftest import LocalGateway


def expire_thread(gateway: LocalGateway, message_id: str) -> None:
    """Sets the expiry of the thread kept under `message_id` (the reply's id) a second in the past: the store then
    reads it as gone, exactly as when its time runs out."""
    found = re.search(r"^state: (\S+)", gateway.text(), re.MULTILINE)
    assert found, "the gateway names its state file when it starts"
    with closing(sqlite3.connect(found.group(1), timeout=10)) as database, database:
        changed = database.execute(
            "UPDATE stored_responses SET expires_at = ? WHERE response_id = ?", (int(time.time()) - 1, message_id)
        ).rowcount
    assert changed == 1, f"no thread is kept under {message_id}"
