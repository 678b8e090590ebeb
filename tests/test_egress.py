"""``pardag.egress``: the entries of ``http.allow``/``http.deny`` and what they decide."""

from __future__ import annotations

from pathlib import Path

import pytest

from pardag import ArgumentError, Workflow
from pardag.config import SettingsError, resolve
from pardag.egress import EgressPolicy, entries, parse_entry
from pardag.model import with_overrides

PRIVATE = EgressPolicy(deny=["private"])


def refused(policy: EgressPolicy, address: str, host: str = "svc.test", port: int = 80) -> bool:
    return policy.check(host, port, [address]) is not None


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.255.0.9",
        "::1",
        "0.0.0.0",
        "::",
        "169.254.169.254",  # cloud metadata
        "fd00:ec2::254",  # cloud metadata, IPv6
        "fe80::1",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "fc00::5",
        "100.64.0.1",
        "224.0.0.1",
        "ff02::1",
        "255.255.255.255",
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",  # IPv4-compatible
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    ],
)
def test_the_private_preset_denies_the_local_network_in_every_form(address: str) -> None:
    assert refused(PRIVATE, address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "172.32.0.1"]
)
def test_the_private_preset_lets_public_addresses_go(address: str) -> None:
    assert not refused(PRIVATE, address)


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "localhost.", "api.localhost"])
def test_the_private_preset_denies_loopback_names_before_they_are_resolved(host: str) -> None:
    refusal = PRIVATE.check_name(host, 80)
    assert refusal is not None
    assert "denied by http.deny preset 'private' (" in str(refusal)
    assert PRIVATE.check_name("localhost.example.com", 80) is None


def test_the_empty_policy_is_open_and_lets_everything_go() -> None:
    policy = EgressPolicy()
    assert policy.open
    assert policy.check("localhost", 80, ["127.0.0.1"]) is None
    assert not PRIVATE.open


def test_every_address_must_pass_not_only_the_first() -> None:
    refusal = PRIVATE.check("mixed.test", 80, ["8.8.8.8", "10.0.0.7"])
    assert refusal is not None and refusal.address == "10.0.0.7"
    assert "mixed.test resolves to 10.0.0.7, denied by http.deny preset 'private'" in str(refusal)


def test_an_allow_entry_more_specific_than_the_preset_opens_that_address_only() -> None:
    policy = EgressPolicy(allow=["127.0.0.1:8080", "*"], deny=["private"])
    assert not refused(policy, "127.0.0.1", port=8080)
    assert not refused(policy, "::ffff:127.0.0.1", port=8080)
    assert refused(policy, "127.0.0.1", port=8081)
    assert refused(policy, "127.0.0.2", port=8080)
    assert refused(policy, "10.0.0.1", port=8080)
    assert not refused(policy, "8.8.8.8", port=443)  # '*' keeps the rest open


def test_an_entry_written_out_beats_a_preset_range_of_the_same_size() -> None:
    policy = EgressPolicy(allow=["::1"], deny=["private"])
    assert not refused(policy, "::1")


def test_with_allow_set_only_what_it_lists_may_go() -> None:
    policy = EgressPolicy(allow=["api.example.com", "10.0.0.0/8:443"])
    assert policy.check("api.example.com", 80, ["93.184.216.34"]) is None
    assert policy.check("other.example.com", 80, ["10.9.9.9"]) is not None  # wrong port
    assert policy.check("other.example.com", 443, ["10.9.9.9"]) is None
    refusal = policy.check("evil.example.net", 443, ["93.184.216.35"])
    assert refusal is not None
    assert "is not in http.allow (api.example.com, 10.0.0.0/8:443)" in str(refusal)


