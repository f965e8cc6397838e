"""Tests for etcdhcp.config: flag styles, sources, precedence, checks, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from etcdhcp import __version__, config
from etcdhcp.config import (
    FLAGS,
    Config,
    ConfigError,
    ServedInterface,
    add_etcd_arguments,
    etcd_credentials,
    etcd_fields,
    go_style_argv,
    interface_addresses,
    load,
    load_or_exit,
    new_parser,
    normalise_endpoint,
    parse_config_text,
    parse_duration,
    parse_flags,
    server_ip_warnings,
    serving_cpus,
    split_host_port,
)
from etcdhcp.etcd import Credentials
from etcdhcp.scopes import OptionData, parse_option_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "etc" / "etcdhcp.conf.example"
READABLE = str(Path(__file__).resolve())  # any file the test can read

CONTRACT_FLAGS = [
    "admin-addr",
    "dhcp.server-ip",
    "dhcp.server-if",
    "dhcp.subnet-mask",
    "dhcp.router",
    "dhcp.dns",
    "dhcp.issue-from",
    "dhcp.issue-to",
    "dhcp.lease",
    "dhcp.request-timeout",
    "dhcp.monitor-interval",
    "etcd.discovery.endpoints",
    "etcd.discovery.srv",
    "etcd.auth.username",
    "etcd.auth.password",
    "etcd.auth.ca",
    "etcd.auth.cert",
    "etcd.auth.key",
    "etcd.prefix",
    "v",
]
EXTRA_FLAGS = [
    "dhcp.offer-hold",
    "dhcp.decline-time",
    "dhcp.workers",
    "dhcp.processes",
    "dhcp.cpu-affinity",
    "dhcp.queue-size",
    "etcd.embedded",
    "etcd.embedded.listen",
    "etcd.embedded.binary",
    "state-dir",
    "etcd.auth.password-file",
]


@pytest.fixture(autouse=True)
def no_default_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep a real /etc/etcdhcp/etcdhcp.conf on the test machine out of every test."""
    path = tmp_path / "absent-default.conf"
    monkeypatch.setattr(config, "DEFAULT_CONFIG_FILE", str(path))
    return path


def cfg(*argv: str, env: dict[str, str] | None = None) -> Config:
    return load(list(argv), env or {}, check_interface=False)


def error_of(*argv: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        cfg(*argv, env=env)
    return info.value


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# -- defaults and flag styles --------------------------------------------------------


def test_defaults_are_the_originals_except_request_timeout() -> None:
    c = cfg()
    assert (c.admin_host, c.admin_port) == ("", 9842)
    assert c.server_ip == IPv4Address("10.0.0.1")
    assert c.interfaces == (ServedInterface("eth0", IPv4Address("10.0.0.1")),)
    assert c.subnet_mask == IPv4Address("255.255.240.0")
    assert c.router == IPv4Address("10.0.0.1")
    assert c.dns == (IPv4Address("10.0.0.1"),)
    assert (c.issue_from, c.issue_to) == (IPv4Address("10.0.0.10"), IPv4Address("10.0.0.100"))
    assert c.lease_time == 3600
    assert c.request_timeout == 2.0
    assert c.monitor_interval == 300
    assert (c.offer_hold, c.decline_time) == (10, 86400)
    assert (c.workers, c.queue_size) == (32, 1024)
    assert c.processes == min(len(os.sched_getaffinity(0)), config.AUTO_PROCESSES)
    assert c.etcd_endpoints == ()
    assert c.etcd_srv is None
    assert (c.etcd_username, c.etcd_password) == (None, None)
    assert (c.etcd_ca, c.etcd_cert, c.etcd_key) == (None, None, None)
    assert c.etcd_prefix == "etcdhcp::"
    assert c.etcd_embedded is True  # no endpoint and no srv
    assert (c.embedded_listen_host, c.embedded_listen_port) == ("127.0.0.1", 2479)
    assert c.embedded_binary == "etcd"
    assert c.state_dir == "/var/lib/etcdhcp"
    assert c.verbosity == 0
    assert c.network == IPv4Network("10.0.0.0/20")


@pytest.mark.parametrize(
    "argv",
    [
        ["-dhcp.server-ip", "10.0.0.2"],
        ["-dhcp.server-ip=10.0.0.2"],
        ["--dhcp.server-ip=10.0.0.2"],
        ["--dhcp.server-ip", "10.0.0.2"],
    ],
)
def test_go_and_gnu_style_values(argv: list[str]) -> None:
    assert cfg(*argv).server_ip == IPv4Address("10.0.0.2")


@pytest.mark.parametrize("argv", [["-v=2"], ["-v", "2"], ["--v=2"], ["--v", "2"]])
def test_verbosity_styles(argv: list[str]) -> None:
    assert cfg(*argv).verbosity == 2


def test_original_readme_command_line() -> None:
    c = cfg(
        "-etcd.discovery.endpoints",
        "localhost:2379",
        "-v=2",
        "-dhcp.router",
        "10.6.9.1",
        "-dhcp.dns",
        "10.6.9.1,1.1.1.1",
        "-dhcp.server-if",
        "wlan0_ap",
        "-dhcp.server-ip",
        "10.6.9.1",
        "-dhcp.subnet-mask",
        "255.255.255.0",
        "-dhcp.issue-from",
        "10.6.9.10",
        "-dhcp.issue-to",
        "10.6.9.199",
        "-logtostderr",
    )
    assert c.etcd_endpoints == ("http://localhost:2379",)
    assert c.etcd_embedded is False
    assert c.verbosity == 2
    assert c.dns == (IPv4Address("10.6.9.1"), IPv4Address("1.1.1.1"))
    assert c.network == IPv4Network("10.6.9.0/24")


def test_go_style_rewrite_only_touches_known_flag_names() -> None:
    parser = new_parser()
    add_etcd_arguments(parser)
    argv = ["-etcd.prefix", "-v", "-v=1", "-unknown", "-h", "--", "-v"]
    assert go_style_argv(argv, parser) == [
        "--etcd.prefix=-v",  # the prefix's value, not a flag: joined, as argparse needs
        "--v=1",
        "-unknown",
        "-h",
        "--",
        "-v",
    ]


@pytest.mark.parametrize(
    ("argv", "asked"),
    [
        ([], False),
        (["-etcd.embedded"], True),
        (["--etcd.embedded"], True),
        (["-etcd.embedded=true"], True),
        (["--etcd.embedded=false"], False),
        (["--etcd.embedded", "0"], False),
        (["--etcd.embedded="], False),
    ],
)
def test_embedded_switch(argv: list[str], asked: bool) -> None:
    # With no endpoint and no srv the embedded etcd is implied whatever the switch says.
    assert cfg(*argv).etcd_embedded is True
    with_srv = [*argv, "--etcd.discovery.srv", "etcd.example"]
    if asked:
        assert error_of(*with_srv).flag == "--etcd.embedded"
    else:
        assert cfg(*with_srv).etcd_embedded is False


# -- environment and config file ------------------------------------------------------


def test_environment() -> None:
    c = cfg(env={"ETCDHCP_DHCP_SERVER_IP": "10.0.0.3", "ETCDHCP_V": "1", "HOME": "/"})
    assert c.server_ip == IPv4Address("10.0.0.3")
    assert c.verbosity == 1


def test_config_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "etcdhcp.conf",
        "# a comment\n"
        "; another\n"
        "\n"
        "dhcp.server-ip = 10.0.0.4\n"
        "dhcp.lease=2h   # trailing comment\n"
        "  v = 3\n"
        'etcd.prefix = "site # 1::"\n'
        "--dhcp.workers = 8\n",
    )
    c = cfg("--config", path)
    assert c.server_ip == IPv4Address("10.0.0.4")
    assert c.lease_time == 7200
    assert c.verbosity == 3
    assert c.etcd_prefix == "site # 1::"
    assert c.workers == 8


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = write(tmp_path / "e.conf", "dhcp.router = 10.0.0.7\n")
    assert cfg(env={"ETCDHCP_CONFIG": path}).router == IPv4Address("10.0.0.7")


