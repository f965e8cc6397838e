"""Flags, environment and config file -> one checked, frozen `Config`.

Operators of the original Go daemon wrote Go-style flags (`-dhcp.server-ip 10.0.0.1`,
`-v=2`) into unit files and scripts, and CONTRACT section 1 promises those keep
working; GNU style (`--dhcp.server-ip=10.0.0.1`), `ETCDHCP_*` environment variables
and a `key = value` config file work as well. Precedence: command line > environment
> config file > default.

Every value is converted and checked here, once, so the rest of the daemon never
meets a malformed address or duration, and an operator who got something wrong
reads one line naming the flag (and where the bad value came from) instead of a
traceback or a page of usage.

The flag table `FLAGS` is the single description of every flag. The etcd-related
part is added to any parser by `add_etcd_arguments`, so `etcdhcpctl` can take the
same flags, environment and config file without a copy of the table.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Network, IPv6Address
from typing import Any, NoReturn

import configargparse

from etcdhcp import __version__, optiondefs
from etcdhcp.etcd import Credentials, srv_endpoints
from etcdhcp.scopes import STANDARD_DEFS, OptionData, Scope, flag_scope

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "ENV_PREFIX",
    "FLAGS",
    "Config",
    "ConfigError",
    "Flag",
    "ParsedFlags",
    "ServedInterface",
    "add_etcd_arguments",
    "add_server_arguments",
    "discover_etcd",
    "effective_config",
    "etcd_credentials",
    "etcd_fields",
    "go_style_argv",
    "interface_addresses",
    "load",
    "load_or_exit",
    "new_parser",
    "normalise_endpoint",
    "parse_config_text",
    "parse_duration",
    "parse_flags",
    "report_and_exit",
    "secret_warnings",
    "server_ip_warnings",
    "split_host_port",
]

PROG = "etcdhcp"
ENV_PREFIX = "ETCDHCP_"
# Read at call time (not bound as a default argument) so tests can point it elsewhere.
DEFAULT_CONFIG_FILE = "/etc/etcdhcp/etcdhcp.conf"
SYSFS_NET = "/sys/class/net"
ETCD_DEFAULT_PORT = 2379
# DHCP option 51 is 32 bits of seconds and 0xffffffff means "infinite".
_MAX_LEASE_SECONDS = 0xFFFFFFFE
MAX_PROCESSES = 64
AUTO_PROCESSES = 4  # beyond this, measure first: each process is one more etcd client


class ConfigError(Exception):
    """A configuration problem, told in one line that names the flag at fault."""

    def __init__(self, flag: str | None, message: str) -> None:
        # One line whatever a value contained: the whole point of this class.
        self.flag = flag
        self.message = " ".join(message.split("\n"))
        super().__init__(f"{flag}: {self.message}" if flag else self.message)


# -- the flag table -------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One flag: its name is also its config-file key and (mangled) its env var."""

    name: str  # without dashes: "dhcp.server-ip"
    default: str | None  # as an operator would type it; None means unset
    metavar: str
    help: str
    section: str  # "general", "server", "etcd" or "compat"
    switch: bool = False  # boolean: a bare --name means true
    secret: bool = False  # never printed (--print-config)
    repeat: bool = False  # may be given several times (a file line each, a JSON list in env)

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def dest(self) -> str:
        return re.sub(r"[.-]", "_", self.name)

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.dest.upper()


_DURATION_HINT = "Go duration syntax: 90s, 30m, 1h30m, 200ms"

