"""Client classes: Kea's `client-classes` list, parsed once and evaluated per request.

A class has a name, a `test` (a Kea expression, expressions.py) and what members get:
`option-data` and the boot fields. Classes are evaluated in the order written and a
test sees the classes matched before it (`member()`), as in Kea; a request belongs to
every class whose test matches, plus the built-in ones (ALL, VENDOR_CLASS_<option 60>).
A class without a test is joined only by name: a built-in class of that name, or a
host record that lists it. Tests that use KNOWN or UNKNOWN are evaluated after the
host lookup (`with_host`), as Kea's second pass. What the classes carry is used in the order
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

KNOWN, UNKNOWN = "KNOWN", "UNKNOWN"  # Kea's built-in classes: a host was found, or not
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
        """The first pass, before the scope is chosen: built-in classes, then the matches
        of the tests that do not depend on the host lookup (KNOWN, UNKNOWN)."""
        return tuple(expressions.classify(request, self._early))

    def with_host(
        self, request: Request, first: Sequence[str], host_classes: Sequence[str], known: bool
    ) -> tuple[str, ...]:
        """Kea's second pass, once the host lookup is done: the host's classes join (and
        the first pass runs again after them, so a test such as "not member('x')" sees
        them), then KNOWN or UNKNOWN, then the tests that depend on those."""
        if host_classes:
            joined = expressions.builtin_classes(request)
            joined += [c for c in dict.fromkeys(host_classes) if c not in joined]
            names = expressions.classify(request, self._early, joined=joined)
        else:
            names = list(first)
        names.append(KNOWN if known else UNKNOWN)
        if self._late:
            names = expressions.classify(request, self._late, joined=names)
        return tuple(names)

    @functools.cached_property
    def _early(self) -> tuple[tuple[str, expressions.Expression], ...]:
        return tuple(t for t in self._tests if t[0] not in self._late_names)

    @functools.cached_property
    def _late(self) -> tuple[tuple[str, expressions.Expression], ...]:
        return tuple(t for t in self._tests if t[0] in self._late_names)

    @functools.cached_property
    def _late_names(self) -> frozenset[str]:
        """Classes whose test names KNOWN or UNKNOWN, or a class that does (member()):
        members are defined before, so one pass in order finds them all."""
        late: set[str] = set()
        for name, test in self._tests:
            if test.depends_on_known or test.members & late:
                late.add(name)
        return frozenset(late)

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