def test_default_config_file_is_read_when_present(no_default_config_file: Path) -> None:
    write(no_default_config_file, "dhcp.queue-size = 9\n")
    assert cfg().queue_size == 9


def test_named_config_file_replaces_the_default(
    no_default_config_file: Path, tmp_path: Path
) -> None:
    write(no_default_config_file, "dhcp.queue-size = 9\n")
    named = write(tmp_path / "named.conf", "dhcp.workers = 3\n")
    c = cfg("-config", named)
    assert (c.workers, c.queue_size) == (3, 1024)
    assert cfg("--config=").queue_size == 1024  # empty: read no file at all


def test_precedence_command_line_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.conf",
        "dhcp.lease = 3h\ndhcp.workers = 3\ndhcp.queue-size = 3\n",
    )
    env = {"ETCDHCP_DHCP_LEASE": "2h", "ETCDHCP_DHCP_WORKERS": "2"}
    c = cfg("-dhcp.lease=1m", "--config", path, env=env)
    assert c.lease_time == 60  # command line beats env and file
    assert c.workers == 2  # env beats file
    assert c.queue_size == 3  # file beats default
    assert c.offer_hold == 10  # default


def test_errors_name_the_source_of_a_bad_value(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.conf", "dhcp.workers = many\n")
    assert str(error_of("--config", path)) == (
        f"--dhcp.workers: 'many' is not an integer (from {path})"
    )
    assert str(error_of(env={"ETCDHCP_DHCP_WORKERS": "0"})) == (
        "--dhcp.workers: 0 is less than 1 (from ETCDHCP_DHCP_WORKERS)"
    )


def test_config_file_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "typo.conf", "# ok\ndhcp.leas = 1h\n")
    assert str(error_of("--config", path)) == (
        f"--config: {path}: unknown key 'dhcp.leas' (did you mean dhcp.lease?)"
    )
    path = write(tmp_path / "syntax.conf", "dhcp.lease = 1h\njust words\n")
    assert str(error_of("--config", path)) == (f"--config: {path} line 2: expected 'key = value'")
    missing = str(tmp_path / "missing.conf")
    assert str(error_of("--config", missing)) == f"--config: cannot read {missing}: no such file"
    assert str(error_of(env={"ETCDHCP_CONFIG": missing})).startswith("--config: cannot read")


def test_parse_config_text_quotes_and_comments() -> None:
    items = parse_config_text("a = 1 # c\nb = '2 # kept'\nc =\nd = x#y\n# e = 5\n", "test")
    assert items == {"a": "1", "b": "2 # kept", "c": "", "d": "x#y"}
    with pytest.raises(ConfigError, match="line 1: unbalanced quote"):
        parse_config_text("a = 'open\n", "test")


# -- the checks, each one line naming the flag ----------------------------------------

