"""orjson behind the JsonCodec port: batches are encoded on the ingestion hot path."""

from __future__ import annotations

import orjson


class OrjsonCodec:
    _options = orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z

    def dumps(self, value: object) -> bytes:
        return orjson.dumps(value, option=self._options, default=str)

    def loads(self, data: bytes) -> object:
        return orjson.loads(data)
