"""HTTP to the API server for the controller's hot path: aiohttp, with lightkube's settings.

The Gateway's writes and reads and the informers' LISTs and WATCHes go through here. httpx
(lightkube's client) spent about 2 ms of CPU per request on this machine, aiohttp 0.8 ms
(docs/performance.md): with one Python thread doing every request of a fan-out, that is the
difference between the operator and the API server being the bottleneck.

What is taken from lightkube, so that a kubeconfig means the same to both clients:
- the TLS context (`verify_cluster`: the cluster's CA, the client certificate and key);
- the authentication (`user_auth`: a token, a token file re-read on 401, an exec plugin, basic
  auth), driven through its own flow: the Authorization header it produces is kept and asked
  for again after a 401, and the request is sent once more.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
import httpx2 as httpx
import orjson
from lightkube.config.client_adapter import user_auth, verify_cluster
from lightkube.config.kubeconfig import SingleConfig

logger = logging.getLogger(__name__)

# Requests in flight at most (the workers' applies, Events and status writes together); more
# wait for a connection. Each connection holds TLS buffers (asyncio's alone are 128 KiB), so
# the pool is sized to what the API server takes at once on small control planes, and an idle
# connection is closed after a while; a new one is a TLS handshake on both sides.
CONNECTIONS: Final = 32
KEEPALIVE_S: Final = 30.0
TIMEOUT_S: Final = 30.0


class Counter(Protocol):
    def record(self, method: str, path: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A whole response: its status, its reason phrase and its body."""

    status: int
    reason: str
    body: bytes

    def json(self) -> Any:  # noqa: ANN401 (a JSON document)
        return orjson.loads(self.body)


class Http(Protocol):
    """What the Gateway needs of a transport (tests give it a fake one)."""

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply: ...


class Transport:
    """One aiohttp session to the cluster of a kubeconfig, every request counted."""

    def __init__(self, config: SingleConfig, counter: Counter | None = None) -> None:
        assert config.user is not None, "a kubeconfig context without a user"
        self.base = config.cluster.server.rstrip("/")
        self.ssl = verify_cluster(config.cluster, config.user, config.abs_file)
        self.auth = user_auth(config.user)
        self.counter = counter
        # The proxy is decided once, from the environment, as lightkube's httpx client does
        # (HTTPS_PROXY, NO_PROXY): aiohttp's own `trust_env` reads ~/.netrc on every request.
        self.proxy = _env_proxy(self.base)
        self._session: aiohttp.ClientSession | None = None
        # WATCHes on their own connections, as many as there are informers: a long-lived
        # stream never takes a place in the requests' pool.
        self._streams: aiohttp.ClientSession | None = None
        self._authorization: str | None = None
        self._authorized = False
        self._refreshing: asyncio.Lock | None = None

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=self.ssl, limit=limit, keepalive_timeout=KEEPALIVE_S
            ),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "webapp-operator"},
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(CONNECTIONS)
        return self._session

    def _open_streams(self) -> aiohttp.ClientSession:
        if self._streams is None or self._streams.closed:
            self._streams = self._new_session(0)  # no limit: one per WATCH
        return self._streams

    async def close(self) -> None:
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()

    async def _header(self, rejected: str | None = None) -> str | None:
        """The Authorization header; after a 401 (`rejected` is what was sent), a fresh one."""
        if self.auth is None:
            return None
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if self._authorized and self._authorization != rejected:
                return self._authorization  # another request refreshed it meanwhile
            request = httpx.Request("GET", self.base)
            flow = self.auth.async_auth_flow(request)
            sent = await flow.__anext__()
            if self._authorized:
                # The flow retries with new credentials when told of the 401 (a token file
                # read again, the exec plugin run again); a static token has nothing else.
                with suppress(StopAsyncIteration):
                    sent = await flow.asend(httpx.Response(401, request=sent))
            await flow.aclose()
            self._authorization = sent.headers.get("Authorization")
            self._authorized = True
            return self._authorization

    def _headers(self, authorization: str | None, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _count(self, method: str, target: str) -> None:
        if self.counter is not None:
            self.counter.record(method, target)

    def _log(self, method: str, target: str, response: aiohttp.ClientResponse) -> None:
        """Every request at DEBUG, in httpx's words (`HTTP Request: GET URL "HTTP/1.1 200 OK"`),
        so one pattern reads the requests of both clients from a log (the chart's RBAC tests)."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                'HTTP Request: %s %s%s "HTTP/1.1 %d %s"',
                method,
                self.base,
                target,
                response.status,
                response.reason or "",
            )

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request and read its whole answer (a 401 is retried once, re-authorized)."""
        session = self._open()
        authorization = self._authorization if self._authorized else await self._header()
        target = _target(path, params)
        for attempt in (1, 2):
            self._count(method, target)
            async with session.request(
                method,
                self.base + path,
                data=body,
                params=params,
                headers=self._headers(authorization, content_type),
                proxy=self.proxy,
            ) as response:
                data = await response.read()
                self._log(method, target, response)
                if response.status == 401 and attempt == 1 and self.auth is not None:
                    authorization = await self._header(rejected=authorization)
                    continue
                return Reply(response.status, response.reason or "", data)
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[tuple[Reply, AsyncIterator[bytes]]]:
        """A GET whose body is read line by line (a WATCH). The reply's body is empty unless
        the status is an error; the lines are then empty."""
        session = self._open_streams()
        authorization = self._authorization if self._authorized else await self._header()
        target = _target(path, params)
        self._count("GET", target)
        timeout = aiohttp.ClientTimeout(total=None, connect=TIMEOUT_S, sock_read=read_timeout)
        async with session.get(
            self.base + path,
            params=params,
            headers=self._headers(authorization, None),
            timeout=timeout,
            proxy=self.proxy,
        ) as response:
            self._log("GET", target, response)
            if response.status == 401 and self.auth is not None:
                await self._header(rejected=authorization)  # the next attempt uses the new one
            if response.status >= 400:
                yield Reply(response.status, response.reason or "", await response.read()), _none()
                return
            yield Reply(response.status, response.reason or "", b""), _lines(response.content)


def _target(path: str, params: Mapping[str, str] | None) -> str:
    """The path with its query string."""
    return f"{path}?{urllib.parse.urlencode(params)}" if params else path


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, unless NO_PROXY exempts its host."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


async def _none() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover (makes this an async generator)


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """Newline-separated lines of any length (a WATCH event of a large object is one line)."""
    pending = b""
    async for chunk in content.iter_any():
        pending += chunk
        if b"\n" not in chunk:
            continue
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending
