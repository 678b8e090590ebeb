"""Where HTTP steps may connect: the ``http.allow`` and ``http.deny`` settings, decided.

A workflow's data picks the URLs its HTTP steps fetch (a run param, an upstream output, a
redirect), so a service that runs workflows for others must keep them away from its own
network: loopback, the cloud metadata address, private ranges. This module is the decision,
pure (no I/O): ``pardag.kinds.http_connect`` resolves each host, asks here about the name and
every address, and connects only to an address that was allowed.

An entry is a host name (``api.example.com``; ``*.example.com`` for its subdomains; ``*`` for
any host), an IP address or a CIDR range (v4 or v6), or a preset (``private``), each optionally
with ``:port`` (``[::1]:8080`` for IPv6). The rules:

* the name is checked against name entries, and every address it resolves to against address
  entries; an IPv6 address that carries an IPv4 one (``::ffff:127.0.0.1``, NAT64, 6to4) is
  checked as both;
* among the entries that match, the most specific decides: an exact name over ``*.x.y`` over
  ``*``, a longer prefix over a shorter one, an entry with a port over one without, an entry
  written out over a preset's range of the same size; a tie goes to deny;
* any denial refuses the request, and a name that is allowed does not lift a denied address
  (a name's DNS can change: allow the address itself);
* with ``allow`` empty, what nothing denies goes; with ``allow`` set, only what it matches.

No setting is the open policy (everything goes, as before there was one).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

__all__ = [
    "PRESETS",
    "EgressPolicy",
    "EgressRefused",
    "Refusal",
    "Rule",
    "entries",
    "parse_entry",
    "service_floor",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PRESETS: dict[str, tuple[tuple[str, str], ...]] = {
    "private": (
        ("localhost", "loopback name"),
        ("*.localhost", "loopback name"),
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("0.0.0.0/8", "unspecified, reaches this host"),
        ("::/128", "unspecified, reaches this host"),
        ("169.254.0.0/16", "link-local, cloud metadata"),
        ("fe80::/10", "link-local"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("fc00::/7", "unique local, cloud metadata fd00:ec2::254"),
        ("fec0::/10", "site-local"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("198.18.0.0/15", "benchmarking"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("240.0.0.0/4", "reserved, broadcast"),
    ),
}
"""Named sets of entries. ``private``: everything a request from a server should not reach
on that server's own network (IPv4-mapped and other embedded IPv4 forms are covered by the
IPv4 ranges, see the module docstring)."""

_NAME = re.compile(r"^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]*[a-z_-][a-z0-9_-]*$")
"""A host name whose last label is not all digits (``127.1`` is an address, spelt oddly)."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")
_EXPECTED = (
    "a host name (api.example.com, *.example.com, *), an IP address or CIDR range "
    "(10.0.0.0/8, ::1), or a preset (" + ", ".join(PRESETS) + "), with an optional :port"
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of ``allow`` or ``deny`` (a preset gives several, each naming the preset)."""

    entry: str  # as written, or the preset's range
    allow: bool
    port: int | None = None
    network: Network | None = None
    name: str | None = None  # "api.example.com", "*.example.com" or "*"
    preset: str | None = None
    label: str = ""  # what a preset's range is ("loopback")

    def rank(self) -> tuple[int, int, bool, bool]:
        """How specific the rule is: the most specific matching rule decides."""
        if self.network is not None:
            primary, size = 1, self.network.prefixlen
        elif self.name == "*":
            primary, size = 0, 0
        else:
            primary = 2 if self.name and self.name.startswith("*.") else 3
            size = (self.name or "").count(".")
        return primary, size, self.port is not None, self.preset is None

    def matches(self, host: str | IPAddress, port: int) -> bool:
        """Whether the rule covers a name (str) or an address at ``port``."""
        if self.port is not None and self.port != port:
            return False
        if isinstance(host, str):
            if self.name is None:
                return False
            if self.name.startswith("*"):
                return self.name == "*" or host.endswith(self.name[1:])
            return host == self.name
        return self.network is not None and host in self.network

    def describe(self) -> str:
        """``http.deny preset 'private' (127.0.0.0/8, loopback)`` or ``http.allow entry 'x'``."""
        setting = "http.allow" if self.allow else "http.deny"
        if self.preset is not None:
            return f"{setting} preset {self.preset!r} ({self.entry}, {self.label})"
        return f"{setting} entry {self.entry!r}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not go: what was checked, and the rule (None: not in ``allow``)."""

    host: str
    port: int
    address: str | None
    rule: Rule | None
    allow_entries: tuple[str, ...] = ()
    fix: str = ""  # a floor's own words on how to lift it (``EgressPolicy(fix=...)``)

    def __str__(self) -> str:
        shown = self.host
        if self.address is not None and self.address != self.host:
            shown = f"{self.host} resolves to {self.address}"
        if self.fix and self.rule is not None:
            by = ", denied by" if " resolves " in shown else " is denied by"
            rule = self.rule
            what = f"the egress preset {rule.preset!r}" if rule.preset else "the egress entry"
            return f"{shown}{by} {what} ({rule.entry}, {rule.label or 'denied'}): {self.fix}"
        if self.rule is None:
            return (
                f"{shown} (port {self.port}) is not in http.allow "
                f"({', '.join(self.allow_entries)}); if it should be reached, add it to "
                "http.allow (PARDAG_HTTP_ALLOW, --http-allow, or allow in pardag.toml's [http])"
            )
        denied = f"{shown}, denied by" if " resolves " in shown else f"{shown} is denied by"
        denied = f"{denied} {self.rule.describe()}"
        if self.rule.preset is None:
            return f"{denied}; if it should be reached, remove that entry from http.deny"
        entry = self._exception()
        return (
            f"{denied}; if it should be reached, allow it with PARDAG_HTTP_ALLOW={entry} or "
            f"--http-allow {entry} (and '*' too if http.allow was empty: once set, it admits "
            "only what it lists)"
        )

    def _exception(self) -> str:
        """The ``http.allow`` entry that lets this request through the preset's rule."""
        if self.address is None:  # a loopback name: its addresses are loopback too
            return f"{_host(self.host)},127.0.0.1,[::1]"
        rule = self.rule
        form = next((f for f in _forms(self.address) if rule and rule.matches(f, self.port)), None)
        shown = str(form or self.address)
        return f"[{shown}]" if ":" in shown else shown


class EgressRefused(Exception):
    """The policy refused a connection; ``refusal`` says what was checked and which rule."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


def parse_entry(text: str, allow: bool) -> list[Rule]:
    """The rules of one entry; ValueError, naming the entry and the forms, when it is none."""
    raw = text.strip().lower()
    if raw in PRESETS:
        return [_rule(entry, allow, None, preset=raw, label=label) for entry, label in PRESETS[raw]]
    host, port = _split_port(raw, text)
    return [_rule(host, allow, port, original=text.strip())]


def _split_port(raw: str, text: str) -> tuple[str, int | None]:
    """(host, port) of ``host:port``, ``[v6]:port``, ``[v6]`` or a bare host or IPv6 address."""
    if raw.startswith("["):
        inner, bracket, rest = raw[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not {_EXPECTED}")
        return inner, _port(rest[1:], text) if rest else None
    if raw.count(":") == 1:
        host, _, port = raw.partition(":")
        return host, _port(port, text)
    return raw, None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r} has port {text!r}; a port is a number from 1 to 65535")
    return int(text)


def _rule(
    host: str,
    allow: bool,
    port: int | None,
    *,
    preset: str | None = None,
    label: str = "",
    original: str = "",
) -> Rule:
    entry = original or host
    if any(c.isalpha() for c in host.replace("*", "")) and ":" not in host:
        return Rule(entry, allow, port, name=_name(host, entry), preset=preset, label=label)
    if host == "*":
        return Rule(entry, allow, port, name="*", preset=preset, label=label)
    try:
        network = ipaddress.ip_network(host, strict=True)
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not {_EXPECTED} ({exc})") from None
    return Rule(entry, allow, port, network=network, preset=preset, label=label)


def _name(host: str, entry: str) -> str:
    """A host name entry, lower-case, without a trailing dot; ``*.`` only in front."""
    name = host.rstrip(".")
    bare = name[2:] if name.startswith("*.") else name
    if not bare or not _NAME.match(bare) or len(bare) > 253:
        hint = " (write an internationalised name in its xn-- form)" if not bare.isascii() else ""
        raise ValueError(f"{entry!r} is not {_EXPECTED}{hint}")
    return name


def entries(value: object) -> tuple[str, ...]:
    """The entries of a setting's value: a list of strings, or one comma-separated string
    (as ``PARDAG_HTTP_ALLOW`` and flags give them), each checked. The ValueError's words
    follow "expected" (``pardag.settings_rules``)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"a list of entries, each {_EXPECTED}; got {value!r}")
    out: list[str] = []
    for part in (p.strip() for item in items for p in item.split(",")):
        if part:
            try:
                parse_entry(part, allow=True)
            except ValueError as exc:
                raise ValueError(f"a list of entries, but {exc}") from None
            out.append(part)
    return tuple(out)


