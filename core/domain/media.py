"""Multi-modal media: records of uploaded files, references to them, and signed links.

A client (Langfuse's SDKs) asks for an upload URL with the file's SHA-256 (base64), content
type and length, PUTs the bytes there and reports the result (PATCH). Media are deduplicated
per project by content hash, so the media id is derived from it: the first 22 characters of
the URL-safe base64 digest, as upstream and the SDKs compute it (the SDK checks that the
server's id equals its own). Traces keep only a reference string
`@@@langfuseMedia:type=<MIME>|id=<mediaId>|source=<origin>@@@` in place of the bytes.

A media link records which trace, observation or dataset item field a media file was
requested for, as upstream's `trace_media`, `observation_media` and `dataset_item_media`
tables do: deleting a trace deletes its links, and with the last link the media file.

When the blob store cannot presign URLs (the local filesystem store), Fathom serves uploads
and downloads itself; such links carry a `MediaGrant` signed with an HMAC key derived from the
installation's salt, so they work without an API key and only for what was granted.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final

from fathom.core.domain.errors import Forbidden, InvalidInput

# Upstream's defaults (`LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH`,
# `LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS`, the fixed one-hour upload URL).
MAX_CONTENT_LENGTH: Final = 1_000_000_000
UPLOAD_URL_TTL_SECONDS: Final = 3600
DOWNLOAD_URL_TTL_SECONDS: Final = 3600

# `MediaContentType` of the public API, with the file extension of the stored object.
CONTENT_TYPE_EXTENSIONS: Final[Mapping[str, str]] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/avif": "avif",
    "image/heic": "heic",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
    "audio/oga": "oga",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/flac": "flac",
    "audio/opus": "opus",
    "audio/webm": "weba",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/ogg": "ogv",
    "video/mpeg": "mpeg",
    "video/quicktime": "mov",
    "video/x-msvideo": "avi",
    "video/x-matroska": "mkv",
    "text/plain": "txt",
    "text/html": "html",
    "text/css": "css",
    "text/csv": "csv",
    "text/markdown": "md",
    "text/x-python": "py",
    "application/javascript": "js",
    "text/x-typescript": "ts",
    "application/x-yaml": "yaml",
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/zip": "zip",
    "application/json": "json",
    "application/xml": "xml",
    "application/octet-stream": "bin",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/rtf": "rtf",
    "application/x-ndjson": "ndjson",
    "application/vnd.apache.parquet": "parquet",
    "application/gzip": "gz",
    "application/x-tar": "tar",
    "application/x-7z-compressed": "7z",
}
TRACE_FIELDS: Final = ("input", "output", "metadata")
DATASET_ITEM_FIELDS: Final = ("input", "expectedOutput", "metadata")
# Azure answers a blob PUT with 201, S3 and GCS with 200; both mean the bytes are stored.
UPLOAD_SUCCESS_STATUSES: Final = frozenset({200, 201})

_SHA256_BASE64 = re.compile(r"^[A-Za-z0-9+/=]{44}$")
_MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Media:
    """A project's media file: where its bytes live and how the client's upload went."""

    id: str
    project_id: str
    sha256_hash: str
    content_type: str
    content_length: int
    blob_key: str
    created_at: datetime
    updated_at: datetime
    uploaded_at: datetime | None = None
    upload_http_status: int | None = None
    upload_http_error: str | None = None
    upload_time_ms: int | None = None

    @property
    def is_uploaded(self) -> bool:
        return self.upload_http_status in UPLOAD_SUCCESS_STATUSES


def media_id_for(sha256_hash: str) -> str:
    """The media id of a content hash: 132 bits of it, URL-safe (the SDKs compute the same)."""
    return sha256_hash.replace("+", "-").replace("/", "_")[:22]


def sha256_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def blob_key_for(project_id: str, media_id: str, content_type: str) -> str:
    """Where a media file is stored, next to (never inside) the raw ingestion events."""
    return f"media/{project_id}/{media_id}.{CONTENT_TYPE_EXTENSIONS[content_type]}"


def is_media_id(value: str) -> bool:
    return bool(_MEDIA_ID.match(value))


# -- links to traces, observations and dataset items ----------------------------------------------


class MediaLinkOrigin(enum.StrEnum):
    """How a link came about (upstream's `MediaAssociationOrigin`)."""

    UNKNOWN = "UNKNOWN"  # upstream's links from before origins were recorded
    CLIENT_UPLOAD = "CLIENT_UPLOAD"
    INGESTION_MEDIA_EXTRACTION = "INGESTION_MEDIA_EXTRACTION"
    INGESTION_FIELD_OVERFLOW = "INGESTION_FIELD_OVERFLOW"


@dataclass(frozen=True, slots=True)
class TraceMediaLink:
    """A media file in one field of a trace; stored once per (project, trace, media, field)."""

    project_id: str
    media_id: str
    trace_id: str
    field: str
    origin: MediaLinkOrigin
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ObservationMediaLink:
    """A media file in one field of an observation, with the observation's trace (which its
    deletion goes by); stored once per (project, trace, observation, media, field)."""

    project_id: str
    media_id: str
    trace_id: str
    observation_id: str
    field: str
    origin: MediaLinkOrigin
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DatasetItemMediaLink:
    """A media file in one field of a dataset item; stored once per (project, item, field,
    media)."""

    project_id: str
    media_id: str
    dataset_id: str
    dataset_item_id: str
    field: str
    origin: MediaLinkOrigin
    created_at: datetime


MediaLink = TraceMediaLink | ObservationMediaLink | DatasetItemMediaLink


# -- requests --------------------------------------------------------------------------------------


def _invalid(problem: str) -> InvalidInput:
    return InvalidInput(f"Invalid request data: {problem}")


@dataclass(frozen=True, slots=True)
class MediaUploadRequest:
    """`GetMediaUploadUrlRequest`: one file in one field of a trace/observation or dataset item."""

    content_type: str
    content_length: int
    sha256_hash: str
    field: str
    trace_id: str | None = None
    observation_id: str | None = None
    dataset_id: str | None = None
    dataset_item_id: str | None = None

    def link(
        self, project_id: str, media_id: str, origin: MediaLinkOrigin, now: datetime
    ) -> MediaLink:
        """The one link the request names: an observation's when it names one (not also its
        trace's, as upstream), else the trace's, else the dataset item's."""
        if self.observation_id is not None and self.trace_id is not None:
            return ObservationMediaLink(
                project_id, media_id, self.trace_id, self.observation_id, self.field, origin, now
            )
        if self.trace_id is not None:
            return TraceMediaLink(project_id, media_id, self.trace_id, self.field, origin, now)
        if self.dataset_id is None or self.dataset_item_id is None:
            raise _invalid("the request names no trace and no dataset item")
        return DatasetItemMediaLink(
            project_id, media_id, self.dataset_id, self.dataset_item_id, self.field, origin, now
        )


def _optional_id(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(f"{key} must be a non-empty string or null")
    return value


def parse_upload_request(
    body: Any, *, max_content_length: int = MAX_CONTENT_LENGTH
) -> MediaUploadRequest:
    """Validate a `POST /api/public/media` body as upstream does, with its messages."""
    if not isinstance(body, Mapping):
        raise _invalid("expected a JSON object")
    content_type = body.get("contentType")
    if content_type not in CONTENT_TYPE_EXTENSIONS:
        raise _invalid(
            "Invalid content type. Only supporting " + ", ".join(CONTENT_TYPE_EXTENSIONS)
        )
    length = body.get("contentLength")
    if type(length) is not int or length <= 0:  # bool is not a length
        raise _invalid("contentLength must be a positive integer")
    if length > max_content_length:
        raise _invalid(f"File size must be less than {max_content_length} bytes")
    sha256_hash = body.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not _SHA256_BASE64.match(sha256_hash):
        raise _invalid("sha256Hash: Must be a 44 character base64 encoded SHA-256 hash")
    try:
        if len(base64.b64decode(sha256_hash, validate=True)) != 32:
            raise ValueError
    except (binascii.Error, ValueError):
        raise _invalid("sha256Hash: Must be a 44 character base64 encoded SHA-256 hash") from None
    ids = {
        key: _optional_id(body, key)
        for key in ("traceId", "observationId", "datasetId", "datasetItemId")
    }
    on_trace = ids["traceId"] is not None or ids["observationId"] is not None
    on_item = ids["datasetId"] is not None or ids["datasetItemId"] is not None
    if on_trace == on_item:
        raise _invalid(
            "provide exactly one context: traceId (optionally observationId) or "
            "datasetId and datasetItemId"
        )
    if on_trace and ids["traceId"] is None:
        raise _invalid("observationId requires traceId")
    if on_item and (ids["datasetId"] is None or ids["datasetItemId"] is None):
        raise _invalid("dataset item media need both datasetId and datasetItemId")
    fields = TRACE_FIELDS if on_trace else DATASET_ITEM_FIELDS
    field = body.get("field")
    if field not in fields:
        raise _invalid("Invalid field. Only supporting " + ", ".join(fields))
    return MediaUploadRequest(
        content_type=content_type,
        content_length=length,
        sha256_hash=sha256_hash,
        field=field,
        trace_id=ids["traceId"],
        observation_id=ids["observationId"],
        dataset_id=ids["datasetId"],
        dataset_item_id=ids["datasetItemId"],
    )


@dataclass(frozen=True, slots=True)
class MediaUploadResult:
    """`PatchMediaBody`: what the client saw when it uploaded the bytes."""

    uploaded_at: datetime
    upload_http_status: int
    upload_http_error: str | None = None
    upload_time_ms: int | None = None


def parse_upload_result(body: Any) -> MediaUploadResult:
    if not isinstance(body, Mapping):
        raise _invalid("expected a JSON object")
    raw_time = body.get("uploadedAt")
    uploaded_at = _datetime(raw_time) if isinstance(raw_time, str) else None
    if uploaded_at is None:
        raise _invalid("uploadedAt must be an ISO 8601 datetime")
    status = body.get("uploadHttpStatus")
    if type(status) is not int or status <= 0:
        raise _invalid("uploadHttpStatus must be a positive integer")
    error = body.get("uploadHttpError")
    if error is not None and not isinstance(error, str):
        raise _invalid("uploadHttpError must be a string or null")
    time_ms = body.get("uploadTimeMs")
    if time_ms is not None and (
        isinstance(time_ms, bool) or not isinstance(time_ms, int | float) or time_ms < 0
    ):
        raise _invalid("uploadTimeMs must be a non-negative number or null")
    return MediaUploadResult(
        uploaded_at=uploaded_at,
        upload_http_status=status,
        upload_http_error=error,
        upload_time_ms=None if time_ms is None else int(time_ms),
    )


def _datetime(value: str) -> datetime | None:
    # zod's `coerce.date()` takes any date string JavaScript parses; ISO 8601 is what SDKs
    # send. A naive time is taken as UTC, like `new Date()` does for date-times with a `Z`.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


# -- references in trace payloads ----------------------------------------------------------------

REFERENCE_PATTERN: Final = re.compile(r"@@@langfuseMedia:(.+?)@@@")


@dataclass(frozen=True, slots=True)
class MediaReference:
    """The token that stands for a media file inside inputs, outputs and metadata."""

    content_type: str
    media_id: str
    source: str

    def __str__(self) -> str:
        return (
            f"@@@langfuseMedia:type={self.content_type}|id={self.media_id}|source={self.source}@@@"
        )


def parse_media_reference(text: str) -> MediaReference:
    """Parse one whole reference string, as the SDKs' `parse_reference_string` does."""
    match = REFERENCE_PATTERN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(f"not a media reference: {text!r}")
    return _reference(match.group(1), text)


def _reference(content: str, text: str) -> MediaReference:
    pairs: dict[str, str] = {}
    for pair in content.split("|"):
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"malformed media reference: {text!r}")
        pairs[key] = value
    if not all(pairs.get(key) for key in ("type", "id", "source")):
        raise InvalidInput(f"media reference without type, id and source: {text!r}")
    return MediaReference(pairs["type"], pairs["id"], pairs["source"])


def find_media_references(value: Any, *, max_depth: int = 10) -> list[MediaReference]:
    """Every well-formed reference in a JSON value (strings, lists, objects), in order."""
    return list(_walk(value, max_depth))


def _walk(value: Any, depth: int) -> Iterator[MediaReference]:
    if depth < 0:
        return
    if isinstance(value, str):
        for match in REFERENCE_PATTERN.finditer(value):
            try:
                yield _reference(match.group(1), match.group(0))
            except InvalidInput:
                continue  # text that merely looks like a reference
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item, depth - 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, depth - 1)