ERRORS = [
    (["-dhcp.server-ip", "10.0.0.300"], "--dhcp.server-ip: '10.0.0.300' is not an IPv4 address"),
    (["-dhcp.router", "router"], "--dhcp.router: 'router' is not an IPv4 address"),
    (["-dhcp.dns", "10.0.0.1,x"], "--dhcp.dns: 'x' is not an IPv4 address"),
    (["-dhcp.dns", ","], "--dhcp.dns: needs at least one address"),
    (
        ["-dhcp.subnet-mask", "255.0.255.0"],
        "--dhcp.subnet-mask: 255.0.255.0 is not a valid subnet mask",
    ),
    (["-dhcp.subnet-mask", "0.0.0.0"], "--dhcp.subnet-mask: 0.0.0.0 is not a valid subnet mask"),
    (
        ["-dhcp.issue-to", "10.0.16.5"],
        "--dhcp.issue-to: 10.0.16.5 is outside the subnet 10.0.0.0/20",
    ),
    (
        ["-dhcp.issue-from", "9.0.0.1"],
        "--dhcp.issue-from: 9.0.0.1 is outside the subnet 10.0.0.0/20",
    ),
    (
        ["-dhcp.issue-from", "10.0.0.50", "-dhcp.issue-to", "10.0.0.20"],
        "--dhcp.issue-to: 10.0.0.20 is before --dhcp.issue-from 10.0.0.50",
    ),
    (
        ["-dhcp.issue-from", "10.0.0.0"],
        "--dhcp.issue-from: 10.0.0.0 is the network address of 10.0.0.0/20",
    ),
    (
        ["-dhcp.issue-to", "10.0.15.255"],
        "--dhcp.issue-to: 10.0.15.255 is the broadcast address of 10.0.0.0/20",
    ),
    (
        ["-dhcp.server-ip", "10.0.15.255"],
        "--dhcp.server-ip: 10.0.15.255 is the broadcast address of 10.0.0.0/20",
    ),
    (
        ["-dhcp.server-ip", "10.0.0.50"],
        "--dhcp.server-ip: 10.0.0.50 is inside the range handed out, 10.0.0.10-10.0.0.100",
    ),
    (["-dhcp.lease", "0"], "--dhcp.lease: 0 must be more than 0"),
    (["-dhcp.lease", "500ms"], "--dhcp.lease: 500ms is shorter than 1s"),
    (
        ["-dhcp.request-timeout=-1s"],
        "--dhcp.request-timeout: -1s is negative; it must be more than 0",
    ),
    (
        ["-dhcp.monitor-interval", "5"],
        "--dhcp.monitor-interval: invalid duration '5'; Go duration syntax: 90s, 30m, 1h30m, 200ms",
    ),
    (["-dhcp.offer-hold", "0s"], "--dhcp.offer-hold: 0s must be more than 0"),
    (
        ["-dhcp.decline-time", "1d"],
        "--dhcp.decline-time: invalid duration '1d'; Go duration syntax: 90s, 30m, 1h30m, 200ms",
    ),
    (["-dhcp.workers", "0"], "--dhcp.workers: 0 is less than 1"),
    (["-dhcp.processes", "0"], "--dhcp.processes: 0 is less than 1"),
    (["-dhcp.processes", "65"], "--dhcp.processes: 65 is more than 64"),
    (["-dhcp.processes", "two"], "--dhcp.processes: 'two' is neither a number nor auto"),
    (
        ["-dhcp.cpu-affinity", "first"],
        "--dhcp.cpu-affinity: 'first' is neither auto, off nor a list of CPUs like 0-3,6",
    ),
    (["-dhcp.cpu-affinity", "0,3-1"], "--dhcp.cpu-affinity: '3-1' is an empty range"),
    (["-dhcp.queue-size", "ten"], "--dhcp.queue-size: 'ten' is not an integer"),
    (["-v", "-1"], "--v: -1 is less than 0"),
    (["-admin-addr", "9842"], "--admin-addr: '9842' has no port (HOST:PORT or :PORT)"),
    (
        ["-admin-addr", "::1:9842"],
        "--admin-addr: '::1:9842': put an IPv6 address in brackets, as in [::1]:9842",
    ),
    (["-admin-addr", ":99999"], "--admin-addr: port 99999 is not between 0 and 65535"),
    (["-etcd.embedded.listen", ":2479"], "--etcd.embedded.listen: ':2479' needs a host"),
    (
        ["-etcd.embedded.listen", "127.0.0.1:65535"],
        "--etcd.embedded.listen: port 65535 is not between 1 and 65534",
    ),
    (
        ["-etcd.discovery.endpoints", "ftp://a"],
        "--etcd.discovery.endpoints: 'ftp://a': scheme must be http or https",
    ),
    (
        ["-etcd.embedded", "-etcd.discovery.endpoints", "a"],
        "--etcd.embedded: cannot be combined with --etcd.discovery.endpoints or "
        "--etcd.discovery.srv",
    ),
    (["-etcd.embedded=maybe"], "--etcd.embedded: 'maybe' is not a boolean (true or false)"),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.cert", READABLE],
        "--etcd.auth.key: needed with --etcd.auth.cert",
    ),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.key", READABLE],
        "--etcd.auth.cert: needed with --etcd.auth.key",
    ),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.ca", "/nonexistent/ca.pem"],
        "--etcd.auth.ca: cannot read /nonexistent/ca.pem: No such file or directory",
    ),
    (
        ["-etcd.discovery.endpoints", "http://a:2379", "-etcd.auth.ca", READABLE],
        "--etcd.discovery.endpoints: http://a:2379 is not https, but TLS "
        "(--etcd.auth.ca/cert/key) is set",
    ),
    (
        ["-etcd.auth.ca", READABLE],
        "--etcd.auth.ca: given, but no --etcd.discovery.endpoints or --etcd.discovery.srv "
        "(the embedded etcd has no TLS and no authentication)",
    ),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.username", "u"],
        "--etcd.auth.password: needed with --etcd.auth.username (or --etcd.auth.password-file)",
    ),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.password", "p"],
        "--etcd.auth.username: needed with a password",
    ),
    (
        ["-etcd.discovery.srv", "x", "-etcd.auth.password-file", "/nonexistent/pw"],
        "--etcd.auth.password-file: cannot read /nonexistent/pw: No such file or directory",
    ),
    (["-dhcp.server-if", "a/b"], "--dhcp.server-if: 'a/b' is not an interface name"),
    (["--foo"], "unrecognized argument --foo"),
    (["-dhcp.leas=1h"], "unrecognized argument -dhcp.leas=1h (did you mean --dhcp.lease?)"),
    (["--dhcp.lease"], "--dhcp.lease: expected one argument"),
]


@pytest.mark.parametrize(("argv", "message"), ERRORS)
def test_each_check_gives_one_line_naming_the_flag(argv: list[str], message: str) -> None:
    error = error_of(*argv)
    assert str(error) == message
    assert "\n" not in str(error)
    if message.startswith("--"):
        assert error.flag == message.split(":")[0]


def test_no_range_flags_on_another_subnet_means_etcds_scopes_only() -> None:
    """The default range is checked only where it could be served (docs/scopes.md)."""
    c = cfg("-dhcp.server-ip", "198.18.0.1", "-dhcp.subnet-mask", "255.255.255.0")
    assert not c.range_given
    assert c.flag_scope() is None  # etcd's scopes alone
    # A range that is given is checked as ever.
    assert str(error_of("-dhcp.server-ip", "198.18.0.1", "-dhcp.issue-from", "10.0.0.9")) == (
        "--dhcp.issue-from: 10.0.0.9 is outside the subnet 198.18.0.0/20"
    )


def test_interface_must_exist() -> None:
    assert load(["-dhcp.server-if", "lo"], {}).interfaces[0].name == "lo"
    with pytest.raises(ConfigError) as info:
        load(["-dhcp.server-if", "nosuchif0"], {})
    assert str(info.value) == "--dhcp.server-if: no network interface named nosuchif0"
    assert load(["-dhcp.server-if", "nosuchif0"], {}, check_interface=False).interfaces
    with pytest.raises(ConfigError) as info:  # each of several is checked, and named
        load(["-dhcp.server-if", "lo,nosuchif0"], {})
    assert str(info.value) == "--dhcp.server-if: no network interface named nosuchif0"


