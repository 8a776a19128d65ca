"""Behind a reverse proxy or tunnel: who the client really is, and the sub-path the server is reached under.

Uvicorn's own proxy-header handling is switched off (`voxclone serve` runs it with proxy_headers=False),
so this module is the one place that believes forwarding headers, and only from trusted proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from .asgi import ASGIApp, Receive, Scope_, Send, header_map

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Headers a proxy adds on the way in. Any of them present means the request was forwarded.
FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
)
_SCHEMES = {"http": ("http", "ws"), "https": ("https", "wss")}


def parse_address(value: str) -> IPAddress | None:
    """An address from one forwarded hop: `192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::1]:4711`, `2001:db8::1`,
    or a quoted Forwarded node; None for `unknown`, obfuscated names and anything else.
    """
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        value = value.split(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _forwarded_pairs(header: str, name: str) -> list[str]:
    """The `name=` values of an RFC 7239 Forwarded header, one per hop, oldest first."""
    values = []
    for element in header.split(","):
        for pair in element.split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == name:
                values.append(value.strip())
    return values


def _hops(headers: dict[str, str]) -> list[str]:
    """Addresses the forwarding chain names, oldest first: X-Forwarded-For, else Forwarded's `for=`.

    X-Forwarded-For comes first because nearly every proxy sets or extends it (nginx, Caddy,
    Cloudflare, ngrok, HAProxy), so a client's own Forwarded header cannot override it.
    """
    if "x-forwarded-for" in headers:
        return [hop.strip() for hop in headers["x-forwarded-for"].split(",") if hop.strip()]
    if "forwarded" in headers:
        return _forwarded_pairs(headers["forwarded"], "for")
    return []


class TrustedProxies:
    """The proxies whose forwarding headers are believed, as networks."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __contains__(self, address: IPAddress | None) -> bool:
        if address is None:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def client(self, peer: str, headers: dict[str, str]) -> str:
        """The client's address: the peer's own, unless the peer is a trusted proxy.

        From a trusted proxy: the right-most hop of the chain that is not itself a trusted proxy (the
        hops to its left were written by the client and may be lies), else CF-Connecting-IP. A hop that
        is not an address (`unknown`, garbage) stops the walk at the proxy that reported it.
        """
        reporter = parse_address(peer)
        if reporter not in self:
            return peer
        hops = _hops(headers)
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return str(reporter)
            if address not in self:
                return str(address)
            reporter = address
        if not hops and "cf-connecting-ip" in headers:
            return str(parse_address(headers["cf-connecting-ip"]) or reporter)
        return str(reporter)

    def scheme(self, peer: str, headers: dict[str, str]) -> str | None:
        """`http` or `https` as the trusted proxy says the client used it (X-Forwarded-Proto, Forwarded)."""
        if parse_address(peer) not in self:
            return None
        if "x-forwarded-proto" in headers:
            proto = headers["x-forwarded-proto"].split(",")[0]
        else:
            protos = _forwarded_pairs(headers.get("forwarded", ""), "proto")
            proto = protos[0] if protos else ""
        proto = proto.strip().strip('"').lower()
        return proto if proto in _SCHEMES else None


def forwarded(headers: dict[str, str]) -> bool:
    """Whether a proxy forwarded this request: any forwarding header, whoever sent it. Without keys such
    a request is refused, because a tunnel on this machine makes every visitor look local.
    """
    return any(name in headers for name in FORWARDING_HEADERS)


class ProxyMiddleware:
    """Puts the real client address (and scheme) into the ASGI scope, so the rate limit, the access log
    and everything after see the visitor, not the proxy. Mutates the scope in place, as uvicorn's own
    proxy middleware does, because the access log line is written from that same scope.
    """

    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("client"):
            headers = header_map(scope)
            peer = scope["client"][0]
            client = self.trusted.client(peer, headers)
            if client != peer:
                scope["client"] = (client, 0)
            scheme = self.trusted.scheme(peer, headers)
            if scheme is not None:
                scope["scheme"] = _SCHEMES[scheme][scope["type"] == "websocket"]
        await self.app(scope, receive, send)


class RootPathMiddleware:
    """Serves the app under a path prefix (`--root-path /voice`), whether the proxy strips the prefix
    (`/v1/voices` arrives) or passes it on (`/voice/v1/voices` arrives); direct requests without it work
    too. Routing, the docs page and mounted files then see a consistent root_path, and `/voice` alone is
    redirected to `/voice/` so the page's relative URLs resolve under it.
    """

    def __init__(self, app: ASGIApp, root_path: str) -> None:
        self.app = app
        self.root_path = root_path

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        root, path = self.root_path, scope["path"]
        if path == root and scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            await _redirect(send, root + "/" + (f"?{query}" if query else ""))
            return
        if not path.startswith(root + "/"):
            scope["path"] = root + path
            if "raw_path" in scope and scope["raw_path"] is not None:
                scope["raw_path"] = root.encode() + scope["raw_path"]
        scope["root_path"] = root
        await self.app(scope, receive, send)


async def _redirect(send: Send, location: str) -> None:
    headers: list[tuple[bytes, bytes]] = [(b"location", location.encode()), (b"content-length", b"0")]
    start: dict[str, Any] = {"type": "http.response.start", "status": 308, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": b""})