class EgressPolicy:
    """The parsed ``http.allow`` and ``http.deny``: ``check_name`` before resolving a host,
    ``check`` once its addresses are known. The empty policy lets everything go.

    ``floor``: a policy checked first, which nothing of this one lifts (the service's preset
    for the runs it starts, ``service_floor``); ``fix``: how to lift this policy's refusals,
    said in them instead of the settings' words (a floor is no setting of the run)."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        *,
        floor: EgressPolicy | None = None,
        fix: str = "",
    ) -> None:
        self.allow = tuple(r for e in allow for r in parse_entry(e, allow=True))
        self.deny = tuple(r for e in deny for r in parse_entry(e, allow=False))
        self.floor, self.fix = floor, fix
        self._allow_entries = tuple(dict.fromkeys(r.preset or r.entry for r in self.allow))
        self._names = [r for r in (*self.allow, *self.deny) if r.name is not None]
        self._networks = [r for r in (*self.allow, *self.deny) if r.network is not None]

    @property
    def open(self) -> bool:
        """Whether every request may go (no entry at all): no check is needed."""
        return not self.allow and not self.deny and (self.floor is None or self.floor.open)

    def check_name(self, host: str, port: int) -> Refusal | None:
        """The refusal of ``host`` by name alone, before it is resolved, or None."""
        if self.floor is not None and (refused := self.floor.check_name(host, port)):
            return refused
        rule = _decide(self._names, _host(host), port)
        if rule is None or rule.allow:
            return None
        return Refusal(host, port, None, rule, fix=self.fix)

    def check(self, host: str, port: int, addresses: Iterable[str]) -> Refusal | None:
        """The refusal of a connection to ``host``:``port`` at any of ``addresses`` (all of
        what the host resolved to), or None when every one may be reached."""
        addresses = tuple(addresses)
        if self.floor is not None and (refused := self.floor.check(host, port, addresses)):
            return refused
        refused = self._check(host, port, addresses)
        return replace(refused, fix=self.fix) if refused is not None and self.fix else refused

    def _check(self, host: str, port: int, addresses: Iterable[str]) -> Refusal | None:
        by_name = _decide(self._names, _host(host), port)
        if by_name is not None and not by_name.allow:
            return Refusal(host, port, None, by_name)
        for address in addresses:
            by_address = self._address(address, port)
            if by_address is not None and not by_address.allow:
                return Refusal(host, port, address, by_address)
            if self.allow and by_name is None and by_address is None:
                return Refusal(host, port, address, None, self._allow_entries)
        return None

    def _address(self, address: str, port: int) -> Rule | None:
        """The deciding rule for ``address`` and each IPv4 address it carries: a denial of
        any form wins, else an allowance of any."""
        decided = [_decide(self._networks, form, port) for form in _forms(address)]
        denied = [r for r in decided if r is not None and not r.allow]
        allowed = [r for r in decided if r is not None and r.allow]
        return next(iter(denied or allowed), None)


def _host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _decide(rules: Sequence[Rule], host: str | IPAddress, port: int) -> Rule | None:
    """The most specific rule covering ``host`` (a deny on a tie), or None."""
    best: Rule | None = None
    for rule in rules:
        if rule.matches(host, port) and (
            best is None
            or rule.rank() > best.rank()
            or (rule.rank() == best.rank() and not rule.allow)
        ):
            best = rule
    return best


def _forms(address: str) -> list[IPAddress]:
    """``address`` and each IPv4 address an IPv6 one carries (mapped, compatible, NAT64,
    6to4): a connection to any of them may end at that IPv4 address."""
    ip = ipaddress.ip_address(address.partition("%")[0])
    forms: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        elif (ip in _COMPAT and int(ip) > 1) or ip in _NAT64:  # :: and ::1 are their own
            forms.append(low)
        if ip.sixtofour is not None:
            forms.append(ip.sixtofour)
    return forms


def service_floor(org: str) -> EgressPolicy:
    """The egress preset of the runs the service starts (API, triggers) for ``org``: the
    ``private`` preset denied, whatever the workflow's own ``http.allow`` says, since a
    workflow's data picks the URLs and the service's network is not its tenants'."""
    return EgressPolicy(
        deny=("private",),
        fix=(
            "a run the service started may not reach loopback, link-local or private "
            f"addresses; if organisation {org!r} should, its operator allows it with "
            f"pardag serve --allow-private-egress {org} (and the same flag to pardag worker)"
        ),
    )