def test_the_most_specific_rule_decides_and_a_tie_goes_to_deny() -> None:
    policy = EgressPolicy(allow=["10.0.0.0/8"], deny=["10.1.0.0/16"])
    assert not refused(policy, "10.2.0.1") and refused(policy, "10.1.0.1")
    tie = EgressPolicy(allow=["10.0.0.0/8"], deny=["10.0.0.0/8"])
    assert refused(tie, "10.2.0.1")
    names = EgressPolicy(allow=["api.example.com"], deny=["*.example.com"])
    assert names.check("api.example.com", 80, ["1.2.3.4"]) is None
    assert names.check("www.example.com", 80, ["1.2.3.4"]) is not None
    deny_all = EgressPolicy(allow=["api.example.com"], deny=["*"])
    assert deny_all.check_name("api.example.com", 443) is None
    assert deny_all.check_name("other.example.com", 443) is not None


def test_a_port_makes_an_entry_more_specific() -> None:
    policy = EgressPolicy(allow=["10.0.0.0/8:443"], deny=["10.0.0.0/8"])
    assert not refused(policy, "10.0.0.1", port=443)
    assert refused(policy, "10.0.0.1", port=80)


def test_an_allowed_name_does_not_lift_a_denied_address() -> None:
    """A name's DNS can change: a wildcard for an attacker's domain must not open 10/8."""
    policy = EgressPolicy(allow=["*.example.com"], deny=["private"])
    refusal = policy.check("evil.example.com", 80, ["10.0.0.1"])
    assert refusal is not None and "denied by http.deny preset 'private'" in str(refusal)


def test_wildcards_match_subdomains_only_and_names_match_exactly() -> None:
    policy = EgressPolicy(deny=["*.example.com", "localhost"])
    assert policy.check_name("a.b.example.com", 80) is not None
    assert policy.check_name("example.com", 80) is None
    assert policy.check_name("notexample.com", 80) is None
    assert policy.check_name("xlocalhost", 80) is None


def test_the_refusal_names_the_rule_and_the_fix() -> None:
    refusal = PRIVATE.check("fetch.test", 8080, ["169.254.169.254"])
    text = str(refusal)
    assert "fetch.test resolves to 169.254.169.254, denied by http.deny preset 'private' (" in text
    assert "169.254.0.0/16, link-local, cloud metadata)" in text
    assert "PARDAG_HTTP_ALLOW=169.254.169.254" in text
    mapped = str(PRIVATE.check("::ffff:127.0.0.1", 80, ["::ffff:127.0.0.1"]))
    assert mapped.startswith("::ffff:127.0.0.1 is denied by")
    assert "PARDAG_HTTP_ALLOW=127.0.0.1 " in mapped  # the IPv4 address the preset covers
    own = str(EgressPolicy(deny=["10.0.0.0/8"]).check("x", 80, ["10.0.0.1"]))
    assert "denied by http.deny entry '10.0.0.0/8'; if it should be reached, remove" in own


