"""The man pages the Debian package installs say what `--help` says: every option and
command, with its argument, default and variable, the version, and nothing stale."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from etcdhcp import __version__, ctl
from etcdhcp.config import FLAGS

MAN = Path(__file__).resolve().parents[1] / "man"


def page(name: str) -> str:
    """The troff source with escaped dashes unescaped, as text to search."""
    return (MAN / name).read_text().replace("\\-", "-")


def documented_options(text: str) -> set[str]:
    """Options given an entry of their own (`.B --x` or `.BI --x " ARG"`)."""
    return set(re.findall(r"^\.BI? (--[a-z][\w.-]*)", text, re.M))


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """(command path, its parser) for every command and subcommand of `parser`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


@pytest.mark.parametrize("name", ["etcdhcp.8", "etcdhcpctl.8"])
def test_title_carries_the_version(name: str) -> None:
    assert re.search(rf'^\.TH \S+ 8 "[\d-]+" "etcdhcp {re.escape(__version__)}"', page(name), re.M)


def test_etcdhcp_page_documents_every_flag_as_help_does() -> None:
    text = page("etcdhcp.8")
    for flag in FLAGS:
        metavar = f"[{flag.metavar}]" if flag.switch else flag.metavar
        assert f'.BI --{flag.name} " {metavar}"' in text, flag.name
        entry = re.split(r"\n\.(?:TP|SS|SH)\b", text.split(f".BI --{flag.name} ", 1)[1])[0]
        entry = " ".join(entry.split())
        assert f"Env {flag.env_var}." in entry, flag.name
        if flag.name != "config":
            default = "none" if flag.default is None else flag.default
            assert f"Default: {default}." in entry, flag.name
    documented = documented_options(text)
    assert documented == {f"--{f.name}" for f in FLAGS} | {"--version", "--print-config"}


def test_etcdhcpctl_page_documents_every_option_and_command() -> None:
    text = page("etcdhcpctl.8")
    parser = ctl.build_parser()
    assert options(parser) <= documented_options(text)
    for path, sub in commands(parser):
        if any(isinstance(a, argparse._SubParsersAction) and a.required for a in sub._actions):
            continue  # a group such as `lease`, not a command: `lease show` is
        name = " ".join(path)
        entry = re.search(rf'^\.BI? "?{re.escape(name)}"?( .*)?$', text, re.M)
        assert entry, f"no entry for '{name}'"
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:
                continue  # the etcd flags echoed into every command (config.add_etcd_arguments)
            if action.option_strings:
                for option in action.option_strings:
                    if option.startswith("--") and option not in ("--help", "--json"):
                        assert option in entry.group(0), f"{name}: {option}"
            elif not isinstance(action, argparse._SubParsersAction):
                assert action.metavar in entry.group(0), f"{name}: {action.metavar}"
