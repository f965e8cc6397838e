"""The global level of the configuration: one Kea-shaped document over every scope.

The document `global/dhcp4` holds what Kea writes at the top of its `Dhcp4` object
and every scope shares: `option-def` (custom options, which scope documents may use),
`option-data`, `client-classes`, the boot fields, the lifetimes and timers scopes
inherit and the order hosts are looked up in (`host-reservation-identifiers`).
`assemble` builds the served view from it and the scope documents; a change to it
re-parses every scope (their options may use its definitions), and a version
that does not validate keeps the previous one served, as for a scope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from etcdhcp import optiondefs, scopes
from etcdhcp.clientclasses import Classes, parse_classes
from etcdhcp.hosts import DEFAULT_IDENTIFIERS, parse_identifier_order
from etcdhcp.scopes import (
    BOOT_KEYS,
    DEFAULTS,
    LIFETIME_KEYS,
    TIMER_KEYS,
    Assembly,
    Boot,
    Defaults,
    Document,
    OptionData,
    Scope,
    ScopeError,
)

GLOBAL_DOC = "global/dhcp4"
GLOBAL_KEYS = frozenset(
    {
        "option-data",
        "option-def",
        "client-classes",
        "host-reservation-identifiers",
        *BOOT_KEYS,
        *LIFETIME_KEYS,
        *TIMER_KEYS,
        "user-context",
        "comment",
    }
)
_PROBE = {"id": 1, "subnet": "0.0.0.0/32"}  # checks the inherited keys as a scope sees them


@dataclass(frozen=True, eq=False)
class Globals:
    """The global level, checked and encoded (compared by identity: one per version)."""

    defs: optiondefs.OptionDefs = scopes.STANDARD_DEFS
    options: OptionData = field(default_factory=OptionData)
    boot: Boot = field(default_factory=Boot)
    classes: Classes = field(default_factory=Classes)
    defaults: Defaults = DEFAULTS
    identifiers: tuple[str, ...] = DEFAULT_IDENTIFIERS  # the order hosts are looked up in
    document: Mapping[str, Any] = field(default_factory=dict)


EMPTY = Globals()


def parse_global(doc: Any, path: str = GLOBAL_DOC, base: Defaults = DEFAULTS) -> Globals:
    """The global document -> Globals, or ScopeError naming the JSON path at fault.

    `base` is what the flags give (the lease time, the `-dhcp.option` options); the
    document's keys override it, its option-data code by code."""
    if not isinstance(doc, dict):
        raise ScopeError(path, "must be a JSON object")
    unknown = sorted(set(doc) - GLOBAL_KEYS)
    if unknown:
        raise ScopeError(f"{path}.{unknown[0]}", "is not supported")
    try:
        defs = optiondefs.load_option_defs(doc.get("option-def", []))
    except optiondefs.OptionError as exc:
        raise ScopeError(f"{path}.option-def", str(exc)) from None
    inherited = {k: doc[k] for k in (*LIFETIME_KEYS, *TIMER_KEYS) if k in doc}
    defaults = Defaults(base.valid_lifetime, inherited, defs, base.options)
    scopes.parse_subnet(_PROBE, path, defaults)
    options = scopes.parse_option_data(doc.get("option-data", []), f"{path}.option-data", defs)
    return Globals(
        defs=defs,
        options=base.options.under(options),
        boot=scopes.parse_boot(doc, path),
        classes=parse_classes(doc.get("client-classes", []), f"{path}.client-classes", defs),
        defaults=defaults,
        identifiers=parse_identifier_order(
            doc.get("host-reservation-identifiers", list(DEFAULT_IDENTIFIERS)),
            f"{path}.host-reservation-identifiers",
        ),
        document=doc,
    )


def _parse(raw: bytes, base: Defaults) -> Globals:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScopeError(GLOBAL_DOC, f"is not JSON ({exc})") from None
    return parse_global(doc, GLOBAL_DOC, base)


def of(view: scopes.ScopeSet) -> Globals:
    """The global level served with `view` (EMPTY for a view built without one)."""
    return view.globals if isinstance(view.globals, Globals) else EMPTY


def assemble(
    documents: Iterable[Document],
    flag: Scope | None,
    previous: Mapping[str, tuple[Document, tuple[Scope, ...]]],
    base: Defaults = DEFAULTS,
) -> Assembly:
    """scopes.assemble with the global document: parsed first, its definitions and
    inherited keys used for every scope; a bad version keeps the previous one served."""
    rest, stored = [], None
    for doc in documents:
        if doc.name == GLOBAL_DOC:
            stored = doc
        else:
            rest.append(doc)
    old = previous.get(GLOBAL_DOC)
    problems: dict[str, str] = {}
    source, globals_ = None, Globals(options=base.options, defaults=base)
    if stored is not None:
        try:
            source, globals_ = stored, _parse(stored.raw, base)
        except ScopeError as exc:
            problems[GLOBAL_DOC] = str(exc)
            if old is not None:
                source, globals_ = old[0], _parse(old[0].raw, base)
    changed = (None if old is None else old[0].raw) != (None if source is None else source.raw)
    built = scopes.assemble(rest, flag, previous, globals_.defaults, reparse=changed)
    built.problems.update(problems)
    if source is not None:
        built.accepted[GLOBAL_DOC] = (source, ())
    built.scopes.globals = globals_
    return built


def check_change(
    existing: Iterable[Document], changed: Mapping[str, bytes | None]
) -> dict[str, str]:
    """What a change would refuse: `changed` maps names to new text (None: removed), each
    checked as the newest document. Returns name -> reason for the changed documents and
    for any other document the change breaks (a scope using a removed option-def)."""
    documents = {d.name: d for d in existing}
    before = assemble(documents.values(), None, {}).problems
    newest = max((d.revision for d in documents.values()), default=0) + 1
    for name, raw in changed.items():
        if raw is None:
            documents.pop(name, None)
        else:
            documents[name] = Document(name, raw, newest)
    after = assemble(documents.values(), None, {}).problems
    return {name: why for name, why in after.items() if name in changed or name not in before}
