"""Caches of the prediction service: loaded models (LRU) and results (TTL, in-process or Redis).

Result keys are the sha256 of the model's name and version, the request options and the exact
bytes, dtype and shape of the float32 features, so a new model version or any changed input
value misses. Values are JSON documents (the service's result dictionaries).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "InProcessResultCache",
    "LRUCache",
    "RedisResultCache",
    "features_key",
    "key_hasher",
    "result_key",
]

KEY_PREFIX = "mlu:pred:"


def result_key(name: str, version: int, options: dict[str, Any], features: np.ndarray) -> str:
    """Cache key of a request: model name and version, options, features' dtype, shape, bytes."""
    return features_key(key_hasher(name, version, options, features), features)


def key_hasher(name: str, version: int, options: dict[str, Any], like: np.ndarray) -> Any:
    """The sha256 state of :func:`result_key` after the model, the options and the dtype and
    shape of ``like``: computed once, then copied for each request's features of that dtype
    and shape by :func:`features_key`."""
    h = hashlib.sha256()
    h.update(json.dumps([name, int(version), options], sort_keys=True).encode())
    h.update(str(like.dtype).encode() + repr(like.shape).encode())
    return h


def features_key(hasher: Any, features: np.ndarray) -> str:
    """:func:`result_key` from :func:`key_hasher`'s state (left unchanged) and the features,
    whose dtype and shape are those the state was made for."""
    h = hasher.copy()
    h.update(np.ascontiguousarray(features).tobytes())
    return KEY_PREFIX + h.hexdigest()


class LRUCache:
    """A thread-safe LRU map of at most ``capacity`` entries; ``on_evict(value)`` runs for each
    entry pushed out (outside the lock)."""

    def __init__(self, capacity: int, on_evict: Callable[[Any], None] | None = None) -> None:
        self.capacity = int(capacity)
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._on_evict = on_evict

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        evicted = []
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                evicted.append(self._data.popitem(last=False)[1])
        for v in evicted:
            if self._on_evict is not None:
                self._on_evict(v)

    def pop_all(self) -> list[Any]:
        with self._lock:
            values = list(self._data.values())
            self._data.clear()
        return values

    def keys(self) -> list[Any]:
        with self._lock:
            return list(self._data)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class InProcessResultCache:
    """Results kept in this process for ``ttl_s`` seconds, at most ``max_entries`` (LRU).

    Parameters
    ----------
    ttl_s : float
        Lifetime of an entry in seconds (> 0).
    max_entries : int
        Entries kept at most; the least recently used go first.
    clock : callable, optional
        Monotonic seconds (tests pass a fake clock).
    """

    kind = "memory"

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = int(max_entries)
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        now = self._clock()
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            expires, blob = item
            if expires <= now:
                del self._data[key]
                return None
            self._data.move_to_end(key)
        return json.loads(blob)

    def set(self, key: str, value: dict[str, Any]) -> None:
        blob = json.dumps(value)
        with self._lock:
            self._data[key] = (self._clock() + self.ttl_s, blob)
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    async def aget(self, key: str) -> dict[str, Any] | None:
        return self.get(key)

    async def aset(self, key: str, value: dict[str, Any]) -> None:
        self.set(key, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def close(self) -> None:
        self.clear()

    async def aclose(self) -> None:
        self.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class RedisResultCache:
    """Results in Redis under ``mlu:pred:<sha256>`` with a TTL (``PSETEX``), shared by every
    worker process and replica that points at the same server.

    The synchronous methods use a ``redis.Redis`` client, the coroutines a
    ``redis.asyncio.Redis`` client (created on first use in the running loop).
    """

    kind = "redis"

    def __init__(self, url: str, ttl_s: float) -> None:
        from ..models.adapters.base import require

        self._redis = require("redis", purpose="the Redis prediction cache")
        self.url = url
        self.ttl_ms = max(1, int(round(float(ttl_s) * 1000)))
        self._sync = self._redis.Redis.from_url(url)
        self._async: Any = None
        self._async_loop: Any = None

    def _aclient(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = self._redis.asyncio.Redis.from_url(self.url)
            self._async_loop = loop
        return self._async

    def ping(self) -> bool:
        return bool(self._sync.ping())

    def get(self, key: str) -> dict[str, Any] | None:
        blob = self._sync.get(key)
        return None if blob is None else json.loads(blob)

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._sync.psetex(key, self.ttl_ms, json.dumps(value))

    async def aget(self, key: str) -> dict[str, Any] | None:
        blob = await self._aclient().get(key)
        return None if blob is None else json.loads(blob)

    async def aset(self, key: str, value: dict[str, Any]) -> None:
        await self._aclient().psetex(key, self.ttl_ms, json.dumps(value))

    def clear(self) -> None:
        keys = list(self._sync.scan_iter(match=KEY_PREFIX + "*", count=1000))
        if keys:
            self._sync.delete(*keys)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
