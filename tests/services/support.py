"""Helpers shared by the service fixtures: ports, waiting, skipping versus failing."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest


def unavailable(reason: str) -> None:
    """Skip locally; fail under CI, where every component must be exercised."""
    if os.environ.get("CI"):
        pytest.fail(f"required test service unavailable: {reason}")
    pytest.skip(reason)


def wait_for_port(port: int, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"service on port {port} exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