FLAGS: tuple[Flag, ...] = (
    # general (shared with etcdhcpctl)
    Flag(
        "config",
        None,
        "PATH",
        f"config file of 'key = value' lines (default {DEFAULT_CONFIG_FILE}, which may be "
        "absent; a file named here must exist; an empty value reads no file)",
        "general",
    ),
    Flag("v", "0", "LEVEL", "log verbosity, glog style: 0, 1, 2; higher is chattier", "general"),
    # the DHCP server
    Flag(
        "admin-addr",
        ":9842",
        "[HOST]:PORT",
        "HTTP admin server (/metrics, /healthz, /readyz); an empty host means every address",
        "server",
    ),
    Flag(
        "admin.debug",
        "false",
        "BOOL",
        "also serve debugging endpoints on the admin server (/debug/threads: a stack dump "
        "of every thread); off by default, as they show internals to anyone who can connect",
        "server",
        switch=True,
    ),
    Flag(
        "dhcp.server-ip",
        "10.0.0.1",
        "IP",
        "this server's address, sent as option 54 (server identifier). With several "
        "interfaces, each one's own address is its server identifier; this flag may only "
        "name one of them, to pick that interface's (and the subnet of the range flags)",
        "server",
    ),
    Flag(
        "dhcp.server-if",
        "eth0",
        "IFACE[,IFACE...]",
        "network interface to serve on; several, comma-separated, are served by one daemon, "
        "each answering with its own IPv4 address as server identifier (option 54)",
        "server",
    ),
    Flag("dhcp.subnet-mask", "255.255.240.0", "MASK", "subnet mask, option 1", "server"),
    Flag("dhcp.router", "10.0.0.1", "IP", "default router, option 3", "server"),
    Flag("dhcp.dns", "10.0.0.1", "IP[,IP...]", "DNS servers, option 6, comma-separated", "server"),
    Flag(
        "dhcp.option",
        None,
        "NAME=VALUE",
        "a DHCP option for every scope, at the global level, under the global document's "
        "option-data (which wins code by code); repeat the flag for more. NAME: a Kea option "
        "name of the dhcp4 space, or a code; VALUE: Kea's option-data text (for a code with "
        "no standard definition, hex or 'quoted text'). In the config file one line each; "
        "in the environment one, or a JSON list of strings",
        "server",
        repeat=True,
    ),
    Flag("dhcp.issue-from", "10.0.0.10", "IP", "first address to hand out", "server"),
    Flag("dhcp.issue-to", "10.0.0.100", "IP", "last address to hand out (inclusive)", "server"),
    Flag("dhcp.lease", "1h", "DURATION", f"lease duration ({_DURATION_HINT})", "server"),
    Flag(
        "dhcp.request-timeout",
        "2s",
        "DURATION",
        "budget for handling one request. The original's default of 40s was a typo for "
        "200ms; 2s stays under a client's first retransmission at about 4s (RFC 2131 "
        "section 4.1), so an answer later than that would only race the retry",
        "server",
    ),
    Flag(
        "dhcp.monitor-interval",
        "5m",
        "DURATION",
        "how often the free pool is reseeded from the range and expired addresses returned",
        "server",
    ),
    Flag(
        "dhcp.offer-hold",
        "10s",
        "DURATION",
        "how long an offered address is held for the client that was offered it",
        "server",
    ),
    Flag(
        "dhcp.decline-time",
        "24h",
        "DURATION",
        "how long a DECLINEd address (in use by someone else) stays in quarantine",
        "server",
    ),
    Flag(
        "dhcp.workers",
        "32",
        "N",
        "threads answering requests, per served interface in each serving process",
        "server",
    ),
    Flag(
        "dhcp.processes",
        "auto",
        "N|auto",
        "processes serving DHCP, each with its own workers and etcd connection; the "
        "kernel gives each client (by hardware address) to one of them. Python runs one "
        "thread at a time, so one process uses about one core: more processes use more "
        f"cores. auto: one per CPU the server may run on, at most {AUTO_PROCESSES}. "
        f"At most {MAX_PROCESSES}",
        "server",
    ),
    Flag(
        "dhcp.cpu-affinity",
        "auto",
        "auto|off|CPUS",
        "pin each serving process to one CPU, so that its threads hand Python's "
        "interpreter lock to each other on that CPU instead of waking each other on "
        "another (measured: a quarter less CPU per lease and a third more leases a second "
        "at full load). auto: when there are at least as many serving processes as CPUs "
        "the server may run on, process i runs on the i-th of them; with fewer, the "
        "kernel places them (another daemon on the host may be pinned). off: never pin. "
        "A list such as 0-3,6: process i runs on the i-th CPU listed, round-robin",
        "server",
    ),
    Flag(
        "dhcp.queue-size",
        "1024",
        "N",
        "requests waiting for a worker. The last quarter is kept for renewals, releases "
        "and declines, so a flood of new clients cannot starve the clients that already "
        "have a lease; when the rest is full, a new DISCOVER takes the place of the "
        "oldest waiting one, and once the oldest has waited 0.2 s the newest are answered "
        "first",
        "server",
    ),
    Flag(
        "dhcp.client-rate",
        "10",
        "PER_SECOND",
        "requests per second one client (by hardware address) may send once its burst is "
        "spent; more are dropped unanswered. 0 turns the limit off",
        "server",
    ),
    Flag(
        "dhcp.client-burst",
        "20",
        "N",
        "requests one client may send at once before --dhcp.client-rate applies",
        "server",
    ),
    # etcd (shared with etcdhcpctl)
    Flag(
        "etcd.discovery.endpoints",
        None,
        "URL[,URL...]",
        "comma-separated etcd endpoints, with or without scheme and port "
        "(localhost:2379, http://a:2379, https://b); scheme http (https when TLS is "
        "configured) and port 2379 unless given",
        "etcd",
    ),
    Flag("etcd.discovery.srv", None, "NAME", "DNS SRV name to discover etcd with", "etcd"),
    Flag("etcd.auth.username", None, "USER", "etcd user name", "etcd"),
    Flag(
        "etcd.auth.password",
        None,
        "PASSWORD",
        "etcd password (visible in ps: prefer --etcd.auth.password-file)",
        "etcd",
        secret=True,
    ),
    Flag(
        "etcd.auth.password-file",
        None,
        "PATH",
        "file holding the etcd password (a trailing newline is ignored)",
        "etcd",
    ),
    Flag("etcd.auth.ca", None, "PATH", "CA certificate (PEM) to verify etcd with", "etcd"),
    Flag("etcd.auth.cert", None, "PATH", "client certificate (PEM) for etcd", "etcd"),
    Flag("etcd.auth.key", None, "PATH", "client certificate's private key (PEM)", "etcd"),
    Flag("etcd.prefix", "etcdhcp::", "PREFIX", "prefix of every etcd key", "etcd"),
    Flag(
        "etcd.embedded",
        "false",
        "BOOL",
        "run a private single-node etcd child process; implied when neither "
        "--etcd.discovery.endpoints nor --etcd.discovery.srv is given",
        "etcd",
        switch=True,
    ),
    Flag(
        "etcd.embedded.listen",
        "127.0.0.1:2479",
        "HOST:PORT",
        "client address of the embedded etcd; its peer port is the next port",
        "etcd",
    ),
    Flag("etcd.embedded.binary", "etcd", "PATH", "etcd program the embedded etcd runs", "etcd"),
    Flag(
        "state-dir",
        "/var/lib/etcdhcp",
        "DIR",
        "directory for local state (the embedded etcd's data)",
        "etcd",
    ),
    # accepted so unit files written for the original (a glog program) keep working
    *(
        Flag(
            name,
            "false",
            "BOOL",
            "accepted for compatibility with the original (a glog program); etcdhcp "
            "always logs to stderr",
            "compat",
            switch=True,
        )
        for name in ("logtostderr", "alsologtostderr")
    ),
)

_BY_NAME: dict[str, Flag] = {f.name: f for f in FLAGS}
_REPEATED = frozenset(f.name for f in FLAGS if f.repeat)
_SECTION_TITLES = {
    "general": "general",
    "server": "DHCP server",
    "etcd": "etcd",
    "compat": "compatibility with the original's glog flags",
}

_EPILOG = f"""\
Go style works too, as the original etcdhcp took its flags:
  -dhcp.server-ip 10.0.0.1   -dhcp.server-ip=10.0.0.1   -v=2   -v 2

Every flag can also be set in the environment: {ENV_PREFIX} + the flag name
upper-cased, with '.' and '-' as '_' (ETCDHCP_DHCP_SERVER_IP, ETCDHCP_V), and in
the config file (--config, default {DEFAULT_CONFIG_FILE}) as 'key = value'
lines, key = the flag name without dashes, '#' starting a comment:
  dhcp.server-ip = 10.0.0.1

Precedence: command line > environment > config file > default."""


def _help_text(flag: Flag) -> str:
    default = "none" if flag.default is None else flag.default or "''"
    if flag.name == "config":
        text = f"{flag.help}. Env {flag.env_var}."
    else:
        text = f"{flag.help}. Default: {default}. Env {flag.env_var}."
    return text.replace("%", "%%")  # argparse %-formats help strings


def _add_section(parser: argparse.ArgumentParser, section: str, echo: bool = False) -> None:
    group = parser.add_argument_group(_SECTION_TITLES[section])
    for flag in FLAGS:
        if flag.section != section:
            continue
        kwargs: dict[str, Any] = {
            "dest": flag.dest,
            "metavar": flag.metavar,
            "help": _help_text(flag),
            "env_var": flag.env_var,
            # Defaults stay text and go through the same conversion as typed values.
            "default": flag.default,
        }
        if echo:  # see add_etcd_arguments
            kwargs.update(help=argparse.SUPPRESS, default=argparse.SUPPRESS)
            del kwargs["env_var"]
        if flag.switch:
            kwargs.update(nargs="?", const="true")
        if flag.repeat:
            kwargs.update(action="append", default=None)
        group.add_argument(flag.option, **kwargs)