# -- several interfaces ------------------------------------------------------------------

A1, A2, B1 = IPv4Address("198.18.120.1"), IPv4Address("198.18.120.2"), IPv4Address("198.18.121.1")
ADDRESSES: dict[str, tuple[IPv4Address, ...] | None] = {
    "eth1": (A1, A2),
    "eth2": (B1,),
    "bare": (),
    "gone": None,
}


@pytest.fixture
def two_interfaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """eth1 with two addresses, eth2 with one, `bare` with none, `gone` unreadable."""
    monkeypatch.setattr(config, "interface_addresses", ADDRESSES.get)


RANGE_ON_ETH1 = ["-dhcp.subnet-mask", "255.255.255.0"]
RANGE_ON_ETH1 += ["-dhcp.issue-from", "198.18.120.10", "-dhcp.issue-to", "198.18.120.50"]


@pytest.mark.usefixtures("two_interfaces")
def test_several_interfaces_each_identified_by_its_own_address() -> None:
    c = cfg("-dhcp.server-if", "eth1,eth2")
    assert c.interfaces == (ServedInterface("eth1", A1), ServedInterface("eth2", B1))
    # The default --dhcp.server-ip is on neither: the flags describe no scope.
    assert c.flag_interface is None and c.flag_scope() is None
    # The same list from the environment and from a config file, spaces allowed.
    assert cfg(env={"ETCDHCP_DHCP_SERVER_IF": "eth1, eth2"}).interfaces == c.interfaces


@pytest.mark.usefixtures("two_interfaces")
def test_server_ip_picks_the_address_of_the_interface_that_carries_it(tmp_path: Path) -> None:
    path = write(
        tmp_path / "two.conf", "dhcp.server-if = eth2,eth1\ndhcp.server-ip = 198.18.120.2\n"
    )
    c = cfg("--config", path, *RANGE_ON_ETH1)
    assert c.interfaces == (ServedInterface("eth2", B1), ServedInterface("eth1", A2))
    assert c.flag_interface == "eth1"
    scope = c.flag_scope()
    assert scope is not None and scope.interface == "eth1"
    assert str(scope.subnet) == "198.18.120.0/24"


MULTI_ERRORS = [
    (
        ["-dhcp.server-if", "eth1,eth2", "-dhcp.server-ip", "198.18.122.1"],
        "--dhcp.server-ip: 198.18.122.1 is on none of eth1, eth2: with several interfaces it "
        "may only pick one of their own addresses as that interface's server identifier",
    ),
    (
        ["-dhcp.server-if", "eth1,eth2", "-dhcp.issue-from", "10.0.0.20"],
        "--dhcp.issue-from: the range flags describe the subnet of the interface that carries "
        "--dhcp.server-ip, and none of eth1, eth2 has 10.0.0.1",
    ),
    (
        ["-dhcp.server-if", "eth1,bare"],
        "--dhcp.server-if: bare has no IPv4 address: with several interfaces each needs its "
        "own, sent as its server identifier (option 54)",
    ),
    (["-dhcp.server-if", "eth1,gone"], "--dhcp.server-if: cannot read the IPv4 addresses of gone"),
    (["-dhcp.server-if", "eth1,eth2,eth1"], "--dhcp.server-if: eth1 is named twice"),
    (["-dhcp.server-if", "eth1,"], "--dhcp.server-if: '' is not an interface name"),
]


@pytest.mark.usefixtures("two_interfaces")
@pytest.mark.parametrize(("argv", "message"), MULTI_ERRORS)
def test_several_interfaces_checks_give_one_line(argv: list[str], message: str) -> None:
    error = error_of(*argv)
    assert (str(error), error.flag) == (message, message.split(":")[0])


def test_two_interfaces_that_would_share_a_server_identifier_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "interface_addresses", lambda _name: (A1,))
    assert str(error_of("-dhcp.server-if", "eth1,eth2")) == (
        "--dhcp.server-if: eth1 and eth2 would both be identified as 198.18.120.1"
    )


def test_newline_in_a_value_stays_on_one_line() -> None:
    error = error_of(env={"ETCDHCP_DHCP_ROUTER": "10.0.0.1\nrm -rf"})
    assert "\n" not in str(error)
    assert str(error).startswith("--dhcp.router: '10.0.0.1\\nrm -rf' is not an IPv4 address")


@pytest.mark.parametrize(
    "argv", [["-dhcp.lease", "-5m"], ["--dhcp.lease", "-5m"], ["-dhcp.lease=-5m"]]
)
def test_a_negative_duration_is_named_in_any_flag_style(argv: list[str]) -> None:
    # Go style puts the value after a space; argparse alone took -5m for a flag.
    assert str(error_of(*argv)) == "--dhcp.lease: -5m is negative; it must be more than 0"


def test_a_misspelt_environment_variable_is_refused_like_a_misspelt_file_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert str(error_of(env={"ETCDHCP_DHCP_LEAS": "1h"})) == (
        "unknown environment variable ETCDHCP_DHCP_LEAS (did you mean ETCDHCP_DHCP_LEASE?)"
    )
    assert str(error_of(env={"ETCDHCP_QQQ": "1"})) == "unknown environment variable ETCDHCP_QQQ"
    assert cfg(env={"ETCDHCPV": "2", "MY_ETCDHCP_V": "2"}).verbosity == 0  # not ours
    # etcdhcpctl reads the same variables: the daemon's are known to it, a typo is not.
    parser = new_parser("etcdhcpctl")
    add_etcd_arguments(parser)
    assert parse_flags(parser, [], {"ETCDHCP_DHCP_LEASE": "2h"}).raw("etcd.prefix")
    with pytest.raises(ConfigError, match="did you mean ETCDHCP_ETCD_PREFIX"):
        parse_flags(parser, [], {"ETCDHCP_ETCD_PREFX": "p::"})
    with pytest.raises(SystemExit) as info:  # never in the way of --help
        load(["--help"], {"ETCDHCP_QQQ": "1"}, check_interface=False)
    assert info.value.code == 0 and "usage:" in capsys.readouterr().out


