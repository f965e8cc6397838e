"""Client classes: Kea's `client-classes` list, parsed once and evaluated per request.

A class has a name, a `test` (a Kea expression, expressions.py) and what members get:
`option-data` and the boot fields. Classes are evaluated in the order written and a
test sees the classes matched before it (`member()`), as in Kea; a request belongs to
every class whose test matches, plus the built-in ones (ALL, VENDOR_CLASS_<option 60>).
A class without a test is joined only by name: a built-in class of that name, or (the
hosts issue) a host record that lists it. What the classes carry is used in the order
the request joined them (built-in ones first, then the tested ones in definition
order), as Kea does: the first class that sets an option or a boot field wins.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from etcdhcp import expressions, optiondefs
from etcdhcp.codec import Request
from etcdhcp.scopes import Boot, OptionData, ScopeError, parse_boot, parse_option_data

CLASS_KEYS = frozenset(
    {
        "name",
        "test",
        "option-data",
        "next-server",
        "server-hostname",
        "boot-file-name",
        "user-context",
        "comment",
    }
)


@dataclass(frozen=True, eq=False)
class ClientClass:
    """One `client-classes` entry, checked and encoded."""

    name: str
    test: expressions.Expression | None
    options: OptionData
    boot: Boot
    document: Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class Classes:
    """Every defined class, in order; `classify` is what the pipeline calls per request."""

    defined: tuple[ClientClass, ...] = ()

    def classify(self, request: Request) -> tuple[str, ...]:
        """The names of the classes `request` belongs to: built-in ones, then matches."""
        return tuple(expressions.classify(request, self._tests))

    @functools.cached_property
    def _tests(self) -> tuple[tuple[str, expressions.Expression], ...]:
        return tuple((c.name, c.test) for c in self.defined if c.test is not None)

    def of(self, names: Sequence[str]) -> tuple[ClientClass, ...]:
        """The defined classes among `names` (what `classify` returned), in that order,
        which is their precedence: Kea 2.2 goes through a packet's classes in the order
        they were added, so a defined VENDOR_CLASS_ class comes before every tested one."""
        return tuple(self._by_name[n] for n in names if n in self._by_name)

    @functools.cached_property
    def _by_name(self) -> dict[str, ClientClass]:
        return {c.name: c for c in self.defined}


def parse_classes(value: Any, path: str, defs: optiondefs.OptionDefs) -> Classes:
    """Kea's `client-classes` list -> Classes, or ScopeError naming the entry (and, for a
    test that does not parse, the line and column)."""
    if not isinstance(value, list):
        raise ScopeError(path, "must be a list of classes")
    defined: list[ClientClass] = []
    for i, entry in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(entry, dict):
            raise ScopeError(where, "must be an object")
        unknown = sorted(set(entry) - CLASS_KEYS)
        if unknown:
            raise ScopeError(f"{where}.{unknown[0]}", "is not supported")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise ScopeError(f"{where}.name", f"{name!r} is not a class name")
        if any(c.name == name for c in defined):
            raise ScopeError(f"{where}.name", f"class {name!r} is defined twice")
        defined.append(
            ClientClass(
                name,
                _test(entry, where, [c.name for c in defined], defs),
                parse_option_data(entry.get("option-data", []), f"{where}.option-data", defs),
                parse_boot(entry, where),
                entry,
            )
        )
    return Classes(tuple(defined))


def _test(
    entry: Mapping[str, Any], where: str, before: Sequence[str], defs: optiondefs.OptionDefs
) -> expressions.Expression | None:
    text = entry.get("test")
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ScopeError(f"{where}.test", f"{text!r} is not an expression")

    def option_code(name: str) -> int | None:
        found = defs.find(optiondefs.DHCP4, None, name)
        return None if found is None else found.code

    try:
        return expressions.compile(text, before, option_code)
    except expressions.ExpressionError as exc:
        raise ScopeError(f"{where}.test", str(exc)) from None
