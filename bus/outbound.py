"""Outbound HTTP that cannot be turned at our own network (alert webhooks, and any later call).

A URL given by a user is a request to connect wherever it points; left alone it reaches the
loopback interface, the private network, the cloud's metadata service. So every outbound call:

- takes ``http`` or ``https`` only, with a host, and no user:password in the URL;
- resolves the host once, and refuses it unless every address it resolves to is public (not
  loopback, private, link-local, shared, multicast, reserved or unspecified, in any encoding:
  ``2130706433``, ``0x7f.1``, ``::ffff:127.0.0.1``, 6to4, Teredo and NAT64 forms included), or
  inside a network ``OUTBOUND_ALLOW`` lists;
- connects to the address it checked (a second lookup could answer otherwise: DNS rebinding),
  sending the name as ``Host`` and as TLS server name;
- follows no redirect (a 3xx is the answer), with short timeouts and a bounded response body.

Errors say what was refused and why, or only that the destination could not be reached: never
whether a port was open, closed or filtered.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import json as jsonlib
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bus import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: NAT64's well-known prefix: the last 32 bits are an IPv4 address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: names that are local by definition (RFC 6761), refused without a lookup
_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal", ".home.arpa")
MAX_BODY = 1 << 20


class Refused(Exception):
    """The destination is not allowed: retrying cannot help (a permanent error for a job)."""


class Unreachable(Exception):
    """The destination could not be reached or did not answer in time (worth retrying)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]
    #: the response body was longer than the call's ``max_body``: ``body`` is its beginning
    truncated: bool = False


@functools.cache
def _allowed_networks(text: str) -> tuple[Network, ...]:
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            problem = f"bad configuration: OUTBOUND_ALLOW: {item!r} is not an address or network"
            raise settings.SettingsError(problem) from None
    return tuple(networks)


def allowed_networks() -> tuple[Network, ...]:
    return _allowed_networks(settings.get().outbound_allow)


def _embedded(address: Address) -> list[Address]:
    """The address and the IPv4 addresses an IPv6 one carries (mapped, 6to4, Teredo, NAT64)."""
    found: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in _NAT64:
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def why_not(address: Address, allow: Iterable[Network] = ()) -> str | None:
    """Why ``address`` may not be called, or None when it may."""
    allow = tuple(allow)
    if any(address in network for network in allow if network.version == address.version):
        return None
    for each in _embedded(address):
        if each.is_loopback:
            return f"{address} is a loopback address"
        if each.is_link_local:
            return f"{address} is a link-local address (cloud metadata services live there)"
        if each.is_multicast:
            return f"{address} is a multicast address"
        if each.is_unspecified:
            return f"{address} is the unspecified address"
        if not each.is_global:
            return f"{address} is a private or reserved address"
    return None


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an outbound URL, or Refused saying what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise Refused(f"not a URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise Refused("only http and https URLs are called")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not sent; use a token in the path")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise Refused("the URL contains spaces or control characters")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def redacted(url: str) -> str:
    """A webhook URL as the API and the dashboard show it: a Slack webhook's path is its secret, so
    only the scheme and the host are kept (``https://hooks.slack.com/…``)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}/…"


def _literal(host: str) -> Address | None:
    """The address a host written as one stands for, in any of the encodings resolvers accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # 2130706433, 0x7f.1, 127.1 ...: what inet_aton (and so getaddrinfo) reads as IPv4
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def check_destination(url: str, *, resolve: bool = True) -> None:
    """Refused when ``url`` may not be called. For a check at creation time: without ``resolve``, or
    when the name does not resolve (yet), only the URL and a literal address are checked; every call
    checks again (``request``)."""
    _, host, port, _ = parse(url)
    allow = allowed_networks()
    literal = _literal(host)
    if literal is not None:
        if (reason := why_not(literal, allow)) is not None:
            raise Refused(reason)
        return
    name = host.lower().rstrip(".")
    if (name == "localhost" or name.endswith(_LOCAL_NAMES)) and not allow:
        raise Refused(f"{host} is a local name")
    if resolve:
        with contextlib.suppress(Unreachable):  # not resolvable now: the call will look again
            _resolve(host, port, allow)


def _resolve(host: str, port: int, allow: tuple[Network, ...]) -> list[Address]:
    literal = _literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise Unreachable(f"{host} does not resolve") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    # every answer must be allowed: a name that also points inward is refused whole
    for address in addresses:
        if (reason := why_not(address, allow)) is not None:
            raise Refused(reason if literal is not None else f"{host} resolves to {reason}")
    if not addresses:
        raise Unreachable(f"{host} does not resolve")
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: Address, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def request(
    method: str,
    url: str,
    *,
    json: object = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
    max_body: int = MAX_BODY,
) -> Answer:
    """One call, checked as the module says. Raises Refused or Unreachable; any HTTP status,
    a 3xx included (redirects are not followed), is an Answer with at most ``max_body`` bytes of
    its body. ``timeout`` bounds the connection and each read, not the whole call."""
    scheme, host, port, path = parse(url)
    address = _resolve(host, port, allowed_networks())[0]
    sent = dict(headers or {})
    if json is not None:
        body = jsonlib.dumps(json).encode()
        sent.setdefault("Content-Type", "application/json")
    sent.setdefault("User-Agent", "switchyard")
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = kind(host, port, address, timeout)
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        data = response.read(max_body + 1)
        return Answer(
            response.status,
            data[:max_body],
            {k.lower(): v for k, v in response.getheaders()},
            truncated=len(data) > max_body,
        )
    except ssl.SSLError:
        raise Unreachable(f"TLS with {host} failed") from None
    except (OSError, http.client.HTTPException):
        # refused, reset, timed out, no route: one message, so errors do not map the network
        raise Unreachable(f"{host} could not be reached") from None
    finally:
        connection.close()