LOOPBACK_SCOPE = [
    "-dhcp.server-if", "lo", "-dhcp.server-ip", "127.0.0.1", "-dhcp.subnet-mask", "255.255.255.0",
    "-dhcp.router", "127.0.0.1", "-dhcp.dns", "127.0.0.1",
    "-dhcp.issue-from", "127.0.0.10", "-dhcp.issue-to", "127.0.0.20",
]  # fmt: skip


def test_a_server_address_missing_from_the_interface_gets_one_warning() -> None:
    assert IPv4Address("127.0.0.1") in (interface_addresses("lo") or ())
    assert load(LOOPBACK_SCOPE, {}).warnings == ()
    (warning,) = load(["-dhcp.server-if", "lo"], {}).warnings
    assert warning.startswith("--dhcp.server-ip 10.0.0.1 is not configured on lo (it has ")
    assert "127.0.0.1" in warning and warning.endswith("unicast renewals to it will not arrive")
    assert cfg("-dhcp.server-if", "lo").warnings == ()  # check_interface=False: not looked at
    assert interface_addresses("nosuchif0") is None  # cannot tell: no warning
    assert server_ip_warnings(IPv4Address("10.0.0.1"), "nosuchif0") == ()


def test_print_config_shows_every_value_and_where_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "site.conf", "dhcp.workers = 3\netcd.prefix = 'site # 1::'\n")
    env = {"ETCDHCP_DHCP_LEASE": "2h", "ETCDHCP_ETCD_AUTH_PASSWORD": "s3cret"}
    argv = ["-config", path, "-dhcp.server-ip", "10.0.0.2", "-etcd.discovery.srv", "_e._tcp.x"]
    argv += ["-etcd.auth.username", "u"]
    with pytest.raises(SystemExit) as info:
        load(["--print-config", *argv], env, check_interface=False)
    assert info.value.code == 0
    out = capsys.readouterr().out
    lines = dict(line.split(" = ", 1) for line in out.splitlines())
    assert {name.removeprefix("# ") for name in lines} == {f.name for f in FLAGS}
    assert lines["# config"] == f"{path}  # flag"  # a file cannot name itself
    assert lines["dhcp.server-ip"] == "10.0.0.2  # flag"
    assert lines["dhcp.lease"] == "2h  # environment ETCDHCP_DHCP_LEASE"
    assert lines["dhcp.workers"] == f"3  # file {path}"
    assert lines["etcd.prefix"] == f"'site # 1::'  # file {path}"
    assert lines["dhcp.queue-size"] == "1024  # default"
    assert lines["etcd.discovery.endpoints"] == "''  # default"
    assert lines["etcd.auth.password"] == "********  # environment ETCDHCP_ETCD_AUTH_PASSWORD"
    assert "s3cret" not in out
    # What it prints is a config file that gives the same configuration.
    printed = write(tmp_path / "printed.conf", out.replace("********", "s3cret"))
    again = load(["-config", printed], {}, check_interface=False)
    assert replace(again, warnings=()) == load(argv, env, check_interface=False)


def test_the_daemon_and_etcdhcpctl_build_the_same_etcd_credentials() -> None:
    argv = ["-etcd.discovery.endpoints", "a", "-etcd.auth.ca", READABLE]
    argv += ["-etcd.auth.username", "u", "-etcd.auth.password", "s3cret"]
    parser = new_parser("etcdhcpctl")
    add_etcd_arguments(parser)
    fields = etcd_fields(parse_flags(parser, argv, {}))
    credentials = etcd_credentials(cfg(*argv))
    assert credentials == etcd_credentials(fields) == Credentials("u", "s3cret", READABLE)
    assert credentials.scheme == "https" and fields["etcd_endpoints"] == ("https://a:2379",)
    assert etcd_credentials(cfg("-etcd.discovery.endpoints", "a")).scheme == "http"
    assert "s3cret" not in repr(credentials)


def test_load_or_exit_prints_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ETCDHCP_CONFIG", raising=False)
    with pytest.raises(SystemExit) as info:
        load_or_exit(["-dhcp.workers", "0"])
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "etcdhcp: --dhcp.workers: 0 is less than 1\n"


# -- the real command -----------------------------------------------------------------


def command() -> list[str]:
    """`python -m etcdhcp` once the daemon exists; until then, load_or_exit directly."""
    if (ROOT / "src" / "etcdhcp" / "daemon.py").exists():
        return [sys.executable, "-m", "etcdhcp"]
    return [sys.executable, "-c", "from etcdhcp.config import load_or_exit; load_or_exit()"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDHCP_")}
    env["ETCDHCP_CONFIG"] = ""  # read no config file, whatever the machine has
    env["PYTHONPATH"] = str(ROOT / "src")
    return subprocess.run(
        [*command(), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["-dhcp.issue-to", "10.0.16.5"],
            "--dhcp.issue-to: 10.0.16.5 is outside the subnet 10.0.0.0/20",
        ),
        (
            ["--dhcp.lease=forever"],
            "--dhcp.lease: invalid duration 'forever'; Go duration syntax: 90s, 30m, 1h30m, 200ms",
        ),
        (["-dhcp.lease", "-5m"], "--dhcp.lease: -5m is negative; it must be more than 0"),
        (["--bogus", "1"], "unrecognized argument --bogus (and 1 more)"),
        (
            ["-dhcp.server-if", "nosuchif0"],
            "--dhcp.server-if: no network interface named nosuchif0",
        ),
        (
            ["-dhcp.server-if", "lo,nosuchif0"],
            "--dhcp.server-if: no network interface named nosuchif0",
        ),
        (
            ["--config", "/nonexistent/etcdhcp.conf"],
            "--config: cannot read /nonexistent/etcdhcp.conf: no such file",
        ),
    ],
)
def test_command_errors_are_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr == f"etcdhcp: {line}\n"
    assert "Traceback" not in result.stderr
    assert "usage:" not in result.stderr


def test_command_print_config() -> None:
    result = run("--print-config", *LOOPBACK_SCOPE)
    assert result.returncode == 0, result.stderr
    assert "dhcp.server-if = lo  # flag\n" in result.stdout
    assert "dhcp.lease = 1h  # default\n" in result.stdout
    assert result.stderr == ""