def add_etcd_arguments(parser: argparse.ArgumentParser, echo: bool = False) -> None:
    """Add --config, -v, every --etcd.* flag and --state-dir to `parser`.

    `echo=True` is for a plain argparse parent of subcommand parsers: hidden, with
    no defaults, it accepts the settings ConfigArgParse 1.5 (Debian 12) appends
    after the command from the config file and the environment.

    Shared with etcdhcpctl so both read the same flags, ETCDHCP_* variables and
    config file; `etcd_fields` turns the parsed values into checked settings.
    """
    _add_section(parser, "general", echo)
    _add_section(parser, "etcd", echo)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags only the daemon takes: -admin-addr, -dhcp.*, glog leftovers."""
    _add_section(parser, "server")


# -- parsing ----------------------------------------------------------------------------


def _long_names(parser: argparse.ArgumentParser) -> dict[str, str | int | None]:
    """Long option names (without dashes) -> their nargs (None: exactly one value)."""
    names: dict[str, str | int | None] = {}
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--"):
                names[option[2:]] = action.nargs
    return names


_TRUE_WORDS = frozenset({"1", "t", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "f", "false", "no", "off"})
_BOOLEAN_WORDS = _TRUE_WORDS | _FALSE_WORDS


def go_style_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """Rewrite Go-style `-name` / `-name=value` into `--name...` for the parser's flags.

    Only names the parser knows are rewritten, and nothing after a bare `--` is touched.
    A value following a flag is its value even if it starts with '-', as in Go: it is
    joined to the flag (`--dhcp.lease=-5m`) so argparse does not take it for a flag
    and the value's own check says what is wrong with it.
    """
    names = _long_names(parser)
    out: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.append(arg)
            out.extend(args[i:])
            break
        if arg.startswith("-") and not arg.startswith("--"):
            name = arg[1:].partition("=")[0]
            if name in names:
                arg = "-" + arg
        out.append(arg)
        if not arg.startswith("--"):
            continue
        name, eq, _ = arg[2:].partition("=")
        if eq or name not in names:
            continue
        if names[name] is None and i < len(args):
            value = args[i]
            i += 1
            if value.startswith("-"):
                out[-1] = f"--{name}={value}"
            else:
                out.append(value)
        elif names[name] == "?" and (i >= len(args) or args[i].lower() not in _BOOLEAN_WORDS):
            # A bare switch never takes a following command or argument as its value.
            out[-1] = f"--{name}=true"
    return out


def parse_config_text(text: str, source: str) -> dict[str, str | list[str]]:
    """Parse `key = value` lines; '#' or ';' starts a comment line.

    A value may be quoted ('...' or "...") to keep a ' #' in it; otherwise ' #'
    starts a trailing comment. A key may carry leading dashes (`--dhcp.lease = 1h`).
    A repeatable flag's key (`dhcp.option`) gives a list, a line each; any other key
    given twice takes its last value. Errors name the file and the 1-based line, never
    the value (it may be a password).
    """
    items: dict[str, str | list[str]] = {}
    repeated: dict[str, list[str]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        key = key.strip().lstrip("-")
        if not eq or not key or any(c.isspace() for c in key):
            raise ConfigError("--config", f"{source} line {number}: expected 'key = value'")
        value = value.strip()
        if value[:1] in ("'", '"'):
            end = value.find(value[0], 1)
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0 or (rest and not rest.startswith("#")):
                raise ConfigError("--config", f"{source} line {number}: unbalanced quote")
            value = value[1:end]
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].rstrip()
        if key in _REPEATED:
            repeated.setdefault(key, []).append(value)
        else:
            items[key] = value
    return {**items, **repeated}


class _ConfigFileParser(configargparse.ConfigFileParser):
    """configargparse's hook for our file format (see `parse_config_text`)."""

    def get_syntax_description(self) -> str:
        return "key = value lines, key = the flag name without dashes; # comments"

    def parse(self, stream: Any) -> dict[str, str | list[str]]:
        return parse_config_text(stream.read(), getattr(stream, "name", "config file"))

    def serialize(self, items: Mapping[str, Any]) -> str:
        return "".join(f"{key} = {value}\n" for key, value in items.items())


class _Parser(configargparse.ArgumentParser):
    """A parser whose every complaint is one ConfigError, never usage plus exit."""

    def error(self, message: str) -> NoReturn:
        unknown = re.match(r"unrecognized arguments: (.*)", message, re.DOTALL)
        if unknown:
            args = unknown.group(1).split(" ")
            text = f"unrecognized argument {args[0]}"
            name = args[0].lstrip("-").partition("=")[0]
            hint = difflib.get_close_matches(name, list(_long_names(self)), n=1)
            if hint:
                text += f" (did you mean --{hint[0]}?)"
            if len(args) > 1:
                text += f" (and {len(args) - 1} more)"
            raise ConfigError(None, text)
        argument = re.match(r"argument (\S+): (.*)", message, re.DOTALL)
        if argument:
            raise ConfigError(argument.group(1).split("/")[-1], argument.group(2))
        raise ConfigError(None, message)


