"""A small ClickHouse HTTP interface over the chDB engine, for tests only.

No modern ClickHouse server installs on these machines, so the "ClickHouse over HTTP"
adapter is tested against the real ClickHouse engine of chDB behind this front end. It
speaks what clickhouse-connect's HTTP client uses: queries in the URL or the body, server
side parameters (`param_*`) in the URL or as multipart form fields (the client moves large
parameters into a form), settings as query-string keys, `INSERT ... FORMAT` with the data
in the body, and the X-ClickHouse-* response headers. Compression is not supported (clients
connect with `compress=False`).

Run: `python tests/services/chdb_http_shim.py --port 18123 --path /tmp/data`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

import chdb

# Query-string keys that are part of the HTTP protocol, not ClickHouse settings.
TRANSPORT_KEYS = {
    "query", "database", "default_format", "session_id", "session_timeout", "session_check",
    "compress", "decompress", "query_id", "quota_key", "user", "password", "wait_end_of_query",
    "buffer_size", "enable_http_compression", "send_progress_in_http_headers",
    "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
    "client_protocol_version", "add_http_cors_header",
}  # fmt: skip
FORMAT_AT_END = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
INSERT_HEAD = re.compile(rb"^\s*INSERT\s+INTO\s+.+?\s+FORMAT\s+\w+[ \t]*\r?\n?", re.I | re.S)
INSERT_SQL = re.compile(r"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)\s*$", re.I | re.S)
NO_SETTINGS_SUFFIX = (
    "INSERT", "CREATE", "ALTER", "DROP", "OPTIMIZE", "TRUNCATE", "DELETE", "SYSTEM", "SET",
    "USE", "RENAME", "EXCHANGE",
)  # fmt: skip
BINARY_FORMATS = ("Native", "RowBinary", "Arrow", "Parquet")


class ShimServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, path: str) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.connection = chdb.connect(path)
        self.lock = threading.Lock()
        result = self.connection.query("SELECT timezone()", "TabSeparated")
        self.timezone = result.bytes().decode().strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ShimServer

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path in ("/ping", "/") and "query" not in dict(parse_qsl(url.query)):
            self._reply(200, b"Ok.\n")
            return
        self._execute(b"")

    def do_POST(self) -> None:
        self._execute(self._body())

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _execute(self, body: bytes) -> None:
        query = dict(parse_qsl(urlparse(self.path).query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            query.update(form_fields(content_type, body))
            body = b""
        if self.headers.get("Content-Encoding") or "1" in (
            query.get("decompress"),
            query.get("compress"),
        ):
            self._reply(400, b"Code: 1. DB::Exception: the test shim needs compress=False")
            return
        params = {k[len("param_") :]: v for k, v in query.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in query.items() if k not in TRANSPORT_KEYS and not k.startswith("param_")
        }
        sql, data = self._statement(query, body)
        output_format = query.get("default_format", "TabSeparated")
        match = FORMAT_AT_END.search(sql)
        if match:
            output_format = match.group(1)
        spool = None
        try:
            with self.server.lock:
                suffix = settings_clause(settings)
                if data is not None:
                    insert = INSERT_SQL.match(sql)
                    if not insert:
                        raise RuntimeError("Code: 62. DB::Exception: body data needs INSERT")
                    spool = tempfile.NamedTemporaryFile(delete=False, suffix=".native")
                    spool.write(data)
                    spool.close()
                    sql = (
                        f"INSERT INTO {insert.group(1)} FROM INFILE '{spool.name}'{suffix} "
                        f"FORMAT {insert.group(2)}"
                    )
                elif suffix and not sql.lstrip().upper().startswith(NO_SETTINGS_SUFFIX):
                    sql = FORMAT_AT_END.sub("", sql).rstrip().rstrip(";")
                    if not re.search(r"\bSETTINGS\b", sql, re.I):
                        sql += suffix
                if query.get("database"):
                    self.server.connection.query(f"USE `{query['database']}`")
                result = self.server.connection.query(sql, output_format, params=params)
            payload = result.bytes() if hasattr(result, "bytes") else bytes(result)
            summary = {"read_rows": "0", "written_rows": "0", "result_rows": "0"}
            self._reply(
                200,
                payload,
                {
                    "X-ClickHouse-Format": output_format,
                    "X-ClickHouse-Timezone": self.server.timezone,
                    "X-ClickHouse-Query-Id": query.get("query_id") or str(uuid.uuid4()),
                    "X-ClickHouse-Summary": json.dumps(summary),
                    "X-ClickHouse-Server-Display-Name": "chdb-test-shim",
                    "Content-Type": "application/octet-stream"
                    if output_format.startswith(BINARY_FORMATS)
                    else "text/plain; charset=UTF-8",
                },
            )
        except Exception as exc:  # the client needs ClickHouse's error shape
            message = str(exc)
            code = re.search(r"Code: (\d+)", message)
            self._reply(
                500,
                message.encode(),
                {"X-ClickHouse-Exception-Code": code.group(1) if code else "1"},
            )
        finally:
            if spool is not None:
                os.unlink(spool.name)

    @staticmethod
    def _statement(query: dict[str, str], body: bytes) -> tuple[str, bytes | None]:
        if "query" in query:
            return query["query"], body or None
        head = INSERT_HEAD.match(body)
        if head:  # `INSERT ... FORMAT X` and its data both in the body
            return head.group(0).decode().strip(), body[head.end() :]
        return body.decode(), None


def settings_clause(settings: dict[str, str]) -> str:
    """` SETTINGS k = v, ...` for the settings a client sent as query-string keys."""
    if not settings:
        return ""
    return " SETTINGS " + ", ".join(
        f"{k} = {v}" if v.lstrip("-").isdigit() else f"{k} = '{v}'" for k, v in settings.items()
    )


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """The fields of a multipart/form-data body, as ClickHouse reads `query` and `param_*`."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = part.get_payload(decode=True).decode()
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=18123)
    parser.add_argument("--path", default=":memory:")
    args = parser.parse_args()
    server = ShimServer(args.port, args.path)
    print(f"chdb http shim on 127.0.0.1:{args.port} ({args.path})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
