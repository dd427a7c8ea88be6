"""A Lambda context object for invoking handlers outside Lambda (local gateway, tests, benchmarks)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LocalLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


@dataclass
class LambdaFunction:
    """A function with a plain handler, run the way a Lambda execution environment runs it: one event at a
    time. Such functions share one lock, as they share Powertools' logger and metrics in this process."""

    name: str
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    timeout_seconds: float
    lock: threading.Lock

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(function_name=self.name, timeout_seconds=self.timeout_seconds)
        with self.lock:
            return self.handler(event, context)