def new_parser(prog: str = PROG, description: str | None = None) -> configargparse.ArgumentParser:
    """A parser with one-line errors, --help, --version and our config file format.

    Add flags with `add_etcd_arguments` (and `add_server_arguments` for the daemon),
    then call `parse_flags`.
    """
    parser = _Parser(
        prog=prog,
        description=description,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        add_config_file_help=False,
        add_env_var_help=False,
        # parse_flags checks keys itself, against every etcdhcp flag, so a file shared
        # with etcdhcpctl may hold keys only the other program takes.
        ignore_unknown_config_file_keys=True,
        config_file_parser_class=_ConfigFileParser,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


@dataclass(frozen=True)
class ParsedFlags:
    """Parsed flag values (still text) plus where each non-default one came from.

    The typed accessors raise ConfigError naming the flag and, for a value from the
    environment or the config file, that source: "(from ETCDHCP_DHCP_LEASE)".
    """

    namespace: argparse.Namespace
    origins: Mapping[str, str]  # flag name -> "ETCDHCP_X" or config file path
    command_line: frozenset[str] = frozenset()  # flag names given on the command line

    def source(self, name: str) -> str:
        """Where the value of flag `name` came from: flag, environment, file or default."""
        if name in self.command_line:
            return "flag"
        origin = self.origins.get(name)
        if origin is None:
            return "default"
        return f"environment {origin}" if origin.startswith(ENV_PREFIX) else f"file {origin}"

    def raw(self, name: str) -> str | None:
        return getattr(self.namespace, _BY_NAME[name].dest)

    def values(self, name: str) -> tuple[str, ...]:
        """A repeatable flag's values in the order given; an empty one means unset."""
        return tuple(v for v in getattr(self.namespace, _BY_NAME[name].dest) or () if v)

    def error(self, name: str, message: str) -> ConfigError:
        origin = self.origins.get(name)
        return ConfigError("--" + name, f"{message} (from {origin})" if origin else message)

    def text(self, name: str) -> str | None:
        """The value, with an empty one meaning unset."""
        value = self.raw(name)
        return value or None

    def required(self, name: str) -> str:
        value = self.raw(name)
        if not value:
            raise self.error(name, "must not be empty")
        return value

    def ipv4(self, name: str, value: str | None = None) -> IPv4Address:
        value = self.raw(name) if value is None else value
        try:
            return IPv4Address((value or "").strip())
        except AddressValueError:
            raise self.error(name, f"{value!r} is not an IPv4 address") from None

    def duration(self, name: str, minimum: float = 0.0) -> float:
        """A positive Go-style duration of at least `minimum` seconds."""
        value = self.raw(name) or ""
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise self.error(name, str(e)) from None
        if seconds < 0:
            raise self.error(name, f"{value} is negative; it must be more than 0")
        if seconds == 0:
            raise self.error(name, f"{value} must be more than 0")
        if seconds < minimum:
            raise self.error(name, f"{value} is shorter than {minimum:g}s")
        return seconds

    def number(self, name: str, minimum: float) -> float:
        """A decimal number (`2.5`) of at least `minimum`."""
        value = self.raw(name) or ""
        try:
            number = float(value)
        except ValueError:
            raise self.error(name, f"{value!r} is not a number") from None
        if not math.isfinite(number) or number < minimum:
            raise self.error(name, f"{value} is not a number of at least {minimum:g}")
        return number

    def integer(self, name: str, minimum: int, maximum: int | None = None) -> int:
        value = self.raw(name) or ""
        try:
            number = int(value, 0)  # like Go's flag.Int: 0x20 and 1_000 are fine
        except ValueError:
            raise self.error(name, f"{value!r} is not an integer") from None
        if number < minimum:
            raise self.error(name, f"{number} is less than {minimum}")
        if maximum is not None and number > maximum:
            raise self.error(name, f"{number} is more than {maximum}")
        return number

    def switch(self, name: str) -> bool:
        value = (self.raw(name) or "").strip().lower()
        if value in _TRUE_WORDS:
            return True
        if not value or value in _FALSE_WORDS:  # empty: unset, as elsewhere
            return False
        raise self.error(name, f"{self.raw(name)!r} is not a boolean (true or false)")

    def host_port(
        self, name: str, need_host: bool, min_port: int, max_port: int = 65535
    ) -> tuple[str, int]:
        try:
            host, port = split_host_port(self.raw(name) or "")
        except ValueError as e:
            raise self.error(name, str(e)) from None
        if need_host and not host:
            raise self.error(name, f"{self.raw(name)!r} needs a host")
        if not min_port <= port <= max_port:
            raise self.error(name, f"port {port} is not between {min_port} and {max_port}")
        return host, port


def _config_path(args: Sequence[str], env: Mapping[str, str]) -> tuple[str | None, bool]:
    """(path to read or None, whether it was asked for explicitly)."""
    path: str | None = None
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--config" and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg[len("--config=") :]
    if path is None:
        path = env.get(_BY_NAME["config"].env_var)
    if path is None:
        return DEFAULT_CONFIG_FILE, False
    return (os.path.expanduser(path) if path else None), True


def _read_config(path: str | None, explicit: bool) -> str:
    if path is None:
        return ""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        if not explicit:
            return ""  # the default file is optional
        raise ConfigError("--config", f"cannot read {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ConfigError("--config", f"cannot read {path}: {reason}") from None


def parse_flags(
    parser: configargparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ParsedFlags:
    """Parse Go- or GNU-style `argv`, `env` and the config file with `parser`.

    `argv` defaults to sys.argv[1:] and `env` to os.environ. --help and --version
    print and raise SystemExit(0); every problem raises ConfigError.
    """
    args = go_style_argv(sys.argv[1:] if argv is None else argv, parser)
    env = os.environ if env is None else env

    text = ""
    path: str | None = None
    before_dashdash = args[: args.index("--")] if "--" in args else args
    if not {"-h", "--help", "--version"} & set(before_dashdash):  # never block --help
        _check_environment(env)
        path, explicit = _config_path(args, env)
        text = _read_config(path, explicit)
    items = parse_config_text(text, path or "config file")
    known = {f.name for f in FLAGS} | set(_long_names(parser))
    known -= {"config", "help", "version", "print-config"}
    for key in items:
        if key not in known:
            raise ConfigError("--config", f"{path}: unknown key {key!r}{_did_you_mean(key, known)}")

    namespace = parser.parse_args(args=args, config_file_contents=text, env_vars=env)

    by_dest = {f.dest: f.name for f in FLAGS}
    given = {arg[2:].partition("=")[0] for arg in before_dashdash if arg.startswith("--")}
    origins: dict[str, str] = {}
    for source, settings in parser.get_source_to_settings_dict().items():
        for key, (action, _value) in settings.items():
            if action is None or action.dest not in by_dest:
                continue
            if source.startswith("environment"):
                origins[by_dest[action.dest]] = key
            elif source.startswith("config_file"):
                origins[by_dest[action.dest]] = path or "config file"
    return ParsedFlags(namespace, origins, frozenset(given & set(_BY_NAME)))


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    hint = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {hint[0]}?)" if hint else ""


def _check_environment(env: Mapping[str, str]) -> None:
    """A misspelt ETCDHCP_* variable is refused as a misspelt config-file key is, rather
    than ignored: the operator meant it to change something. So is a repeatable flag's
    `[...]` that is not a JSON list of strings, rather than split at every comma."""
    known = {f.env_var for f in FLAGS}
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            # Compared without the prefix they all share, so the hint is a near one.
            hint = _did_you_mean(name[len(ENV_PREFIX) :], {k[len(ENV_PREFIX) :] for k in known})
            hint = hint.replace("mean ", "mean " + ENV_PREFIX)
            raise ConfigError(None, f"unknown environment variable {name}{hint}")
    for flag in FLAGS:
        value = env.get(flag.env_var, "") if flag.repeat else ""
        if value.startswith("[") and value.endswith("]") and not _json_strings(value):
            raise ConfigError(
                flag.option, f"{value!r} is not a JSON list of strings (from {flag.env_var})"
            )


def _json_strings(text: str) -> bool:
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# -- value syntax ---------------------------------------------------------------------

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign, as Go accepts
    "\u03bcs": 1e-6,  # Greek mu, as Go accepts
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration (`1h30m`, `1.5h`, `200ms`, `90s`, a bare `0`).

    Go syntax because that is what the original's operators wrote: time.ParseDuration,
    including an optional sign; every number needs a unit except a lone 0.
    """
    body = text
    sign = 1.0
    if body[:1] in ("-", "+"):
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    total = 0.0
    pos = 0
    while pos < len(body):
        part = _DURATION_PART.match(body, pos)
        if not part:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        pos = part.end()
    if not body or pos != len(body):
        raise ValueError(f"invalid duration {text!r}; {_DURATION_HINT}")
    return sign * total


def split_host_port(text: str) -> tuple[str, int]:
    """Split `host:port`, `:port` or `[v6]:port` as Go's net.SplitHostPort does."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise ValueError(f"{text!r} is not [IPv6]:PORT")
        host, port = text[1:end], text[end + 2 :]
        try:
            IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ValueError(f"{text!r} has no port (HOST:PORT or :PORT)")
        if ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, as in [::1]:9842")
        if host and not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            raise ValueError(f"{host!r} is not a host name or address")
    if not port.isascii() or not port.isdigit():
        raise ValueError(f"{port!r} is not a port number")
    return host, int(port)


def normalise_endpoint(text: str, default_scheme: str = "http") -> str:
    """`localhost` -> `http://localhost:2379`; keep a given scheme and port."""
    rest = text.strip()
    scheme = default_scheme
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"{text!r}: scheme must be http or https")
    rest = rest.rstrip("/")
    if not rest or any(c in rest for c in "/?#@ "):
        raise ValueError(f"{text!r} is not an endpoint (SCHEME://HOST:PORT)")
    if ":" not in rest.replace("[", "").replace("]", "") or rest.endswith("]"):
        rest = f"{rest}:{ETCD_DEFAULT_PORT}"
    try:
        host, port = split_host_port(rest)
    except ValueError as e:
        raise ValueError(f"{text!r}: {e}") from None
    if not host or not 1 <= port <= 65535:
        raise ValueError(f"{text!r} is not an endpoint (SCHEME://HOST:PORT)")
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


# -- the result -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedInterface:
    """One served interface and the address that identifies the server on it: option 54
    of every reply that leaves by it, so a client's renewal comes back to that address."""

    name: str
    server_ip: IPv4Address


@dataclass(frozen=True)
class Config:
    """Everything the daemon needs, converted and checked (see `load`)."""

    admin_host: str  # "" means every address
    admin_port: int
    admin_debug: bool
    server_ip: IPv4Address  # --dhcp.server-ip: with the mask, the subnet of the flags' scope
    interfaces: tuple[ServedInterface, ...]  # in --dhcp.server-if's order
    subnet_mask: IPv4Address
    router: IPv4Address
    dns: tuple[IPv4Address, ...]
    issue_from: IPv4Address
    issue_to: IPv4Address
    range_given: bool  # --dhcp.issue-from/-to not the defaults: served beside etcd's scopes
    lease_time: float  # seconds, like every duration below
    request_timeout: float
    monitor_interval: float
    offer_hold: float
    decline_time: float
    workers: int
    processes: int
    cpus: tuple[int, ...]  # serving process i runs on cpus[i % len]; empty: unpinned
    queue_size: int
    client_rate: float  # requests per second per client; 0: no limit
    client_burst: int
    global_options: OptionData  # --dhcp.option, encoded: the lowest level of every reply
    etcd_endpoints: tuple[str, ...]  # "scheme://host:port"
    etcd_srv: str | None
    etcd_username: str | None
    etcd_password: str | None = field(repr=False)  # kept out of logs
    etcd_ca: str | None
    etcd_cert: str | None
    etcd_key: str | None
    etcd_prefix: str
    etcd_embedded: bool
    embedded_listen_host: str
    embedded_listen_port: int
    embedded_binary: str
    state_dir: str
    verbosity: int
    warnings: tuple[str, ...] = ()  # problems worth one log line each, not worth refusing

    @property
    def network(self) -> IPv4Network:
        """The served subnet."""
        return IPv4Network(f"{self.server_ip}/{self.subnet_mask}", strict=False)

    @property
    def flag_interface(self) -> str | None:
        """The interface of the flags' scope: the one identified by --dhcp.server-ip (with
        one interface, that one); None when no interface is."""
        return next((i.name for i in self.interfaces if i.server_ip == self.server_ip), None)

    def flag_scope(self) -> Scope | None:
        """The scope the original's flags describe, on the interface that carries
        --dhcp.server-ip, when they describe one (docs/scopes.md): the range flags were
        given, or the default range fits the subnet. None: etcd's scopes alone."""
        interface = self.flag_interface
        if interface is None:
            return None
        scope = flag_scope(
            self.network,
            self.issue_from,
            self.issue_to,
            self.router,
            self.dns,
            self.lease_time,
            interface,
        )
        fits = all(scope.contains(end) for pool in scope.pools for end in (pool.first, pool.last))
        return scope if self.range_given or fits else None


def _readable(flags: ParsedFlags, name: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise flags.error(name, f"cannot read {path}: {e.strerror or e}") from None


def etcd_fields(flags: ParsedFlags) -> dict[str, Any]:
    """Check the flags of `add_etcd_arguments`; return them as Config field values.

    Public so etcdhcpctl gets the same checks and the same endpoint normalisation.
    """
    verbosity = flags.integer("v", minimum=0)
    ca = flags.text("etcd.auth.ca")
    cert = flags.text("etcd.auth.cert")
    key = flags.text("etcd.auth.key")
    scheme = Credentials(ca=ca, cert=cert, key=key).scheme

    endpoints: list[str] = []
    for item in (flags.raw("etcd.discovery.endpoints") or "").split(","):
        if item.strip():
            try:
                endpoints.append(normalise_endpoint(item, scheme))
            except ValueError as e:
                raise flags.error("etcd.discovery.endpoints", str(e)) from None
    srv = flags.text("etcd.discovery.srv")
    external = bool(endpoints or srv)
    asked_embedded = flags.switch("etcd.embedded")
    if asked_embedded and external:
        raise flags.error(
            "etcd.embedded",
            "cannot be combined with --etcd.discovery.endpoints or --etcd.discovery.srv",
        )

    username = flags.text("etcd.auth.username")
    password = flags.text("etcd.auth.password")
    password_file = flags.text("etcd.auth.password-file")
    if password_file:
        if password:
            raise flags.error(
                "etcd.auth.password-file", "give --etcd.auth.password or this, not both"
            )
        try:
            with open(password_file, encoding="utf-8") as f:
                password = f.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise flags.error(
                "etcd.auth.password-file", f"cannot read {password_file}: {reason}"
            ) from None
        if not password:
            raise flags.error("etcd.auth.password-file", f"{password_file} is empty")
    if password and not username:
        raise flags.error("etcd.auth.username", "needed with a password")
    if username and not password:
        raise flags.error(
            "etcd.auth.password", "needed with --etcd.auth.username (or --etcd.auth.password-file)"
        )

    if bool(cert) != bool(key):
        missing, given = ("etcd.auth.key", "cert") if cert else ("etcd.auth.cert", "key")
        raise flags.error(missing, f"needed with --etcd.auth.{given}")
    for name, path in (("etcd.auth.ca", ca), ("etcd.auth.cert", cert), ("etcd.auth.key", key)):
        if path:
            _readable(flags, name, path)
    if not external:
        for name in ("etcd.auth.ca", "etcd.auth.cert", "etcd.auth.key", "etcd.auth.username"):
            if flags.text(name):
                raise flags.error(
                    name,
                    "given, but no --etcd.discovery.endpoints or --etcd.discovery.srv "
                    "(the embedded etcd has no TLS and no authentication)",
                )
    if scheme == "https":
        for endpoint in endpoints:
            if not endpoint.startswith("https://"):
                raise flags.error(
                    "etcd.discovery.endpoints",
                    f"{endpoint} is not https, but TLS (--etcd.auth.ca/cert/key) is set",
                )

    listen_host, listen_port = flags.host_port(
        "etcd.embedded.listen", need_host=True, min_port=1, max_port=65534
    )
    return {
        "etcd_endpoints": tuple(endpoints),
        "etcd_srv": srv,
        "etcd_username": username,
        "etcd_password": password,
        "etcd_ca": ca,
        "etcd_cert": cert,
        "etcd_key": key,
        "etcd_prefix": flags.raw("etcd.prefix") or "",
        "etcd_embedded": asked_embedded or not external,
        "embedded_listen_host": listen_host,
        "embedded_listen_port": listen_port,
        "embedded_binary": flags.required("etcd.embedded.binary"),
        "state_dir": flags.required("state-dir"),
        "verbosity": verbosity,
    }


def _etcd_settings(settings: Config | Mapping[str, Any]) -> Mapping[str, Any]:
    return settings if isinstance(settings, Mapping) else vars(settings)


def etcd_credentials(settings: Config | Mapping[str, Any]) -> Credentials:
    """The etcd credentials of a Config, or of the fields `etcd_fields` returns (etcdhcpctl):
    the one place the daemon and etcdhcpctl build them."""
    fields = _etcd_settings(settings)
    return Credentials(
        fields["etcd_username"],
        fields["etcd_password"],
        fields["etcd_ca"],
        fields["etcd_cert"],
        fields["etcd_key"],
    )


def discover_etcd(settings: Config | Mapping[str, Any]) -> list[str]:
    """The endpoints the SRV records of --etcd.discovery.srv name, in the scheme the
    credentials ask for (as a scheme-less --etcd.discovery.endpoints is)."""
    fields = _etcd_settings(settings)
    return srv_endpoints(fields["etcd_srv"] or "", etcd_credentials(fields).scheme)


def _netmask(flags: ParsedFlags) -> tuple[IPv4Address, int]:
    mask = flags.ipv4("dhcp.subnet-mask")
    hostbits = ~int(mask) & 0xFFFFFFFF
    if hostbits & (hostbits + 1) or int(mask) == 0:
        raise flags.error("dhcp.subnet-mask", f"{mask} is not a valid subnet mask")
    return mask, 32 - hostbits.bit_length()


_AFFINITY_AT_START = frozenset(os.sched_getaffinity(0))


def usable_cpus() -> frozenset[int]:
    """The CPUs this server may run on: its CPU affinity when it started, not now, as a
    serving process pins its threads to one of them (and SIGHUP reads the flags again)."""
    return _AFFINITY_AT_START


def _processes(flags: ParsedFlags) -> int:
    """--dhcp.processes: a number, or auto (the CPUs we may run on, at most AUTO_PROCESSES)."""
    value = (flags.raw("dhcp.processes") or "").strip()
    if value.lower() == "auto":
        return min(len(usable_cpus()), AUTO_PROCESSES)
    if not value.isdigit():
        raise flags.error("dhcp.processes", f"{value!r} is neither a number nor auto")
    return flags.integer("dhcp.processes", minimum=1, maximum=MAX_PROCESSES)


def serving_cpus(value: str, processes: int, allowed: Iterable[int]) -> tuple[int, ...]:
    """--dhcp.cpu-affinity: the CPUs serving processes run on, in order (empty: unpinned).

    `allowed`: the CPUs this process may run on. ValueError says what is wrong.
    """
    allowed = sorted(allowed)
    text = value.strip().lower()
    if text == "off":
        return ()
    if text == "auto":
        return tuple(allowed) if processes >= len(allowed) else ()
    cpus: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{value!r} is neither auto, off nor a list of CPUs like 0-3,6")
        low, high = int(first), int(last if dash else first)
        if high < low:
            raise ValueError(f"{part.strip()!r} is an empty range")
        cpus += range(low, high + 1)
    outside = sorted(set(cpus) - set(allowed))
    if outside:
        listed = ",".join(map(str, outside))
        may = ",".join(map(str, allowed))
        raise ValueError(f"CPU {listed} is not one this server may run on ({may})")
    return tuple(dict.fromkeys(cpus))


def _cpus(flags: ParsedFlags, processes: int) -> tuple[int, ...]:
    try:
        value = flags.raw("dhcp.cpu-affinity") or ""
        return serving_cpus(value, processes, usable_cpus())
    except ValueError as exc:
        raise flags.error("dhcp.cpu-affinity", str(exc)) from None


def _check_range(
    flags: ParsedFlags,
    network: IPv4Network,
    special: dict[IPv4Address, str],
    server_ip: IPv4Address,
    issue_from: IPv4Address,
    issue_to: IPv4Address,
) -> None:
    """--dhcp.issue-from/-to: inside the subnet, in order, not the server's own address."""
    for name, address in (("dhcp.issue-from", issue_from), ("dhcp.issue-to", issue_to)):
        if address not in network:
            raise flags.error(name, f"{address} is outside the subnet {network}")
        if address in special:
            raise flags.error(name, f"{address} is the {special[address]} address of {network}")
    if issue_from > issue_to:
        raise flags.error("dhcp.issue-to", f"{issue_to} is before --dhcp.issue-from {issue_from}")
    if issue_from <= server_ip <= issue_to:
        raise flags.error(
            "dhcp.server-ip",
            f"{server_ip} is inside the range handed out, {issue_from}-{issue_to}",
        )


def _interface_names(flags: ParsedFlags, check_interface: bool) -> list[str]:
    """--dhcp.server-if: one name, or several comma-separated, each one existing."""
    names = [name.strip() for name in flags.required("dhcp.server-if").split(",")]
    for name in names:
        if not name or len(name) > 15 or "/" in name or name in (".", "..") or " " in name:
            raise flags.error("dhcp.server-if", f"{name!r} is not an interface name")
        if names.count(name) > 1:
            raise flags.error("dhcp.server-if", f"{name} is named twice")
        if check_interface and not os.path.exists(os.path.join(SYSFS_NET, name)):
            raise flags.error("dhcp.server-if", f"no network interface named {name}")
    return names


def _served_interfaces(
    flags: ParsedFlags, names: list[str], server_ip: IPv4Address, range_given: bool
) -> tuple[ServedInterface, ...]:
    """Each interface with its server identifier.

    One interface is identified by --dhcp.server-ip, as the original did (warned about
    when the interface lacks it: `server_ip_warnings`). Several are each identified by
    an address of their own, read from them: the first, or --dhcp.server-ip where the
    interface carries it. That flag, when not the default, must be one of those
    addresses, and so must it be when the range flags (which describe its subnet) are
    given: both would otherwise describe a link the daemon does not serve.
    """
    if len(names) == 1:
        return (ServedInterface(names[0], server_ip),)
    served = []
    for name in names:
        addresses = interface_addresses(name)
        if addresses is None:
            raise flags.error("dhcp.server-if", f"cannot read the IPv4 addresses of {name}")
        if not addresses:
            raise flags.error(
                "dhcp.server-if",
                f"{name} has no IPv4 address: with several interfaces each needs its own, "
                "sent as its server identifier (option 54)",
            )
        own = server_ip if server_ip in addresses else addresses[0]
        for other in served:
            if other.server_ip == own:
                raise flags.error(
                    "dhcp.server-if", f"{other.name} and {name} would both be identified as {own}"
                )
        served.append(ServedInterface(name, own))
    if all(s.server_ip != server_ip for s in served):
        listed = ", ".join(names)
        if server_ip != IPv4Address(_BY_NAME["dhcp.server-ip"].default or ""):
            raise flags.error(
                "dhcp.server-ip",
                f"{server_ip} is on none of {listed}: with several interfaces it may only pick "
                "one of their own addresses as that interface's server identifier",
            )
        if range_given:
            raise flags.error(
                "dhcp.issue-from",
                f"the range flags describe the subnet of the interface that carries "
                f"--dhcp.server-ip, and none of {listed} has {server_ip}",
            )
    return tuple(served)


def _server_fields(flags: ParsedFlags, check_interface: bool) -> dict[str, Any]:
    admin_host, admin_port = flags.host_port("admin-addr", need_host=False, min_port=0)
    server_ip = flags.ipv4("dhcp.server-ip")
    names = _interface_names(flags, check_interface)
    mask, prefixlen = _netmask(flags)
    router = flags.ipv4("dhcp.router")
    dns_text = flags.raw("dhcp.dns") or ""
    dns = tuple(flags.ipv4("dhcp.dns", part) for part in dns_text.split(",") if part.strip())
    if not dns:
        raise flags.error("dhcp.dns", "needs at least one address")
    issue_from = flags.ipv4("dhcp.issue-from")
    issue_to = flags.ipv4("dhcp.issue-to")
    # By value, not by where it came from: --print-config's output read back as a
    # file must mean the same.
    range_given = any(
        flags.raw(name) != _BY_NAME[name].default for name in ("dhcp.issue-from", "dhcp.issue-to")
    )

    network = IPv4Network((server_ip, prefixlen), strict=False)
    special = {}
    if prefixlen <= 30:  # /31 and /32 have no network or broadcast address
        special = {network.network_address: "network", network.broadcast_address: "broadcast"}
    if server_ip in special:
        raise flags.error(
            "dhcp.server-ip", f"{server_ip} is the {special[server_ip]} address of {network}"
        )
    # A default range outside the server's subnet describes no scope: that server serves
    # etcd's scopes only (serving.py), so there is no range to check.
    if range_given or (issue_from in network and issue_to in network):
        _check_range(flags, network, special, server_ip, issue_from, issue_to)
    interfaces = _served_interfaces(flags, names, server_ip, range_given)

    lease = flags.duration("dhcp.lease", minimum=1.0)
    if lease > _MAX_LEASE_SECONDS:
        raise flags.error("dhcp.lease", "is longer than DHCP can express (about 136 years)")
    processes = _processes(flags)
    return {
        "admin_host": admin_host,
        "admin_port": admin_port,
        "server_ip": server_ip,
        "interfaces": interfaces,
        "subnet_mask": mask,
        "router": router,
        "dns": dns,
        "issue_from": issue_from,
        "issue_to": issue_to,
        "range_given": range_given,
        "lease_time": lease,
        "request_timeout": flags.duration("dhcp.request-timeout"),
        "monitor_interval": flags.duration("dhcp.monitor-interval"),
        "offer_hold": flags.duration("dhcp.offer-hold"),
        "decline_time": flags.duration("dhcp.decline-time"),
        "workers": flags.integer("dhcp.workers", minimum=1),
        "processes": processes,
        "cpus": _cpus(flags, processes),
        "queue_size": flags.integer("dhcp.queue-size", minimum=1),
        "client_rate": flags.number("dhcp.client-rate", minimum=0.0),
        "client_burst": flags.integer("dhcp.client-burst", minimum=1),
        "admin_debug": flags.switch("admin.debug"),
        "global_options": _global_options(flags),
    }


def _global_options(flags: ParsedFlags) -> OptionData:
    """--dhcp.option NAME=VALUE: each an entry of the global level's option-data, encoded
    at start as the global document's are, so a bad value stops the start, not a reply.

    A code with no standard definition has no type to read VALUE with (the flags carry
    no option-def): it is given a binary one, so VALUE is read as Kea reads csv-format
    false data (hex, or 'quoted text'), site-specific codes (224-254) included."""
    texts = flags.values("dhcp.option")
    entries = [_option_entry(flags, text) for text in texts]
    untyped = {
        e["code"]: {"name": f"option-{e['code']}", "code": e["code"], "type": "binary"}
        for e in entries
        if e.get("csv-format") is False
    }
    defs = optiondefs.load_option_defs(list(untyped.values()))
    encoded: dict[int, bytes] = {}
    for text, entry in zip(texts, entries, strict=True):
        try:
            code, data = optiondefs.encode(entry, defs, entries)
        except optiondefs.OptionError as exc:
            hint = " (no standard definition: hex, or 'quoted text')"
            hint = hint if entry.get("csv-format") is False else ""
            raise flags.error("dhcp.option", f"{text}: {exc}{hint}") from None
        if code in encoded:
            raise flags.error("dhcp.option", f"{text}: option {code} is given twice")
        encoded[code] = data
    return OptionData(tuple(encoded.items()))


def _option_entry(flags: ParsedFlags, text: str) -> dict[str, Any]:
    """One --dhcp.option NAME=VALUE as a Kea option-data entry of the dhcp4 space."""
    name, eq, value = text.partition("=")
    name = name.strip()
    if not eq or not name:
        raise flags.error("dhcp.option", f"{text!r} is not NAME=VALUE")
    if re.fullmatch(r"[0-9]+", name):
        code = int(name)
        if not 1 <= code <= 254:
            raise flags.error("dhcp.option", f"{text}: code {code} is not in 1..254")
        if STANDARD_DEFS.find(optiondefs.DHCP4, code, None) is None:
            return {"code": code, "data": value, "csv-format": False}
        return {"code": code, "data": value}
    if STANDARD_DEFS.find(optiondefs.DHCP4, None, name) is None:
        hint = _did_you_mean(name, [d.name for d in optiondefs.STANDARD_V4])
        raise flags.error("dhcp.option", f"{text}: no dhcp4 option is named {name!r}{hint}")
    return {"name": name, "data": value}


def load(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    check_interface: bool = True,
) -> Config:
    """Parse and check the daemon's configuration; raise ConfigError on any problem.

    `argv` defaults to sys.argv[1:], `env` to os.environ. `check_interface=False`
    skips checking that the interfaces exist and that one carries --dhcp.server-ip
    (tests); the addresses of several interfaces are read all the same, being their
    server identifiers. --help, --version and --print-config print
    and raise SystemExit(0).
    """
    parser = new_parser(PROG, "etcdhcp: a DHCPv4 server whose leases live in etcd.")
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration, every flag as 'name = value  # source' "
        "(flag, environment, file or default; the password hidden), and exit",
    )
    add_server_arguments(parser)
    add_etcd_arguments(parser)
    _add_section(parser, "compat")
    flags = parse_flags(parser, argv, env)
    for name in ("logtostderr", "alsologtostderr"):
        flags.switch(name)  # accepted and ignored, but a typo in the value still fails
    server = _server_fields(flags, check_interface)
    warnings = secret_warnings(flags)
    if check_interface and len(server["interfaces"]) == 1:
        warnings += server_ip_warnings(server["server_ip"], server["interfaces"][0].name)
    config = Config(**server, **etcd_fields(flags), warnings=warnings)
    if flags.namespace.print_config:  # after the checks: what is printed would run
        sys.stdout.write(effective_config(flags))
        raise SystemExit(0)
    return config


def _config_value(value: str) -> str:
    """`value` as parse_config_text reads it back: quoted when it would not be."""
    if not value:
        return "''"
    if value != value.strip() or re.search(r"\s#", value) or value[:1] in ("'", '"'):
        quote = "'" if "'" not in value else '"'
        return f"{quote}{value}{quote}"
    return value


def effective_config(flags: ParsedFlags) -> str:
    """Every flag the parser took, one `name = value  # source` line each, in the config
    file's syntax (--config commented out: a file cannot name itself); a secret's value
    is replaced by stars."""
    lines = []
    for flag in FLAGS:
        if not hasattr(flags.namespace, flag.dest):
            continue
        if flag.repeat:  # a line each, as the file gives them
            values = flags.values(flag.name) or ("",)
        else:
            value = flags.raw(flag.name)
            if value is None:
                value = DEFAULT_CONFIG_FILE if flag.name == "config" else ""
            elif flag.secret and value:
                value = "********"
            values = (value,)
        comment = "# " if flag.name == "config" else ""
        for value in values:
            line = f"{comment}{flag.name} = {_config_value(value)}  # {flags.source(flag.name)}"
            lines.append(line + "\n")
    return "".join(lines)


def interface_addresses(interface: str) -> tuple[IPv4Address, ...] | None:
    """The IPv4 addresses configured on `interface` (`ip -j -4 addr show`), the primary
    first; None when they cannot be read (no iproute2, no such interface)."""
    try:
        shown = subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "dev", interface],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        links = json.loads(shown.stdout)
        return tuple(
            IPv4Address(address["local"])
            for link in links
            for address in link.get("addr_info", ())
            if "local" in address
        )
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError, AttributeError):
        return None