# -- links served by Fathom itself ---------------------------------------------------------------

UPLOAD: Final = "upload"
DOWNLOAD: Final = "download"


@dataclass(frozen=True, slots=True)
class MediaGrant:
    """What one link allows: `action` on one stored media file, until `expires_at` (Unix s)."""

    action: str
    project_id: str
    media_id: str
    blob_key: str
    content_type: str
    content_length: int
    sha256_hash: str
    expires_at: int


def media_signing_key(salt: str) -> bytes:
    """The links' HMAC key, derived so that it differs from every other use of the salt."""
    return hmac.new(salt.encode(), b"fathom media links v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_grant(key: bytes, grant: MediaGrant) -> str:
    """`<payload>.<signature>`, both URL-safe base64: self-contained, no server state."""
    payload = _b64(json.dumps(asdict(grant), separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify_grant(
    key: bytes, token: str | None, *, action: str, media_id: str, now: datetime
) -> MediaGrant:
    """The grant a token carries, if its signature holds, it is unexpired and it fits the
    request; else `Forbidden`, as an object store answers a bad presigned URL."""
    if not token:
        raise Forbidden("Missing media link token")
    payload, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        raise Forbidden("Invalid media link signature")
    try:
        grant = MediaGrant(**json.loads(_unb64(payload)))
    except (ValueError, TypeError):
        raise Forbidden("Invalid media link token") from None
    if grant.action != action or grant.media_id != media_id:
        raise Forbidden("Media link token does not match this request")
    if grant.expires_at < now.timestamp():
        raise Forbidden("Media link expired")
    return grant
