"""A `BlobStore` on Azure Blob Storage (or Azurite), with the SDK's native asyncio client.

Authentication is a connection string, or an account URL with an account key. Signed URLs
are service SAS tokens, which need the account key: with a connection string that lacks one
(e.g. a SAS-only string) `signed_url` fails with a configuration error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import BlobSasPermissions, ContentSettings, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from fathom.adapters.blob.local import check_prefix, normalise_prefix, validate_key
from fathom.core.domain.errors import ConfigurationError, InvalidInput, NotFound, Unavailable

_SETTING = "FATHOM_BLOB__"
_PERMISSIONS = {
    "GET": BlobSasPermissions(read=True),
    "HEAD": BlobSasPermissions(read=True),
    "PUT": BlobSasPermissions(create=True, write=True),
    "DELETE": BlobSasPermissions(delete=True),
}

# The SDK's default retries back off 15 s, 18 s, 24 s: a blob put of an ingestion request would
# hang for a minute on an outage. Retry sooner and give up within about ten seconds instead.
_RETRY = {"initial_backoff": 1, "increment_base": 2, "retry_total": 3, "random_jitter_range": 1}

# The SDK logs every request and response at INFO; unless the operator configured that logger,
# keep it to warnings so a busy server's log is not one line per blob.
_http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
if _http_log.level == logging.NOTSET:
    _http_log.setLevel(logging.WARNING)


class AzureBlobStore:
    """Block blobs in one container, optionally below a `prefix` ("folder") of it."""

    def __init__(
        self,
        container: str,
        *,
        connection_string: str | None = None,
        account_url: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        prefix: str = "",
    ) -> None:
        if not container:
            raise ConfigurationError(f"{_SETTING}CONTAINER: the Azure container name is required")
        if bool(connection_string) == bool(account_url):
            raise ConfigurationError(
                f"set exactly one of {_SETTING}CONNECTION_STRING and {_SETTING}ACCOUNT_URL"
            )
        self.container = container
        self._prefix = normalise_prefix(prefix)
        try:
            if connection_string:
                self._credential_setting = f"{_SETTING}CONNECTION_STRING"
                self._endpoint_setting = f"{_SETTING}CONNECTION_STRING"
                service = BlobServiceClient.from_connection_string(
                    connection_string, retry_policy=ExponentialRetry(**_RETRY)
                )
            else:
                self._credential_setting = f"{_SETTING}ACCOUNT_KEY"
                self._endpoint_setting = f"{_SETTING}ACCOUNT_URL={account_url}"
                credential: object = None
                if account_key and account_name:
                    credential = {"account_name": account_name, "account_key": account_key}
                elif account_key:
                    credential = account_key  # the SDK reads the account name from the URL
                service = BlobServiceClient(
                    account_url or "",
                    credential=credential,
                    retry_policy=ExponentialRetry(**_RETRY),
                )
        except (ValueError, AzureError) as exc:
            raise ConfigurationError(
                f"{self._credential_setting}: invalid Azure storage configuration ({exc})"
            ) from None
        self._service = service
        self._container = service.get_container_client(container)
        self._account_name: str = account_name or service.account_name or ""
        self._account_key: str | None = account_key or getattr(
            service.credential, "account_key", None
        )

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    # -- BlobStore -------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        settings = ContentSettings(content_type=content_type) if content_type else None
        try:
            await self._container.upload_blob(
                self._name(key), bytes(data), overwrite=True, content_settings=settings
            )
        except AzureError as exc:
            self._fail(exc, key)

    async def get(self, key: str) -> bytes:
        name = self._name(key)
        try:
            downloader = await self._container.download_blob(name)
            return await downloader.readall()
        except AzureError as exc:
            self._fail(exc, key)

    async def list(self, prefix: str) -> list[str]:
        full = self._prefix + check_prefix(prefix)
        skip = len(self._prefix)
        try:
            names = [
                name[skip:] async for name in self._container.list_blob_names(name_starts_with=full)
            ]
        except AzureError as exc:
            self._fail(exc)
        return sorted(names)

    async def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            await self._container.delete_blob(name)
        except ResourceNotFoundError as exc:
            if _code(exc) == "ContainerNotFound":
                self._fail(exc, key)
        except AzureError as exc:
            self._fail(exc, key)

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        """The blob's URL with a service SAS for `method`, valid for `expires_in` seconds."""
        method = method.upper()
        if method not in _PERMISSIONS:
            raise InvalidInput(f"cannot sign method {method!r}")
        if expires_in <= 0:
            raise InvalidInput("expires_in must be positive")
        return self._sas_url(self._name(key), _PERMISSIONS[method], expires_in)

    async def signed_upload_url(
        self, key: str, *, content_type: str, sha256: str, expires_in: int = 3600
    ) -> str:
        """A SAS URL for one PUT of a block blob (`x-ms-blob-type: BlockBlob`).

        A SAS cannot pin the content type or a SHA-256: Azure checks neither, so integrity
        rests on the uploader (Langfuse's SDKs send the declared bytes).
        """
        return await self.signed_url(key, "PUT", expires_in)

    async def ping(self) -> None:
        """Check that the container exists and the credentials may use it."""
        try:
            # One retry: start-up should learn about a wrong endpoint in seconds.
            await self._container.get_container_properties(retry_total=1)
        except ResourceNotFoundError:
            raise ConfigurationError(
                f"{_SETTING}CONTAINER={self.container}: container not found"
            ) from None
        except ClientAuthenticationError as exc:
            raise ConfigurationError(self._credentials_message(exc)) from None
        except HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise ConfigurationError(self._credentials_message(exc)) from None
            raise ConfigurationError(
                f"{_SETTING}CONTAINER={self.container}: Azure answered {exc.status_code} "
                f"({_code(exc) or exc.reason})"
            ) from None
        except ServiceRequestError as exc:
            raise ConfigurationError(
                f"{self._endpoint_setting}: cannot connect to Azure Blob Storage ({exc})"
            ) from None
        except AzureError as exc:
            raise ConfigurationError(
                f"{self._endpoint_setting}: Azure Blob Storage unusable ({exc})"
            ) from None

    async def close(self) -> None:
        await self._service.close()

    # -- helpers ---------------------------------------------------------------------------

    def _sas_url(self, name: str, permission: BlobSasPermissions, expires_in: int) -> str:
        if not self._account_key:
            raise ConfigurationError(
                f"{_SETTING}ACCOUNT_KEY: signing Azure URLs needs the storage account key"
            )
        now = datetime.now(UTC)
        token = generate_blob_sas(
            account_name=self._account_name,
            container_name=self.container,
            blob_name=name,
            account_key=self._account_key,
            permission=permission,
            # A little slack backwards for clocks that run behind the server's.
            start=now - timedelta(minutes=5),
            expiry=now + timedelta(seconds=expires_in),
        )
        return f"{self._container.get_blob_client(name).url}?{token}"

    def _credentials_message(self, exc: AzureError) -> str:
        return (
            f"{self._credential_setting}: invalid credentials or no access to container "
            f"{self.container!r} ({_code(exc) or type(exc).__name__})"
        )

    def _fail(self, exc: AzureError, key: str | None = None) -> NoReturn:
        """Translate an Azure error into the domain's: one line naming what to fix."""
        code = _code(exc)
        if isinstance(exc, ResourceNotFoundError):
            if code == "ContainerNotFound":
                raise ConfigurationError(
                    f"{_SETTING}CONTAINER={self.container}: container not found"
                ) from None
            if key is not None:
                raise NotFound(f"blob {key!r} not found") from None
        if isinstance(exc, ClientAuthenticationError) or (
            isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
        ):
            raise ConfigurationError(self._credentials_message(exc)) from None
        if isinstance(exc, ServiceRequestError):
            raise Unavailable(
                f"{self._endpoint_setting}: cannot connect to Azure Blob Storage ({exc})"
            ) from exc
        raise Unavailable(f"Azure Blob Storage request failed ({code}): {exc}") from exc


def _code(exc: AzureError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")