def test_command_version() -> None:
    result = run("-version")
    assert result.returncode == 0
    assert result.stdout == f"etcdhcp {__version__}\n"


def test_command_help_documents_every_flag() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in CONTRACT_FLAGS + EXTRA_FLAGS + ["config", "version"]:
        assert f"--{name} " in result.stdout or f"--{name}\n" in result.stdout, name
    assert "Go style" in result.stdout
    assert "-dhcp.server-ip 10.0.0.1" in result.stdout
    assert "dhcp.server-ip = 10.0.0.1" in result.stdout  # config file syntax
    assert "ETCDHCP_DHCP_SERVER_IP" in result.stdout
    assert "200ms" in result.stdout and "RFC 2131" in result.stdout  # why 2s
    assert "Precedence: command line > environment > config file > default." in result.stdout


def test_help_is_not_blocked_by_a_broken_config_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.conf", "no equals sign here\n")
    result = run("--config", path, "-h")
    assert result.returncode == 0
    assert "usage: etcdhcp" in result.stdout


# -- value syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("90s", 90.0),
        ("200ms", 0.2),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("2h45m30.5s", 9930.5),
        ("1500us", 0.0015),
        ("1500\u00b5s", 0.0015),
        ("1500\u03bcs", 0.0015),
        ("250ns", 250e-9),
        (".5s", 0.5),
        ("5.s", 5.0),
        ("1m1ms", 60.001),
        ("-1.5s", -1.5),
        ("+2s", 2.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "5", "1d", "s", "1hh", "1 h", " 1h", "1h ", ".s", "1.2.3s", "-", "0x", "1e3s", "\u0661s"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost", "http://localhost:2379"),
        ("localhost:2379", "http://localhost:2379"),
        ("10.0.0.2:4001", "http://10.0.0.2:4001"),
        ("http://a:2379", "http://a:2379"),
        ("https://b", "https://b:2379"),
        ("HTTPS://b:1/", "https://b:1"),
        ("[::1]", "http://[::1]:2379"),
        ("[::1]:2380", "http://[::1]:2380"),
        (" etcd-1.example ", "http://etcd-1.example:2379"),
    ],
)
def test_normalise_endpoint(text: str, expected: str) -> None:
    assert normalise_endpoint(text) == expected


@pytest.mark.parametrize(
    "text", ["", "unix:///run/etcd", "a:b", "::1", "a:0", "http://a/v3", "u@a"]
)
def test_normalise_endpoint_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_endpoint(text)


