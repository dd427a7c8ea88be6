"""The API app's worker threads follow the requests one process serves at once (Lambda Managed Instances'
PerExecutionEnvironmentMaxConcurrency, told as GATEWAY_CONCURRENCY_PER_ENVIRONMENT)."""

from __future__ import annotations

import pytest

from llm_gateway.api import asgi
from llm_gateway.config import Settings, get_settings
from llm_gateway.errors import ConfigurationError


def test_a_process_told_its_concurrency_runs_a_thread_per_request_and_spares() -> None:
    assert asgi.worker_threads(512) == 512 + asgi.SPARE_WORKER_THREADS
    assert asgi.worker_threads(1) == 1 + asgi.SPARE_WORKER_THREADS
    assert asgi.worker_threads(None) == asgi.WORKER_THREADS


def test_the_setting_takes_lambdas_range_only() -> None:
    assert Settings.from_environ({}).concurrency_per_environment is None
    assert Settings.from_environ({"GATEWAY_CONCURRENCY_PER_ENVIRONMENT": "1600"}).concurrency_per_environment == 1600
    for bad in ("0", "1601", "many"):
        with pytest.raises(ConfigurationError, match="concurrency_per_environment"):
            Settings.from_environ({"GATEWAY_CONCURRENCY_PER_ENVIRONMENT": bad})


def test_the_pool_is_sized_from_the_setting_at_its_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CONCURRENCY_PER_ENVIRONMENT", "300")
    monkeypatch.setattr(asgi, "_workers", None)
    get_settings.cache_clear()
    try:
        assert asgi._submit(sum, [1, 2]).result(timeout=5) == 3
        assert asgi._workers is not None
        assert asgi._workers._max_workers == 308
        asgi._workers.shutdown(wait=True)
    finally:
        get_settings.cache_clear()