@pytest.mark.parametrize(
    ("entry", "network", "name", "port"),
    [
        ("10.0.0.0/8", "10.0.0.0/8", None, None),
        ("10.0.0.0/8:443", "10.0.0.0/8", None, 443),
        ("127.0.0.1", "127.0.0.1/32", None, None),
        ("::1", "::1/128", None, None),
        ("[::1]:8080", "::1/128", None, 8080),
        ("[fc00::]/7", None, None, None),
        ("fc00::/7", "fc00::/7", None, None),
        ("API.Example.com", None, "api.example.com", None),
        ("api.example.com.:443", None, "api.example.com", 443),
        ("*.example.com", None, "*.example.com", None),
        ("*", None, "*", None),
        ("*:25", None, "*", 25),
    ],
)
def test_entries_parse(entry: str, network: str | None, name: str | None, port: int) -> None:
    if entry == "[fc00::]/7":  # a bracket holds an address, not a range
        with pytest.raises(ValueError):
            parse_entry(entry, allow=False)
        return
    [rule] = parse_entry(entry, allow=False)
    assert (str(rule.network) if rule.network else None, rule.name, rule.port) == (
        network,
        name,
        port,
    )


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("127.1", "'127.1' is not a host name"),
        ("0x7f.0.0.1", "is not a host name"),
        ("2130706433", "is not a host name"),
        ("10.0.0.1/8", "has host bits set"),
        ("api.example.com:0", "a port is a number from 1 to 65535"),
        ("api.example.com:http", "a port is a number from 1 to 65535"),
        ("[::1", "is not a host name"),
        ("a b", "is not a host name"),
        ("bücher.de", "xn-- form"),
        ("*.", "is not a host name"),
    ],
)
def test_bad_entries_are_errors_naming_the_entry(entry: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_entry(entry, allow=True)
    assert words in str(caught.value)
    assert repr(entry) in str(caught.value)


def test_a_setting_value_is_a_list_or_comma_separated_text() -> None:
    assert entries("127.0.0.0/8, api.example.com,,") == (
        "127.0.0.0/8",
        "api.example.com",
    )
    assert entries(["private", "a.test,b.test"]) == ("private", "a.test", "b.test")
    with pytest.raises(ValueError, match=r"^a list of entries, each a host name .*; got 5$"):
        entries(5)
    with pytest.raises(ValueError, match=r"^a list of entries, each .*; got \['a', 1\]$"):
        entries(["a", 1])
    with pytest.raises(ValueError, match=r"^a list of entries, but '127\.1' is not a host"):
        entries(["ok.test", "127.1"])


def test_the_python_api_checks_and_normalises_the_settings() -> None:
    wf = Workflow("api")
    wf.add("noop", lambda: 1)
    with pytest.raises(ArgumentError, match=r"http_deny: expected a list of entries, but '127\.1'"):
        wf.run(http_deny=["private", "127.1"])
    with pytest.raises(ArgumentError, match=r"http_allow: expected a list of entries, each"):
        wf.run(http_allow=5)  # type: ignore[arg-type]
    settings = with_overrides(wf.settings, {"http_allow": "a.test, 10.0.0.0/8", "http_deny": []})
    assert (settings.http_allow, settings.http_deny) == (("a.test", "10.0.0.0/8"), ())


def test_the_config_file_http_table_and_its_errors(tmp_path: Path) -> None:
    """``[http]`` in pardag.toml (``[tool.pardag.http]`` in pyproject.toml), under the
    environment and flags; a bad entry or key names the file, line and the fix."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "pardag.toml").write_text('timeout = "1m"\n[http]\ndeny = ["private"]\n')
    resolved = resolve(None, environ={}, cwd=tmp_path)
    assert resolved.settings().http_deny == ("private",)
    assert ("http.deny", "private", "pardag.toml") in resolved.rows()
    env = {"PARDAG_HTTP_DENY": "", "PARDAG_HTTP_ALLOW": "127.0.0.0/8,api.example.com"}
    over = resolve(None, environ=env, cwd=tmp_path, flags={"http.deny": ["a.test", "b.test"]})
    assert over.settings().http_allow == ("127.0.0.0/8", "api.example.com")
    assert (over.values["http.deny"], over.sources["http.deny"]) == (
        ("a.test", "b.test"),
        "--http-deny",
    )
    emptied = resolve(None, environ=env, cwd=tmp_path)
    assert (emptied.values["http.deny"], emptied.sources["http.deny"]) == ((), "PARDAG_HTTP_DENY")

    (tmp_path / "pardag.toml").write_text('[http]\nallow = ["10.0.0.1/8"]\ndney = ["x"]\n')
    with pytest.raises(SettingsError) as caught:
        resolve(None, environ={}, cwd=tmp_path)
    problems = "\n".join(caught.value.problems)
    assert (
        "Invalid http.allow value ['10.0.0.1/8'] in pardag.toml:2: expected a list of" in problems
    )
    assert "has host bits set" in problems
    assert "unknown setting 'http.dney' in pardag.toml:3; did you mean 'http.deny'?" in problems

    (tmp_path / "pardag.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pardag.http]\nallow = ["api.example.com:443"]\n'
    )
    found = resolve(None, environ={}, cwd=tmp_path)
    assert found.settings().http_allow == ("api.example.com:443",)
    assert found.sources["http.allow"] == "pyproject.toml [tool.pardag]"