def test_endpoint_list_and_tls_default_scheme() -> None:
    c = cfg("-etcd.discovery.endpoints", "a, http://b:1,,[::1]")
    assert c.etcd_endpoints == ("http://a:2379", "http://b:1", "http://[::1]:2379")
    # With TLS configured a scheme-less endpoint means https, as for the Go client.
    c = cfg("-etcd.discovery.endpoints", "a,https://b", "-etcd.auth.ca", READABLE)
    assert c.etcd_endpoints == ("https://a:2379", "https://b:2379")
    assert c.etcd_ca == READABLE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (":9842", ("", 9842)),
        ("127.0.0.1:9842", ("127.0.0.1", 9842)),
        ("[::1]:9842", ("::1", 9842)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_admin_addr(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected
    c = cfg("-admin-addr", text)
    assert (c.admin_host, c.admin_port) == expected


def test_embedded_listen_ipv6() -> None:
    c = cfg("--etcd.embedded.listen=[::1]:3000")
    assert (c.embedded_listen_host, c.embedded_listen_port) == ("::1", 3000)


# -- etcd auth ------------------------------------------------------------------------


def test_password_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pw", "s3cret\n")
    c = cfg(
        "-etcd.discovery.srv",
        "etcd.example",
        "-etcd.auth.username",
        "root",
        "-etcd.auth.password-file",
        path,
    )
    assert (c.etcd_username, c.etcd_password) == ("root", "s3cret")
    assert "s3cret" not in repr(c)
    empty = write(tmp_path / "empty", "\n")
    error = error_of(
        "-etcd.discovery.srv", "x", "-etcd.auth.username", "root", "-etcd.auth.password-file", empty
    )
    assert str(error) == f"--etcd.auth.password-file: {empty} is empty"
    error = error_of(
        "-etcd.discovery.srv",
        "x",
        "-etcd.auth.username",
        "root",
        "-etcd.auth.password-file",
        path,
        "-etcd.auth.password",
        "p",
    )
    assert error.flag == "--etcd.auth.password-file"


def test_unreadable_files(tmp_path: Path) -> None:
    # A directory cannot be read even by root, unlike a chmod 0 file.
    error = error_of(
        "-etcd.discovery.srv",
        "x",
        "-etcd.auth.username",
        "root",
        "-etcd.auth.password-file",
        str(tmp_path),
    )
    assert str(error) == f"--etcd.auth.password-file: cannot read {tmp_path}: Is a directory"
    assert str(error_of("--config", str(tmp_path))) == (
        f"--config: cannot read {tmp_path}: Is a directory"
    )


def test_full_tls(tmp_path: Path) -> None:
    pem = write(tmp_path / "x.pem", "not really\n")
    c = cfg(
        "-etcd.discovery.endpoints",
        "https://e:2379",
        "-etcd.auth.ca",
        pem,
        "-etcd.auth.cert",
        pem,
        "-etcd.auth.key",
        pem,
    )
    assert (c.etcd_ca, c.etcd_cert, c.etcd_key) == (pem, pem, pem)
    assert c.etcd_embedded is False


# -- result type, shared etcd flags, example file -------------------------------------


def test_config_is_frozen() -> None:
    c = cfg()
    with pytest.raises(FrozenInstanceError):
        c.workers = 1  # type: ignore[misc]


def test_etcd_arguments_are_shared(tmp_path: Path) -> None:
    """etcdhcpctl's use: the etcd flags alone, same env and config file, same checks."""
    parser = new_parser("etcdhcpctl")
    add_etcd_arguments(parser)
    options = {o for a in parser._actions for o in a.option_strings}
    assert {"--config", "--v", "--etcd.prefix", "--etcd.embedded", "--state-dir"} <= options
    assert "--dhcp.lease" not in options and "--admin-addr" not in options
    # The daemon's keys in a shared file are fine; a typo still is not.
    path = write(tmp_path / "shared.conf", "dhcp.lease = 2h\netcd.prefix = p::\n")
    flags = parse_flags(
        parser, ["-config", path, "-etcd.discovery.endpoints=e"], {"ETCDHCP_V": "2"}
    )
    fields = etcd_fields(flags)
    assert fields["etcd_prefix"] == "p::"
    assert fields["etcd_endpoints"] == ("http://e:2379",)
    assert fields["verbosity"] == 2
    assert set(fields) <= set(Config.__dataclass_fields__)
    with pytest.raises(ConfigError, match=r"unrecognized argument --dhcp\.lease"):
        parse_flags(parser, ["--dhcp.lease=1h"], {})


def test_flag_table_has_every_flag_once() -> None:
    names = [f.name for f in FLAGS]
    assert len(names) == len(set(names))
    assert set(CONTRACT_FLAGS + EXTRA_FLAGS) <= set(names)
    assert {f.env_var for f in FLAGS if f.name in ("dhcp.server-ip", "v", "config")} == {
        "ETCDHCP_DHCP_SERVER_IP",
        "ETCDHCP_V",
        "ETCDHCP_CONFIG",
    }


def test_example_config_lists_every_option_with_its_default() -> None:
    text = EXAMPLE.read_text()
    settings = dict(
        (m.group(1), m.group(2))
        for m in re.finditer(r"^#([a-z][\w.-]*) =[ ]?(.*)$", text, re.MULTILINE)
    )
    assert set(settings) == {f.name for f in FLAGS if f.name != "config"}
    for flag in FLAGS:
        if flag.name != "config":
            assert settings[flag.name] == (flag.default or ""), flag.name


def test_example_config_parses_with_every_line_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    uncommented = re.sub(r"^#(?=[a-z])", "", text, flags=re.MULTILINE)
    assert uncommented.count("\n#dhcp") == 0 and "\ndhcp.lease = 1h\n" in uncommented
    path = write(tmp_path / "etcdhcp.conf", uncommented)
    assert cfg("--config", path) == cfg()  # every value shown is the default


# -- floods, the admin server's debugging endpoints, secrets ------------------------------


def test_client_rate_burst_and_admin_debug() -> None:
    c = cfg()
    assert (c.client_rate, c.client_burst, c.admin_debug) == (10.0, 20, False)
    c = cfg("-dhcp.client-rate=2.5", "-dhcp.client-burst", "4", "-admin.debug")
    assert (c.client_rate, c.client_burst, c.admin_debug) == (2.5, 4, True)
    assert cfg("--dhcp.client-rate=0").client_rate == 0.0  # the limit is off
    assert cfg(env={"ETCDHCP_ADMIN_DEBUG": "true"}).admin_debug is True
    assert str(error_of("-dhcp.client-rate=-1")) == (
        "--dhcp.client-rate: -1 is not a number of at least 0"
    )
    assert str(error_of("-dhcp.client-rate=fast")) == ("--dhcp.client-rate: 'fast' is not a number")
    assert str(error_of("-dhcp.client-rate=nan")) == (
        "--dhcp.client-rate: nan is not a number of at least 0"
    )
    assert str(error_of("-dhcp.client-burst=0")) == "--dhcp.client-burst: 0 is less than 1"


AUTH = ("-etcd.discovery.endpoints", "e", "-etcd.auth.username", "u")


def test_a_password_others_can_read_is_warned_about_never_shown(tmp_path: Path) -> None:
    secret = "pa55-w0rd"
    conf = write(tmp_path / "etcdhcp.conf", f"etcd.auth.password = {secret}\n")
    pw_file = write(tmp_path / "pw", secret + "\n")
    os.chmod(conf, 0o644)
    os.chmod(pw_file, 0o644)
    (warning,) = cfg(*AUTH, "-config", conf).warnings
    assert warning == (
        f"the config file {conf} holds the etcd password and is readable by every user: "
        f"chmod o-r {conf}, or use --etcd.auth.password-file"
    )
    (warning,) = cfg(*AUTH, "-etcd.auth.password-file", pw_file).warnings
    assert warning == (
        f"--etcd.auth.password-file {pw_file} is readable by every user: chmod o-r {pw_file}"
    )
    (warning,) = cfg(*AUTH, "-etcd.auth.password", secret).warnings
    assert "visible to every user in ps" in warning
    os.chmod(conf, 0o640)  # group-readable is how a service account is given it
    os.chmod(pw_file, 0o600)
    assert cfg(*AUTH, "-config", conf).warnings == ()
    assert cfg(*AUTH, "-etcd.auth.password-file", pw_file).warnings == ()
    assert cfg(*AUTH, env={"ETCDHCP_ETCD_AUTH_PASSWORD": secret}).warnings == ()
    c = cfg(*AUTH, "-etcd.auth.password", secret)
    assert c.etcd_password == secret
    assert secret not in repr(c) and all(secret not in w for w in c.warnings)


def test_processes_from_flag_environment_and_file(no_default_config_file: Path) -> None:
    assert cfg("-dhcp.processes=4").processes == 4
    assert cfg(env={"ETCDHCP_DHCP_PROCESSES": "2"}).processes == 2
    write(no_default_config_file, "dhcp.processes = 64\n")
    assert cfg().processes == 64
    auto = min(len(os.sched_getaffinity(0)), config.AUTO_PROCESSES)
    assert cfg("-dhcp.processes=Auto").processes == auto  # the flag wins over the file


def test_processes_auto_is_one_per_usable_cpu_up_to_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "usable_cpus", lambda: {0})
    assert cfg().processes == 1
    monkeypatch.setattr(config, "usable_cpus", lambda: set(range(96)))
    assert cfg("-dhcp.processes=auto").processes == config.AUTO_PROCESSES


def test_cpu_affinity_auto_pins_only_processes_that_fill_the_cpus() -> None:
    assert serving_cpus("auto", 2, {0, 1}) == (0, 1)
    assert serving_cpus("AUTO", 4, {1, 3}) == (1, 3)  # round-robin: 1, 3, 1, 3
    assert serving_cpus("auto", 1, {0, 1}) == ()  # a CPU left over: the kernel places it
    assert serving_cpus("auto", 1, {5}) == (5,)
    assert serving_cpus("off", 8, {0, 1}) == ()


def test_cpu_affinity_lists_cpus_in_the_order_given() -> None:
    allowed = set(range(8))
    assert serving_cpus("3", 1, allowed) == (3,)
    assert serving_cpus("6, 0-2", 4, allowed) == (6, 0, 1, 2)
    assert serving_cpus("1,1,0", 2, allowed) == (1, 0)
    with pytest.raises(ValueError, match=r"^CPU 8,9 is not one this server may run on \(0,1\)$"):
        serving_cpus("0,8-9", 2, {0, 1})


def test_cpu_affinity_from_the_flag_against_the_cpus_we_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config, "usable_cpus", lambda: {0, 1})
    assert cfg().cpus == (0, 1)  # the defaults: processes auto (2), affinity auto
    assert cfg("-dhcp.processes=1").cpus == ()
    assert cfg("-dhcp.processes=1", "-dhcp.cpu-affinity=1").cpus == (1,)
    assert cfg(env={"ETCDHCP_DHCP_CPU_AFFINITY": "off"}).cpus == ()
    error = error_of("-dhcp.cpu-affinity=2")
    assert str(error) == "--dhcp.cpu-affinity: CPU 2 is not one this server may run on (0,1)"


