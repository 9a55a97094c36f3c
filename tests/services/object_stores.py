"""Session fixtures for object stores (see tests/services/__init__.py).

- S3: the moto server (`python -m moto.server`). It checks neither signatures nor credentials.
- Azure Blob: Azurite from `tests/node` (`npm ci` there; pinned to 3.35.0, the last release
  that runs on Node 20). It checks shared keys and SAS tokens.
- GCS: gcp-storage-emulator, anonymous, in memory.

Each server starts on first use on its usual loopback port (or the next free one above it),
below the ephemeral range (components.md §9), keeps its data in memory, and is stopped at the
end of the session. The function fixtures (`s3_bucket`, `azure_container`, `gcs_bucket`) give
every test a fresh, empty bucket or container and remove it afterwards.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.support import stop, unavailable, wait_for_port

S3_PORT = 15000
AZURITE_PORT = 10000
GCS_PORT = 14443

S3_REGION = "us-east-1"
S3_ACCESS_KEY_ID = "fathom-test"
S3_SECRET_ACCESS_KEY = "fathom-test-secret"

# Azurite's well-known development account (published in Microsoft's documentation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
AZURITE_BIN = NODE_DIR / "node_modules" / ".bin" / "azurite-blob"


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pick_port(name: str, preferred: int) -> int:
    """The component's usual port, or the next free one above it.

    Another test session on the same machine (a developer running two suites) holds the
    usual ports; the ports above stay below the ephemeral range, where a client socket could
    take them at any moment (components.md §9)."""
    for port in range(preferred, preferred + 100):
        if not _port_in_use(port):
            return port
    unavailable(f"{name}: ports {preferred}-{preferred + 99} are all taken")
    raise AssertionError("unreachable")


def _start(
    name: str, argv: list[str], port: int, workdir: Path, timeout: float = 60
) -> subprocess.Popen[bytes]:
    """Start a server in the background and wait for its port; skip (fail on CI) if it can't."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        try:
            process = subprocess.Popen(
                argv,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C in pytest must not kill it before teardown runs.
                start_new_session=True,
            )
        except OSError as exc:
            unavailable(f"{name} cannot be started: {exc}")
    try:
        wait_for_port(port, timeout=timeout, process=process)
    except RuntimeError as exc:
        stop(process)
        tail = log_path.read_text(errors="replace")[-2000:]
        unavailable(f"{name} did not start: {exc}\n{tail}")
    return process


def _serve(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    preferred_port: int,
    argv: Callable[[int], list[str]],
    address: Callable[[int], str],
) -> Iterator[str]:
    """The body of a session fixture: start the server on a free port, yield its address,
    stop it at the end of the session."""
    workdir = tmp_path_factory.mktemp(name)
    port = _pick_port(name, preferred_port)
    process = _start(name, argv(port), port, workdir)
    try:
        yield address(port)
    finally:
        stop(process)


# -- S3 (moto) ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1:15000."""
    if importlib.util.find_spec("moto.server") is None or importlib.util.find_spec("boto3") is None:
        unavailable("moto[server] and boto3 are not installed")
    yield from _serve(
        tmp_path_factory,
        "moto",
        S3_PORT,
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        lambda port: f"http://127.0.0.1:{port}",
    )


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY_ID,
        aws_secret_access_key=S3_SECRET_ACCESS_KEY,
        config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture(scope="session")
def _s3_admin(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def s3_bucket(_s3_admin: Any) -> Iterator[str]:
    """A fresh, empty bucket on the moto server; emptied and removed after the test."""
    name = f"fathom-test-{uuid.uuid4().hex[:16]}"
    _s3_admin.create_bucket(Bucket=name)
    yield name
    try:
        paginator = _s3_admin.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if objects:
                _s3_admin.delete_objects(Bucket=name, Delete={"Objects": objects})
        _s3_admin.delete_bucket(Bucket=name)
    except Exception:  # the bucket may be gone already; the server is in memory anyway
        pass


# -- Azure Blob (Azurite) -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Connection string of an in-memory Azurite blob service on 127.0.0.1:10000."""
    if not AZURITE_BIN.exists():
        unavailable(f"Azurite is not installed: run `npm ci` in {NODE_DIR}")
    if shutil.which("node") is None:
        unavailable("Azurite needs Node.js (`node` is not on PATH)")
    if importlib.util.find_spec("azure.storage.blob") is None:
        unavailable("azure-storage-blob is not installed")
    yield from _serve(
        tmp_path_factory,
        "azurite",
        AZURITE_PORT,
        lambda port: [
            str(AZURITE_BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            # In memory (it refuses --location then); cwd is the temporary folder all the same.
            "--inMemoryPersistence",
            # The SDK speaks a newer API version than Azurite 3.35 knows.
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ],
        lambda port: (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        ),
    )


@pytest.fixture
def azure_container(azurite_connection_string: str) -> Iterator[str]:
    """A fresh container on Azurite; deleted (with its blobs) after the test."""
    from azure.storage.blob import BlobServiceClient

    name = f"fathom-test-{uuid.uuid4().hex[:16]}"
    with BlobServiceClient.from_connection_string(azurite_connection_string) as service:
        service.create_container(name)
        yield name
        try:
            service.delete_container(name)
        except Exception:  # the container may be gone already
            pass


# -- GCS (gcp-storage-emulator) -----------------------------------------------------------------


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of an in-memory gcp-storage-emulator on 127.0.0.1:14443."""
    if (
        importlib.util.find_spec("gcp_storage_emulator") is None
        or importlib.util.find_spec("google.cloud.storage") is None
    ):
        unavailable("gcp-storage-emulator and google-cloud-storage are not installed")
    yield from _serve(
        tmp_path_factory,
        "gcs-emulator",
        GCS_PORT,
        lambda port: [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--in-memory",
            "--quiet",
        ],
        lambda port: f"http://127.0.0.1:{port}",
    )


def gcs_client(endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="fathom-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": endpoint},
    )


@pytest.fixture(scope="session")
def _gcs_admin(gcs_endpoint: str) -> Any:
    return gcs_client(gcs_endpoint)


@pytest.fixture
def gcs_bucket(_gcs_admin: Any) -> Iterator[str]:
    """A fresh bucket on the GCS emulator; removed after the test."""
    name = f"fathom-test-{uuid.uuid4().hex[:16]}"
    bucket = _gcs_admin.create_bucket(name)
    yield name
    try:
        bucket.delete(force=True)
    except Exception:  # over 256 objects force-delete refuses; the emulator is in memory
        pass
