"""Latency of `GET /api/public/v2/prompts/{name}` on loopback, uncached and cached.

Starts the web app (record store only, no telemetry engine) in a child process on a free
loopback port below 32768, creates a text prompt and a composed one (a prompt embedding
another through a reference), then times N sequential keep-alive requests per case with
an aiohttp client and prints p50/p99/max in milliseconds, end to end and as spent inside
the app (a `Server-Timing` header the bench server adds). "Uncached" runs the same server
with the prompt cache turned off, so every request reads the record store (and resolves the
reference for the composed prompt). Target: p99 < 5 ms cached.

    /tmp/venv/bin/python bench/prompts.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

PUBLIC_KEY = "pk-lf-bench"
SECRET_KEY = "sk-lf-bench"


def _free_port() -> int:
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below 32768")


def serve(port: int, data_dir: str, cache: bool) -> None:
    """The child process: the real app plus the prompt routes and use cases."""
    import punq
    from aiohttp import web

    from fathom.core.ports.prompts import PromptCache
    from fathom.core.ports.system import Clock
    from fathom.core.usecases import prompts as usecases
    from fathom.entrypoints.bootstrap import Runtime
    from fathom.entrypoints.http.app import create_app
    from fathom.entrypoints.http.routes import prompts as prompt_routes
    from fathom.entrypoints.settings import HeadlessInit, Settings

    settings = Settings(
        data_dir=Path(data_dir),
        salt="bench",
        init=HeadlessInit(
            org_id="org-bench",
            org_name="Bench",
            project_id="project-bench",
            project_name="Bench",
            project_public_key=PUBLIC_KEY,
            project_secret_key=SECRET_KEY,
        ),
    )
    runtime = Runtime(settings)
    container = runtime.wiring.container
    try:
        container.resolve(usecases.GetPrompt)
        wired = True
    except punq.MissingDependencyError:
        wired = False
    ttl = 300.0 if cache else 0.0
    # Registered last, so this cache (on or off) wins over one bootstrap may register.
    container.register(
        PromptCache,
        factory=lambda: usecases.InMemoryPromptCache(container.resolve(Clock), ttl_seconds=ttl),
        scope=punq.Scope.singleton,
    )
    for use_case in (
        usecases.CreatePromptVersion,
        usecases.GetPrompt,
        usecases.ListPrompts,
        usecases.UpdatePromptLabels,
        usecases.DeletePrompt,
    ):
        container.register(use_case, scope=punq.Scope.singleton)

    @web.middleware
    async def server_timing(request: web.Request, handler: Any) -> web.StreamResponse:
        # Time spent in the app itself, so scheduler noise on a busy machine can be told
        # apart from the server's own work.
        started = time.perf_counter()
        response = await handler(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.4f}"
        return response

    app = create_app(runtime, start_runtime=False)
    app.middlewares.append(server_timing)
    if not wired:
        app.router.add_routes(prompt_routes.routes)

    async def start(_app: web.Application) -> None:
        await runtime.start(telemetry=False)

    async def stop(_app: web.Application) -> None:
        await runtime.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _start_server(cache: bool, data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), data_dir, "1" if cache else "0"],
        env={**os.environ, "TZ": "UTC"},
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
        try:
            with urllib.request.urlopen(f"{url}/api/public/health", timeout=1):
                return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not start")


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _measure(url: str, requests: int) -> dict[str, list[float]]:
    import aiohttp

    token = base64.b64encode(f"{PUBLIC_KEY}:{SECRET_KEY}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    child = "bench/snippets/tone"
    bodies = [
        {"name": "bench/text prompt", "prompt": "Hi {{name}}! " * 20, "labels": ["production"]},
        {"name": child, "prompt": "Be brief and kind.", "labels": ["production"]},
        {
            "name": "bench/composed",
            "prompt": f"@@@langfusePrompt:name={child}|label=production@@@ Answer {{{{q}}}}.",
            "labels": ["production"],
        },
    ]
    results: dict[str, list[float]] = {}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for body in bodies:
            async with session.post(f"{url}/api/public/v2/prompts", json=body) as response:
                assert response.status == 201, await response.text()
        for case, name in (("text", "bench/text prompt"), ("composed", "bench/composed")):
            target = f"{url}/api/public/v2/prompts/{quote(name, safe='')}"
            for _ in range(min(200, requests)):  # warm-up: connections, statement caches
                async with session.get(target) as response:
                    await response.read()
            samples: list[float] = []
            server: list[float] = []
            for _ in range(requests):
                started = time.perf_counter()
                async with session.get(target) as response:
                    await response.read()
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status == 200
                server.append(float(response.headers["Server-Timing"].partition("dur=")[2]))
            results[case] = samples
            results[f"{case} (in app)"] = server
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serve", nargs=3, metavar=("PORT", "DATA_DIR", "CACHE"))
    args = parser.parse_args()
    if args.serve:
        port, data_dir, cache = args.serve
        serve(int(port), data_dir, cache == "1")
        return
    print(f"GET /api/public/v2/prompts/{{name}}: {args.requests} sequential requests, loopback")
    print(f"{'case':<32}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean ms':>10}")
    for cache in (False, True):
        with tempfile.TemporaryDirectory(prefix="fathom-bench-prompts-") as folder:
            process, url = _start_server(cache, str(Path(folder) / "data"))
            try:
                results = asyncio.run(_measure(url, args.requests))
            finally:
                process.terminate()
                process.wait(timeout=20)
        for case, samples in results.items():
            label = f"{'cached' if cache else 'uncached'} {case}"
            print(
                f"{label:<32}{_percentile(samples, 0.5):>10.3f}{_percentile(samples, 0.99):>10.3f}"
                f"{max(samples):>10.3f}{statistics.fmean(samples):>10.3f}"
            )


if __name__ == "__main__":
    main()
