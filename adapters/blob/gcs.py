"""A `BlobStore` on Google Cloud Storage (or an emulator such as gcp-storage-emulator).

google-cloud-storage is synchronous, so calls run in a small thread pool owned by the store,
sharing one client. Credentials: a service-account key (`credentials_file`, a path or the JSON
itself, as Langfuse's `LANGFUSE_GOOGLE_CLOUD_STORAGE_CREDENTIALS` accepts), else the ambient
Application Default Credentials; with `endpoint_url` and no key the client is anonymous, which
is what emulators expect.

Signed URLs: V4 signing needs a private key. With a service-account key the URL is signed
locally; with ambient credentials that cannot sign (e.g. a GCE/GKE metadata identity) the IAM
`signBlob` API signs it; with anonymous emulator credentials there is nothing to sign with and
`signed_url` returns the emulator's plain path-style object URL, which works only because
emulators do not check access.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Signing
from google.auth.transport.requests import Request as AuthRequest
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account
from requests.adapters import HTTPAdapter

from fathom.adapters.blob.local import check_prefix, normalise_prefix, validate_key
from fathom.core.domain.errors import ConfigurationError, InvalidInput, NotFound, Unavailable

T = TypeVar("T")

_WORKERS = 16
# How long `ping` keeps retrying: start-up should fail within seconds, not after the default
# two minutes of retries.
_PING_SECONDS = 10.0
_SETTING = "FATHOM_BLOB__"
_SIGNABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
_CONNECTION_ERRORS = (requests.exceptions.ConnectionError, auth_exc.TransportError)


def _load_credentials(credentials_file: str) -> service_account.Credentials:
    setting = f"{_SETTING}CREDENTIALS_FILE"
    try:
        if credentials_file.lstrip().startswith("{"):
            return service_account.Credentials.from_service_account_info(
                json.loads(credentials_file)
            )
        return service_account.Credentials.from_service_account_file(credentials_file)
    except FileNotFoundError:
        raise ConfigurationError(f"{setting}={credentials_file}: file not found") from None
    except (ValueError, KeyError, OSError) as exc:
        # Never echo the value itself: it may be the key's JSON.
        raise ConfigurationError(f"{setting}: not a service-account key ({exc})") from None


class GcsBlobStore:
    """Objects in one GCS bucket, optionally below a `prefix` ("folder") of it."""

    def __init__(
        self,
        bucket: str,
        *,
        project: str | None = None,
        endpoint_url: str | None = None,
        credentials_file: str | None = None,
        prefix: str = "",
    ) -> None:
        if not bucket:
            raise ConfigurationError(f"{_SETTING}BUCKET: the GCS bucket name is required")
        self.bucket_name = bucket
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self._prefix = normalise_prefix(prefix)
        credentials: Any
        if credentials_file:
            credentials = _load_credentials(credentials_file)
            project = project or credentials.project_id
        elif self.endpoint_url:
            credentials = AnonymousCredentials()
        else:
            try:
                credentials, default_project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/devstorage.read_write"]
                )
            except auth_exc.DefaultCredentialsError as exc:
                raise ConfigurationError(
                    f"{_SETTING}CREDENTIALS_FILE: not set and no ambient Google credentials "
                    f"found ({exc})"
                ) from None
            project = project or default_project
        self._credentials = credentials
        if project is None and isinstance(credentials, AnonymousCredentials):
            project = "fathom"  # some project string is required; emulators ignore it
        options = {"api_endpoint": self.endpoint_url} if self.endpoint_url else None
        self._client = storage.Client(
            project=project, credentials=credentials, client_options=options
        )
        # One pooled connection per worker thread, instead of requests' default 10, which
        # would make a burst of puts churn connections (and warn about it).
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=_WORKERS)
        self._client._http.mount("https://", adapter)
        self._client._http.mount("http://", adapter)
        self._bucket = self._client.bucket(bucket)
        self._executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fathom-gcs")

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    # -- BlobStore -------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        blob = self._bucket.blob(self._name(key))
        payload = bytes(data)
        try:
            await self._run(
                lambda: blob.upload_from_string(
                    payload, content_type=content_type or "application/octet-stream"
                )
            )
        except gexc.NotFound:
            # An upload can only miss the bucket, never the object.
            raise ConfigurationError(
                f"{_SETTING}BUCKET={self.bucket_name}: bucket not found"
            ) from None
        except Exception as exc:
            self._fail(exc, key)

    async def get(self, key: str) -> bytes:
        blob = self._bucket.blob(self._name(key))
        try:
            return await self._run(blob.download_as_bytes)
        except Exception as exc:
            self._fail(exc, key)

    async def list(self, prefix: str) -> list[str]:
        full = self._prefix + check_prefix(prefix)
        skip = len(self._prefix)

        def collect() -> list[str]:
            blobs = self._client.list_blobs(self.bucket_name, prefix=full)
            return [blob.name[skip:] for blob in blobs]

        try:
            names = await self._run(collect)
        except gexc.NotFound:
            raise ConfigurationError(
                f"{_SETTING}BUCKET={self.bucket_name}: bucket not found"
            ) from None
        except Exception as exc:
            self._fail(exc)
        return sorted(names)

    async def delete(self, key: str) -> None:
        blob = self._bucket.blob(self._name(key))
        try:
            await self._run(blob.delete)
        except gexc.NotFound:
            return
        except Exception as exc:
            self._fail(exc, key)

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        """A V4 signed URL; with anonymous (emulator) credentials an unsigned emulator URL."""
        method = method.upper()
        if method not in _SIGNABLE_METHODS:
            raise InvalidInput(f"cannot sign method {method!r}")
        if expires_in <= 0:
            raise InvalidInput("expires_in must be positive")
        return await self._sign(self._name(key), method, expires_in, None)

    async def signed_upload_url(
        self, key: str, *, content_type: str, sha256: str, expires_in: int = 3600
    ) -> str:
        """A signed PUT bound to `content_type` (signed, so GCS refuses another one).

        GCS cannot check a SHA-256 (only MD5 and CRC32C), so the digest is not enforced here.
        """
        if expires_in <= 0:
            raise InvalidInput("expires_in must be positive")
        return await self._sign(self._name(key), "PUT", expires_in, content_type)

    async def ping(self) -> None:
        """Check that the bucket exists and the credentials may list it."""

        def probe() -> None:
            blobs = self._client.list_blobs(
                self.bucket_name,
                max_results=1,
                timeout=_PING_SECONDS,
                retry=DEFAULT_RETRY.with_timeout(_PING_SECONDS),
            )
            next(iter(blobs), None)

        try:
            await self._run(probe)
        except gexc.NotFound:
            raise ConfigurationError(
                f"{_SETTING}BUCKET={self.bucket_name}: bucket not found"
            ) from None
        except (gexc.Forbidden, gexc.Unauthorized, auth_exc.RefreshError) as exc:
            raise ConfigurationError(self._credentials_message(exc)) from None
        except (*_CONNECTION_ERRORS, gexc.RetryError) as exc:
            # Retries give up with a RetryError whose cause is the last connection error.
            cause = exc.cause if isinstance(exc, gexc.RetryError) else exc
            endpoint = self.endpoint_url or "storage.googleapis.com"
            raise ConfigurationError(
                f"{_SETTING}ENDPOINT_URL={endpoint}: cannot connect to GCS ({type(cause).__name__})"
            ) from None
        except gexc.GoogleAPICallError as exc:
            raise ConfigurationError(
                f"{_SETTING}BUCKET={self.bucket_name}: GCS answered {exc.code} ({exc.message})"
            ) from None

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- helpers ---------------------------------------------------------------------------

    async def _sign(self, name: str, method: str, expires_in: int, content_type: str | None) -> str:
        credentials = self._credentials
        if isinstance(credentials, AnonymousCredentials):
            # Nothing to sign with: only an emulator, which ignores signatures, can be behind
            # an anonymous client, and it serves plain path-style object URLs.
            return f"{self.endpoint_url}/{quote(self.bucket_name)}/{quote(name)}"
        blob = self._bucket.blob(name)
        kwargs: dict[str, Any] = {
            "version": "v4",
            "expiration": timedelta(seconds=expires_in),
            "method": method,
        }
        if content_type:
            kwargs["content_type"] = content_type
        if self.endpoint_url:
            kwargs["api_access_endpoint"] = self.endpoint_url

        def sign() -> str:
            if not isinstance(credentials, Signing):
                # Metadata-server identities hold no key; IAM's signBlob signs for them.
                if not credentials.valid:
                    credentials.refresh(AuthRequest())
                kwargs["service_account_email"] = credentials.service_account_email
                kwargs["access_token"] = credentials.token
            return blob.generate_signed_url(**kwargs)

        try:
            return await self._run(sign)
        except Exception as exc:
            self._fail(exc)

    def _credentials_message(self, exc: Exception) -> str:
        return (
            f"{_SETTING}CREDENTIALS_FILE: invalid credentials or no access to bucket "
            f"{self.bucket_name!r} ({type(exc).__name__})"
        )

    def _fail(self, exc: Exception, key: str | None = None) -> NoReturn:
        """Translate a Google error into the domain's: one line naming what to fix."""
        if isinstance(exc, gexc.NotFound) and key is not None:
            raise NotFound(f"blob {key!r} not found") from None
        if isinstance(exc, gexc.Forbidden | gexc.Unauthorized | auth_exc.RefreshError):
            raise ConfigurationError(self._credentials_message(exc)) from None
        if isinstance(exc, _CONNECTION_ERRORS):
            endpoint = self.endpoint_url or "storage.googleapis.com"
            raise Unavailable(
                f"{_SETTING}ENDPOINT_URL={endpoint}: cannot connect to GCS ({exc})"
            ) from exc
        if isinstance(exc, gexc.GoogleAPICallError | auth_exc.GoogleAuthError):
            raise Unavailable(f"GCS request failed: {exc}") from exc
        raise exc