# -- options from the flags (--dhcp.option) ----------------------------------------------

WPAD = "252='http://198.18.0.5/wpad.dat'"


def test_dhcp_option_repeats_and_is_encoded_as_global_option_data() -> None:
    c = cfg(
        "-dhcp.option", "domain-name=lab.example", "--dhcp.option=ntp-servers=198.18.0.5,198.18.0.6"
    )
    as_document = parse_option_data(
        [
            {"name": "domain-name", "data": "lab.example"},
            {"code": 42, "data": "198.18.0.5, 198.18.0.6"},
        ],
        "option-data",
    )
    assert c.global_options == as_document
    assert c.global_options.options[1] == (42, bytes([198, 18, 0, 5, 198, 18, 0, 6]))
    assert cfg().global_options == OptionData()
    # A code: typed by its standard definition, else read as csv-format false data.
    c = cfg("-dhcp.option", "15=lab", "-dhcp.option", WPAD, "-dhcp.option", "200=0a:0b")
    assert c.global_options.options == (
        (15, b"lab"),
        (252, b"http://198.18.0.5/wpad.dat"),
        (200, b"\x0a\x0b"),
    )
    assert c.global_options.always == frozenset()


def test_dhcp_option_in_the_file_one_line_each_and_in_the_environment_as_a_json_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "etcdhcp.conf",
        f"dhcp.option = domain-name=file.example\ndhcp.option = {WPAD}  # wpad\ndhcp.option =\n",
    )
    from_file = cfg("-config", path).global_options
    assert dict(from_file.options) == {15: b"file.example", 252: b"http://198.18.0.5/wpad.dat"}
    listed = '["domain-name=env.example", "ntp-servers=198.18.0.5,198.18.0.6"]'
    from_env = cfg("-config", path, env={"ETCDHCP_DHCP_OPTION": listed}).global_options
    assert [code for code, _ in from_env.options] == [15, 42]  # replaces the file's, no merge
    one = cfg(env={"ETCDHCP_DHCP_OPTION": "domain-name=one.example"}).global_options
    assert one.options == ((15, b"one.example"),)
    flag = cfg(
        "-config", path, "-dhcp.option", "domain-name=x", env={"ETCDHCP_DHCP_OPTION": listed}
    )
    assert flag.global_options.options == ((15, b"x"),)
    with pytest.raises(SystemExit):
        load(["--print-config", "-config", path], {}, check_interface=False)
    printed = [line for line in capsys.readouterr().out.splitlines() if "dhcp.option" in line]
    assert printed == [
        f"dhcp.option = domain-name=file.example  # file {path}",
        f"dhcp.option = {WPAD}  # file {path}",
    ]
    again = write(tmp_path / "printed.conf", "\n".join(printed) + "\n")
    assert cfg("-config", again).global_options == from_file


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["domain-name"], {}, "'domain-name' is not NAME=VALUE"),
        (["=lab"], {}, "'=lab' is not NAME=VALUE"),
        (
            ["domian-name=x"],
            {},
            "domian-name=x: no dhcp4 option is named 'domian-name' (did you mean domain-name?)",
        ),
        (["0=00"], {}, "0=00: code 0 is not in 1..254"),
        (["255=00"], {}, "255=00: code 255 is not in 1..254"),
        (
            ["ntp-servers=ntp1"],
            {},
            "ntp-servers=ntp1: option 'dhcp4.ntp-servers' (code 42): 'ntp1' is not an IPv4 address",
        ),
        (
            ["252=http://x/"],
            {},
            "252=http://x/: option 'dhcp4.option-252' (code 252): 'http://x/' is not hex octets "
            "separated by ':' (no standard definition: hex, or 'quoted text')",
        ),
        (["15=a", "domain-name=b"], {}, "domain-name=b: option 15 is given twice"),
        (
            [],
            {"ETCDHCP_DHCP_OPTION": "ip-forwarding=maybe"},
            "ip-forwarding=maybe: option 'dhcp4.ip-forwarding' (code 19): 'maybe' is not a "
            "boolean (true, false, 1 or 0) (from ETCDHCP_DHCP_OPTION)",
        ),
        (
            [],
            {"ETCDHCP_DHCP_OPTION": "[domain-name=a, ntp-servers=198.18.0.5,198.18.0.6]"},
            "'[domain-name=a, ntp-servers=198.18.0.5,198.18.0.6]' is not a JSON list of strings "
            "(from ETCDHCP_DHCP_OPTION)",
        ),
    ],
)
def test_a_bad_dhcp_option_is_one_line_naming_the_flag(
    args: list[str], env: dict[str, str], message: str
) -> None:
    argv = [arg for value in args for arg in ("-dhcp.option", value)]
    assert str(error_of(*argv, env=env)) == f"--dhcp.option: {message}"


def test_a_bad_dhcp_option_ends_the_command_with_status_2() -> None:
    result = run("-dhcp.option", "ntp-servers=ntp1")
    assert result.returncode == 2
    assert result.stderr == (
        "etcdhcp: --dhcp.option: ntp-servers=ntp1: option 'dhcp4.ntp-servers' (code 42): "
        "'ntp1' is not an IPv4 address\n"
    )
