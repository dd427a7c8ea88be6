"""Memory per concurrent request in one API function process, as on Lambda Managed Instances: N chat requests in
flight at once, each streaming a model's answer slowly, against the same process with one.

The function starts as `bench/memory.py` starts it (functions/api/run.sh, uvicorn serving app.py, the layer's
package; budgets and usage in moto's DynamoDB through boto3). For each concurrency N, a fresh process serves N
streamed chat requests sent at once (a 2 KB prompt, the OpenAI-compatible model of a fake server streaming 40
chunks 50 ms apart, so every request is in flight for about 2 s); the process's resident set is sampled every
20 ms meanwhile. Printed: the resident set once ready, its peak (VmHWM), and the peak's growth per request in
flight over the ready process, (peak - ready) / N, in MiB; and the process's CPU (user + system) while it served
them, per request, in ms. Each process is told its concurrency as Lambda Managed Instances' template tells it
(GATEWAY_CONCURRENCY_PER_ENVIRONMENT, which sizes its worker threads), so every request is in flight at once.

    .venv/bin/python bench/memory_concurrency.py [--concurrency 1,16,96,256,512] [--python /tmp/py313-layer/bin/python]
"""

from __future__ import annotations

import argparse
import platform
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory
from memory import (
    PROJECT_ROOT,
    SMALL_PROMPT,
    Function,
    cpu_seconds,
    function_environment,
    proc_status,
    run_header,
)

from emulator.aws import MotoProcess
from tests.fakes.openai_server import FakeOpenAIServer, delta_chunk, usage_chunk

CHUNKS = 40
CHUNK_SECONDS = 0.05


def in_flight(environment: dict[str, str], concurrency: int, upstream: FakeOpenAIServer) -> tuple[float, float, float]:
    """(ready MiB, peak MiB, CPU ms per request) of a fresh function process serving `concurrency` slow streamed
    requests at once."""
    function = Function.start({**environment, "GATEWAY_CONCURRENCY_PER_ENVIRONMENT": str(concurrency)})
    try:
        pid = function.process.pid
        # One request first: what every environment builds once (clients, the registry) is not per request.
        upstream.enqueue(stream=[delta_chunk(content="warm"), delta_chunk(finish_reason="stop"), usage_chunk(400, 1)])
        assert memory.chat(SMALL_PROMPT, "upstream", stream=True)(function) == 200
        ready = proc_status(pid)["VmRSS"] / 1024
        for _ in range(concurrency):
            chunks = [delta_chunk(content=f"token{i} ") for i in range(CHUNKS)]
            upstream.enqueue(
                stream=[*chunks, delta_chunk(finish_reason="stop"), usage_chunk(400, CHUNKS)],
                frame_delay=CHUNK_SECONDS,
            )
        send = memory.chat(SMALL_PROMPT, "upstream", stream=True)
        cpu_before = cpu_seconds(pid)
        statuses: list[int] = []
        threads = [threading.Thread(target=lambda: statuses.append(send(function))) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        peak = ready
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, proc_status(pid)["VmRSS"] / 1024)
            time.sleep(0.02)
        for thread in threads:
            thread.join()
        cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / concurrency
        assert statuses == [200] * concurrency, statuses
        return ready, max(peak, proc_status(pid)["VmHWM"] / 1024), cpu_ms
    finally:
        function.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--concurrency", default="1,16,96,256,512", help="comma-separated numbers of requests in flight"
    )
    parser.add_argument("--python", type=Path, help="interpreter for the function (default: .venv's)")
    args = parser.parse_args()
    moto = MotoProcess()
    upstream = FakeOpenAIServer().start()
    try:
        python = args.python or PROJECT_ROOT / ".venv" / "bin" / "python"
        environment = function_environment(moto, upstream, python, time_budget_seconds=30)
        commit, version = run_header(python)
        print(f"at {commit}, {version} ({platform.machine()}), streamed chat requests in flight at once")
        print(f"{'in flight':>10}{'ready MiB':>11}{'peak MiB':>10}{'MiB per request':>17}{'CPU ms per request':>20}")
        for concurrency in (int(value) for value in args.concurrency.split(",")):
            ready, peak, cpu_ms = in_flight(environment, concurrency, upstream)
            print(
                f"{concurrency:>10}{ready:>11.1f}{peak:>10.1f}{(peak - ready) / concurrency:>17.2f}{cpu_ms:>20.1f}",
                flush=True,
            )
    finally:
        upstream.close()
        moto.stop()


if __name__ == "__main__":
    main()
