"""A `BlobStore` on Amazon S3 or any S3-compatible server (MinIO, R2, SeaweedFS, moto).

boto3 is synchronous, so every call runs in a small thread pool owned by the store; the one
boto3 client is shared by those threads (clients are thread-safe, sessions are not). Keys are
validated exactly like the local store's, so a key that works here works on every backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NoReturn, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from fathom.adapters.blob.local import check_prefix, normalise_prefix, validate_key
from fathom.core.domain.errors import ConfigurationError, InvalidInput, NotFound, Unavailable

T = TypeVar("T")

# Threads (and pooled HTTP connections) per store: enough to overlap network round trips
# without letting one burst of puts open hundreds of sockets.
_WORKERS = 16
_SETTING = "FATHOM_BLOB__"
_OPERATIONS = {
    "GET": "get_object",
    "HEAD": "head_object",
    "PUT": "put_object",
    "DELETE": "delete_object",
}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_BAD_CREDENTIALS = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
}


def _check_signing(method: str, expires_in: int) -> str:
    method = method.upper()
    if method not in _OPERATIONS:
        raise InvalidInput(f"cannot sign method {method!r}")
    if expires_in <= 0:
        raise InvalidInput("expires_in must be positive")
    return method


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    """Objects in one S3 bucket, optionally below a `prefix` ("folder") of it.

    Credentials default to boto3's chain (environment, profile, instance role) when
    `access_key_id` is not given. `force_path_style` is needed by MinIO and most emulators.
    Set `region` to the bucket's: presigned URLs are signed for it (R2 uses "auto").
    `sse` ("AES256" or "aws:kms", with `sse_kms_key_id`) applies to the server's own writes;
    presigned uploads rely on the bucket's default encryption, because a client would have to
    send the SSE headers itself.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        force_path_style: bool = False,
        prefix: str = "",
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
    ) -> None:
        if not bucket:
            raise ConfigurationError(f"{_SETTING}BUCKET: the S3 bucket name is required")
        if bool(access_key_id) != bool(secret_access_key):
            raise ConfigurationError(
                f"{_SETTING}ACCESS_KEY_ID and {_SETTING}SECRET_ACCESS_KEY must be set together"
            )
        if sse_kms_key_id and sse != "aws:kms":
            raise ConfigurationError(
                f"{_SETTING}SSE_KMS_KEY_ID needs {_SETTING}SSE=aws:kms (got {sse!r})"
            )
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self._prefix = normalise_prefix(prefix)
        self._put_extra: dict[str, str] = {}
        if sse:
            self._put_extra["ServerSideEncryption"] = sse
        if sse_kms_key_id:
            self._put_extra["SSEKMSKeyId"] = sse_kms_key_id
        session = boto3.session.Session(
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region or None,
        )
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if force_path_style else "auto"},
                max_pool_connections=_WORKERS,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        self._executor = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="fathom-s3")

    def _name(self, key: str) -> str:
        return self._prefix + validate_key(key)

    async def _run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    # -- BlobStore -------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._name(key),
            "Body": bytes(data),
            **self._put_extra,
        }
        if content_type:
            params["ContentType"] = content_type
        try:
            await self._run(lambda: self._client.put_object(**params))
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, key)

    async def get(self, key: str) -> bytes:
        name = self._name(key)

        def read() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            with response["Body"] as body:
                return body.read()

        try:
            return await self._run(read)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, key)

    async def list(self, prefix: str) -> list[str]:
        full = self._prefix + check_prefix(prefix)
        skip = len(self._prefix)

        def collect() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(item["Key"][skip:] for item in page.get("Contents", ()))
            return keys

        try:
            keys = await self._run(collect)
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc)
        # S3 lists in UTF-8 byte order; the contract promises Python's string order.
        return sorted(keys)

    async def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            await self._run(lambda: self._client.delete_object(Bucket=self.bucket, Key=name))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_KEY:
                return  # S3 itself answers 204 for a missing key; some clones do not
            self._fail(exc, key)
        except BotoCoreError as exc:
            self._fail(exc, key)

    async def signed_url(self, key: str, method: str = "GET", expires_in: int = 3600) -> str:
        """A SigV4 presigned URL; it works for anyone holding it until it expires."""
        method = _check_signing(method, expires_in)
        params = {"Bucket": self.bucket, "Key": self._name(key)}
        return await self._presign(_OPERATIONS[method], params, expires_in)

    async def signed_upload_url(
        self, key: str, *, content_type: str, sha256: str, expires_in: int = 3600
    ) -> str:
        """A presigned PUT that S3 accepts only with this content type and SHA-256.

        `sha256` is the base64 digest. Both headers are signed: the uploader must send
        `Content-Type` and `x-amz-checksum-sha256` (Langfuse's SDKs do), and S3 rejects a
        body whose digest differs.
        """
        _check_signing("PUT", expires_in)
        params = {
            "Bucket": self.bucket,
            "Key": self._name(key),
            "ContentType": content_type,
            "ChecksumSHA256": sha256,
        }
        return await self._presign("put_object", params, expires_in)

    async def ping(self) -> None:
        """Check that the bucket exists and the credentials may use it."""
        try:
            await self._run(lambda: self._client.head_bucket(Bucket=self.bucket))
        except ClientError as exc:
            code = _error_code(exc)
            if code in {"404", "NoSuchBucket", "NotFound"}:
                raise self._bucket_not_found() from None
            if code in _BAD_CREDENTIALS:
                raise self._no_access(code) from None
            if code in {"301", "PermanentRedirect", "AuthorizationHeaderMalformed"}:
                raise ConfigurationError(
                    f"{_SETTING}REGION: bucket {self.bucket!r} is in another region ({code})"
                ) from None
            raise ConfigurationError(
                f"{_SETTING}BUCKET={self.bucket}: S3 answered {code or 'an error'}: {exc}"
            ) from None
        except EndpointConnectionError as exc:
            raise ConfigurationError(self._unreachable(exc)) from None
        except BotoCoreError as exc:
            self._fail(exc)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    # -- helpers ---------------------------------------------------------------------------

    async def _presign(self, operation: str, params: dict[str, Any], expires_in: int) -> str:
        # Presigning is local computation, but boto3 may resolve credentials on first use
        # (instance metadata, SSO), which is I/O; keep it off the event loop.
        try:
            return await self._run(
                lambda: self._client.generate_presigned_url(
                    operation, Params=params, ExpiresIn=expires_in
                )
            )
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception, key: str | None = None) -> NoReturn:
        """Translate a boto error into the domain's: one line naming what to fix."""
        if isinstance(exc, ClientError):
            code = _error_code(exc)
            if code in _MISSING_KEY and key is not None:
                raise NotFound(f"blob {key!r} not found") from None
            if code == "NoSuchBucket":
                raise self._bucket_not_found() from None
            if code in _BAD_CREDENTIALS:
                raise self._no_access(code) from None
            raise Unavailable(f"S3 request failed ({code}): {exc}") from exc
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            raise ConfigurationError(
                f"{_SETTING}ACCESS_KEY_ID: no usable S3 credentials ({exc}); set it with "
                f"{_SETTING}SECRET_ACCESS_KEY or provide AWS credentials in the environment"
            ) from None
        if isinstance(exc, EndpointConnectionError):
            raise Unavailable(self._unreachable(exc)) from exc
        raise Unavailable(f"S3 request failed: {exc}") from exc

    # The errors `ping` and `_fail` share, so a start-up check and a failed request name the
    # setting to fix in the same words.

    def _bucket_not_found(self) -> ConfigurationError:
        return ConfigurationError(f"{_SETTING}BUCKET={self.bucket}: bucket not found")

    def _no_access(self, code: str) -> ConfigurationError:
        return ConfigurationError(
            f"{_SETTING}ACCESS_KEY_ID: invalid credentials or no access to bucket "
            f"{self.bucket!r} ({code})"
        )

    def _unreachable(self, exc: Exception) -> str:
        endpoint = self.endpoint_url or "the AWS endpoint"
        return f"{_SETTING}ENDPOINT_URL={endpoint}: cannot connect to S3 ({exc})"
