"""The official SDK authenticates against a live `fathom serve`."""

from __future__ import annotations

import pytest
from langfuse import Langfuse

from tests.conftest import PUBLIC_KEY, SECRET_KEY
from tests.live_server import LiveServer


def test_auth_check_succeeds_with_the_provisioned_keys(live_server: LiveServer) -> None:
    client = Langfuse(host=live_server.url, public_key=PUBLIC_KEY, secret_key=SECRET_KEY)
    try:
        assert client.auth_check() is True
    finally:
        client.shutdown()


def test_wrong_secret_is_rejected_with_401(live_server: LiveServer) -> None:
    from langfuse.api import UnauthorizedError

    client = Langfuse(host=live_server.url, public_key=PUBLIC_KEY, secret_key="sk-lf-wrong")
    try:
        with pytest.raises(UnauthorizedError) as caught:
            client.auth_check()
        assert caught.value.status_code == 401
    finally:
        client.shutdown()
