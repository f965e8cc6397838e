"""globalconfig: the global document and the view built with it (no etcd, no socket)."""

from __future__ import annotations

import json

import pytest

from etcdhcp import globalconfig
from etcdhcp.globalconfig import GLOBAL_DOC, assemble, check_change, parse_global
from etcdhcp.scopes import Defaults, Document, OptionData, ScopeError

SUBNET = {"id": 1, "subnet": "198.18.0.0/24", "pools": [{"pool": "198.18.0.10 - 198.18.0.20"}]}
CUSTOM = {"name": "wpad", "code": 252, "type": "string"}


def doc(name: str, body: object, revision: int = 1) -> Document:
    return Document(name, json.dumps(body).encode(), revision)


def test_the_global_level_carries_definitions_options_classes_boot_and_lifetimes() -> None:
    level = parse_global(
        {
            "option-def": [CUSTOM],
            "option-data": [{"name": "wpad", "data": "http://198.18.0.1/wpad.dat"}],
            "client-classes": [{"name": "c", "test": "option[60].exists"}],
            "next-server": "198.18.0.2",
            "boot-file-name": "pxelinux.0",
            "valid-lifetime": 600,
            "renew-timer": 100,
        }
    )
    assert level.options.options == ((252, b"http://198.18.0.1/wpad.dat"),)
    assert [c.name for c in level.classes.defined] == ["c"]
    assert level.boot.next_server == "198.18.0.2" and level.boot.boot_file_name == b"pxelinux.0"
    built = assemble([doc(GLOBAL_DOC, {"valid-lifetime": 600}), doc("subnet4/1", SUBNET)], None, {})
    assert built.scopes.by_id[1].valid_lifetime == 600  # inherited from the global level


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "global/dhcp4: must be a JSON object"),
        ({"interfaces-config": {}}, "global/dhcp4.interfaces-config: is not supported"),
        ({"option-def": [{"name": "x"}]}, "global/dhcp4.option-def: "),
        ({"valid-lifetime": 0}, "global/dhcp4.valid-lifetime: "),
        ({"renew-timer": 50, "rebind-timer": 10}, "global/dhcp4.renew-timer: "),
        ({"client-classes": [{"name": ""}]}, "global/dhcp4.client-classes[0].name: "),
    ],
)
def test_bad_global_documents_are_refused_by_path(body: object, message: str) -> None:
    with pytest.raises(ScopeError) as refused:
        parse_global(body)
    assert str(refused.value).startswith(message)


def test_scopes_may_use_the_global_option_definitions() -> None:
    scope = {**SUBNET, "option-data": [{"name": "wpad", "data": "http://x/"}]}
    without = assemble([doc("subnet4/1", scope)], None, {})
    assert "subnet4/1" in without.problems
    built = assemble([doc(GLOBAL_DOC, {"option-def": [CUSTOM]}), doc("subnet4/1", scope)], None, {})
    assert built.problems == {}
    assert built.scopes.by_id[1].options == ((252, b"http://x/"),)
    assert globalconfig.of(built.scopes).defs.find("dhcp4", 252, None) is not None


def test_a_bad_new_global_version_keeps_the_previous_one_and_the_scopes() -> None:
    first = assemble([doc(GLOBAL_DOC, {"boot-file-name": "a"}), doc("subnet4/1", SUBNET)], None, {})
    broken = doc(GLOBAL_DOC, {"boot-file-name": "b", "bogus": 1}, 2)
    second = assemble([broken, doc("subnet4/1", SUBNET)], None, first.accepted)
    assert second.problems[GLOBAL_DOC].startswith("global/dhcp4.bogus")
    assert globalconfig.of(second.scopes).boot.boot_file_name == b"a"
    assert 1 in second.scopes.by_id


def test_a_global_change_that_breaks_a_scope_keeps_the_scopes_previous_version() -> None:
    scope = {**SUBNET, "option-data": [{"name": "wpad", "data": "http://x/"}]}
    first = assemble([doc(GLOBAL_DOC, {"option-def": [CUSTOM]}), doc("subnet4/1", scope)], None, {})
    second = assemble([doc(GLOBAL_DOC, {}, 3), doc("subnet4/1", scope)], None, first.accepted)
    assert "subnet4/1" in second.problems  # reported, and still served as it was
    assert second.scopes.by_id[1].options == ((252, b"http://x/"),)


def test_check_change_reports_the_scopes_a_global_change_would_break() -> None:
    scope = {**SUBNET, "option-data": [{"name": "wpad", "data": "http://x/"}]}
    existing = [doc(GLOBAL_DOC, {"option-def": [CUSTOM]}), doc("subnet4/1", scope, 2)]
    refused = check_change(existing, {GLOBAL_DOC: b"{}"})
    assert list(refused) == ["subnet4/1"]
    kept = {"option-def": [CUSTOM], "next-server": "198.18.0.2"}
    assert check_change(existing, {GLOBAL_DOC: json.dumps(kept).encode()}) == {}


def test_the_flags_options_sit_under_the_documents_code_by_code() -> None:
    flags = Defaults(options=OptionData(((15, b"flags.example"), (42, b"\xc6\x12\x00\x05"))))
    alone = assemble([doc("subnet4/1", SUBNET)], None, {}, flags)
    assert globalconfig.of(alone.scopes).options == flags.options  # no global document
    stored = {"option-data": [{"name": "domain-name", "data": "doc.example"}]}
    built = assemble([doc(GLOBAL_DOC, stored), doc("subnet4/1", SUBNET)], None, {}, flags)
    level = globalconfig.of(built.scopes)
    assert dict(level.options.options) == {15: b"doc.example", 42: b"\xc6\x12\x00\x05"}
    assert level.defaults.options == flags.options  # what a scope inherits still says so
    broken = doc(GLOBAL_DOC, {"bogus": 1}, 2)
    kept = assemble([broken, doc("subnet4/1", SUBNET)], None, built.accepted, flags)
    assert dict(globalconfig.of(kept.scopes).options.options)[15] == b"doc.example"
