"""A token bucket shared by every worker process, so HubSpot sees one client's pace.

Redis holds each bucket; one Lua script refills and reserves atomically, using Redis's own
clock so workers on different hosts agree. A "pause" key (with a TTL) makes every process
hold back after any one of them got a 429; a "halt" key stops every bucket at once until
HubSpot's daily window resets. Without Redis (the embedded dev mode) the same
interface runs in-process, shared by the threads of one process only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

# Refill, then reserve one token if the caller can afford the wait. Tokens may go negative:
# a reservation is a promise to call no earlier than `wait` seconds from now, which keeps
# concurrent callers in a fair queue instead of racing on every refill.
# KEYS: bucket hash, pause key, halt key. ARGV: rate, capacity, max_wait (seconds).
# Returns {"halted"|"paused"|"ok"|"busy", seconds}: halted = every bucket is stopped for that
# long (HubSpot's daily limit); paused = retry after that long; ok = go after that long;
# busy = the wait would exceed max_wait, nothing was reserved.
_ACQUIRE = """
local halt_ms = redis.call('PTTL', KEYS[3])
if halt_ms > 0 then
  return {'halted', tostring(halt_ms / 1000)}
end
local pause_ms = redis.call('PTTL', KEYS[2])
if pause_ms > 0 then
  return {'paused', tostring(pause_ms / 1000)}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
end
if wait > max_wait then
  return {'busy', tostring(wait)}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity / rate + wait) * 1000) + 1000)
return {'ok', tostring(wait)}
"""

# Only ever lengthen a pause: a short Retry-After must not cut a longer one short.
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
end
return 1
"""


class ThrottleTimeout(TimeoutError):
    """No token became available within the caller's timeout."""


class ThrottleUnavailable(RuntimeError):
    """Redis could not be reached, so no process can know the shared pace."""


class ThrottleHalted(RuntimeError):
    """Every bucket is halted (HubSpot's daily limit is spent) for `seconds` more."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"HubSpot calls halted for {seconds:.0f}s more (daily limit reached)")
        self.seconds = seconds


class _Backend(Protocol):
    def try_acquire(
        self, bucket: str, rate: float, capacity: int, max_wait: float
    ) -> tuple[str, float]: ...

    def pause(self, bucket: str, seconds: float) -> None: ...

    def halt(self, seconds: float) -> None: ...

    def halted_for(self) -> float: ...


class _RedisBackend:
    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.prefix = prefix
        self.acquire_script = self.client.register_script(_ACQUIRE)
        self.pause_script = self.client.register_script(_PAUSE)

    def try_acquire(
        self, bucket: str, rate: float, capacity: int, max_wait: float
    ) -> tuple[str, float]:
        keys = [
            f"{self.prefix}:{bucket}:tokens",
            f"{self.prefix}:{bucket}:pause",
            f"{self.prefix}:halt",
        ]
        try:
            status, seconds = self.acquire_script(keys=keys, args=[rate, capacity, max_wait])
        except redis.RedisError as error:
            raise ThrottleUnavailable(f"throttle {bucket!r}: {error}") from error
        return status.decode(), float(seconds)

    def pause(self, bucket: str, seconds: float) -> None:
        milliseconds = max(1, int(seconds * 1000))
        try:
            self.pause_script(keys=[f"{self.prefix}:{bucket}:pause"], args=[milliseconds])
        except redis.RedisError as error:
            raise ThrottleUnavailable(f"throttle {bucket!r}: {error}") from error

    def halt(self, seconds: float) -> None:
        milliseconds = max(1, int(seconds * 1000))
        try:
            self.pause_script(keys=[f"{self.prefix}:halt"], args=[milliseconds])
        except redis.RedisError as error:
            raise ThrottleUnavailable(f"throttle halt: {error}") from error

    def halted_for(self) -> float:
        try:
            milliseconds = self.client.pttl(f"{self.prefix}:halt")
        except redis.RedisError as error:
            raise ThrottleUnavailable(f"throttle halt: {error}") from error
        return max(0, milliseconds) / 1000


@dataclass
class _LocalBucket:
    tokens: float
    updated: float
    paused_until: float = 0.0


class _LocalBackend:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, _LocalBucket] = {}
        self.halted_until = 0.0

    def _bucket(self, name: str, capacity: int, now: float) -> _LocalBucket:
        return self.buckets.setdefault(name, _LocalBucket(tokens=capacity, updated=now))

    def try_acquire(
        self, bucket: str, rate: float, capacity: int, max_wait: float
    ) -> tuple[str, float]:
        with self.lock:
            now = time.monotonic()
            if self.halted_until > now:
                return "halted", self.halted_until - now
            state = self._bucket(bucket, capacity, now)
            if state.paused_until > now:
                return "paused", state.paused_until - now
            tokens = min(capacity, state.tokens + (now - state.updated) * rate)
            wait = (1 - tokens) / rate if tokens < 1 else 0.0
            if wait > max_wait:
                return "busy", wait
            state.tokens, state.updated = tokens - 1, now
            return "ok", wait

    def pause(self, bucket: str, seconds: float) -> None:
        with self.lock:
            now = time.monotonic()
            state = self._bucket(bucket, 1, now)
            state.paused_until = max(state.paused_until, now + seconds)

    def halt(self, seconds: float) -> None:
        with self.lock:
            self.halted_until = max(self.halted_until, time.monotonic() + seconds)

    def halted_for(self) -> float:
        with self.lock:
            return max(0.0, self.halted_until - time.monotonic())


class TokenBucket:
    """Named token buckets; Redis-backed for redis:// URLs, in-process otherwise."""

    def __init__(self, redis_url: str | None, *, prefix: str = "leadline:throttle") -> None:
        self.shared = bool(redis_url) and redis_url.startswith(("redis://", "rediss://"))
        self._backend: _Backend = (
            _RedisBackend(redis_url, prefix) if self.shared and redis_url else _LocalBackend()
        )

    def acquire(self, bucket: str, *, rate: float, capacity: int, timeout: float) -> float:
        """Block until `bucket` grants a call; return the seconds waited.

        Raises ThrottleTimeout (without sleeping the remainder) when no token can be had
        within `timeout`, so the caller can reschedule instead of holding a worker,
        ThrottleHalted at once while every call is halted (see halt), and ThrottleUnavailable
        when Redis is down.
        """
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be > 0 and capacity >= 1")
        started = time.monotonic()
        deadline = started + timeout
        while True:
            remaining = deadline - time.monotonic()
            status, seconds = self._backend.try_acquire(bucket, rate, capacity, max(0.0, remaining))
            if status == "halted":
                raise ThrottleHalted(seconds)
            if status == "ok":
                time.sleep(seconds)
                return time.monotonic() - started
            if status == "busy" or seconds > remaining:
                raise ThrottleTimeout(
                    f"throttle {bucket!r}: next call possible in {seconds:.2f}s, "
                    f"more than the {max(0.0, remaining):.2f}s left of a {timeout:.2f}s timeout"
                )
            time.sleep(seconds)

    def pause(self, bucket: str, seconds: float) -> None:
        """Hold back every caller of `bucket`, in every process, for `seconds`."""
        if seconds > 0:
            self._backend.pause(bucket, seconds)

    def halt(self, seconds: float) -> None:
        """Stop every bucket, in every process, for `seconds` (never shortens a halt)."""
        if seconds > 0:
            self._backend.halt(seconds)

    def halted_for(self) -> float:
        """Seconds left of the current halt; 0.0 when calls may go."""
        return self._backend.halted_for()
