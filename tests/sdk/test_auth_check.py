"""The official SDK authenticates against a live `fathom serve`."""

from __future__ import annotations

import subprocess
import sys

from langfuse import Langfuse

from tests.conftest import PUBLIC_KEY
from tests.live_server import LiveServer


def test_auth_check_succeeds_with_the_provisioned_keys(langfuse: Langfuse) -> None:
    assert langfuse.auth_check() is True


WRONG_SECRET_SCRIPT = """
import sys
from langfuse import Langfuse
from langfuse.api import UnauthorizedError

client = Langfuse(host=sys.argv[1], public_key=sys.argv[2], secret_key="sk-lf-wrong")
try:
    client.auth_check()
    print("accepted")
except UnauthorizedError as exc:
    print("unauthorized", exc.status_code)
"""


def test_wrong_secret_is_rejected_with_401(live_server: LiveServer) -> None:
    # The SDK shares one set of resources per public key within a process, so the wrong
    # secret must be tried from a process of its own.
    result = subprocess.run(
        [sys.executable, "-c", WRONG_SECRET_SCRIPT, live_server.url, PUBLIC_KEY],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["unauthorized", "401"]