def server_ip_warnings(server_ip: IPv4Address, interface: str) -> tuple[str, ...]:
    """A line when --dhcp.server-ip is not an address of the served interface: clients
    renew by unicast to it (RFC 2131 section 4.4.5) and nothing would answer their ARP.

    Warned, not refused: the address may be added after the daemon starts.
    """
    addresses = interface_addresses(interface)
    if addresses is None or server_ip in addresses:
        return ()
    has = ", ".join(sorted(map(str, addresses), key=IPv4Address)) or "no IPv4 address"
    return (
        f"--dhcp.server-ip {server_ip} is not configured on {interface} (it has {has}): "
        "clients' unicast renewals to it will not arrive",
    )


def _world_readable(path: str) -> bool:
    try:
        return bool(os.stat(path).st_mode & 0o004)
    except OSError:
        return False


def secret_warnings(flags: ParsedFlags) -> tuple[str, ...]:
    """Where the etcd password can be read by other users of the machine.

    Not refused (an operator may have reasons), but each is worth one log line.
    """
    if not flags.text("etcd.auth.password"):
        password_file = flags.text("etcd.auth.password-file")
        if password_file and _world_readable(password_file):
            return (
                f"--etcd.auth.password-file {password_file} is readable by every user: "
                f"chmod o-r {password_file}",
            )
        return ()
    origin = flags.origins.get("etcd.auth.password")
    if origin is None:
        return (
            "--etcd.auth.password on the command line is visible to every user in ps: "
            "use --etcd.auth.password-file",
        )
    if not origin.startswith(ENV_PREFIX) and _world_readable(origin):
        return (
            f"the config file {origin} holds the etcd password and is readable by every "
            f"user: chmod o-r {origin}, or use --etcd.auth.password-file",
        )
    return ()


def report_and_exit(error: ConfigError, prog: str = PROG) -> NoReturn:
    """Print `prog: <error>` as one line on stderr and exit with status 2 (usage error)."""
    print(f"{prog}: {error}", file=sys.stderr)
    sys.exit(2)


def load_or_exit(argv: list[str] | None = None) -> Config:
    """`load`, but a problem ends the process: one line on stderr, exit status 2."""
    try:
        return load(argv)
    except ConfigError as e:
        report_and_exit(e)
