"""`etcdhcpctl scope ...` against the real etcd: every command, and every refusal.

Each rule a scope document must keep (issue 14, item 2) is tried through `scope add`,
`scope set` and `scope import`: one line on stderr naming the document and the JSON
path, exit status 1, and nothing written. Commands run in-process through `ctl.main`
(the Ctl helper of test_ctl); tests/integration/test_scopes.py runs them as processes
against running servers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Ctl, Keys, documents

LAN = {
    "id": 1,
    "subnet": "198.18.0.0/24",
    "pools": [{"pool": "198.18.0.100 - 198.18.0.199"}],
    "option-data": [{"name": "routers", "data": "198.18.0.1"}],
}
KEA = """\
// A Kea configuration with comments of every kind
{
  "Dhcp4": {
    "valid-lifetime": 600,  # inherited by both entries
    "subnet4": [
      {"id": 1, "subnet": "198.18.0.0/24", "pools": [{"pool": "198.18.0.100 - 198.18.0.199"}]}
    ],
    /* a shared network of two subnets on one link */
    "shared-networks": [
      {"name": "floor-2", "subnet4": [
        {"id": 2, "subnet": "198.18.2.0/24"},
        {"id": 3, "subnet": "198.18.3.0/24", "valid-lifetime": 60}
      ]}
    ]
  }
}
"""


def test_add_show_list_set_remove(run: Ctl, keys: Keys) -> None:
    assert run("scope", "add", json.dumps(LAN)) == "added 1 document: subnet4/1\n"
    assert documents(keys) == {"subnet4::1": LAN}
    assert json.loads(run("scope", "show", "1")) == LAN
    [row] = run.json("scope", "list")
    assert (row["id"], row["subnet"], row["status"]) == (1, "198.18.0.0/24", "served")
    changed = {**LAN, "valid-lifetime": 120}
    assert run("scope", "set", json.dumps(changed)) == "replaced 1 document: subnet4/1\n"
    assert documents(keys) == {"subnet4::1": changed}
    assert run("scope", "remove", "1") == "removed 1 document: subnet4/1\n"
    assert documents(keys) == {}


def test_add_takes_a_file_or_standard_input(
    run: Ctl, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lan.json"
    path.write_text("// the LAN\n" + json.dumps(LAN))
    run("scope", "add", str(path))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"id": 2, "subnet": "198.18.9.0/24"})))
    run("scope", "add", "-")
    assert sorted(documents(keys)) == ["subnet4::1", "subnet4::2"]


def test_import_of_a_kea_file_with_comments(run: Ctl, keys: Keys, tmp_path: Path) -> None:
    path = tmp_path / "kea.json"
    path.write_text(KEA)
    assert run("scope", "import", str(path), "--dry-run").startswith("would write 2 documents")
    assert documents(keys) == {}
    out = run("scope", "import", str(path))
    assert out == "imported 2 documents: shared-networks/floor-2, subnet4/1\n"
    stored = documents(keys)
    assert stored["subnet4::1"]["valid-lifetime"] == 600  # the global level, written in
    assert stored["shared-networks::floor-2"]["valid-lifetime"] == 600
    rows = {r["id"]: r for r in run.json("scope", "list")}
    assert sorted(rows) == [1, 2, 3]
    assert rows[2]["shared_network"] == "floor-2" and rows[3]["valid_lifetime"] == 60
    # --replace: what the file does not have goes.
    path.write_text(json.dumps({"subnet4": [LAN]}))
    run("scope", "import", str(path), "--replace")
    assert sorted(documents(keys)) == ["subnet4::1"]


BAD: list[tuple[str, dict[str, Any], str]] = [
    (
        "overlapping subnets",
        {"id": 7, "subnet": "198.18.0.128/25"},
        "subnet4/7: subnet 198.18.0.128/25 overlaps 198.18.0.0/24 of scope 1",
    ),
    (
        "overlapping pools",
        {
            "id": 7,
            "subnet": "198.18.7.0/24",
            "pools": [{"pool": "198.18.7.10 - 198.18.7.20"}, {"pool": "198.18.7.20/30"}],
        },
        "subnet4/7.pools: pools 198.18.7.10 - 198.18.7.20 and 198.18.7.20 - 198.18.7.23 overlap",
    ),
    (
        "pool outside its subnet",
        {"id": 7, "subnet": "198.18.7.0/24", "pools": [{"pool": "198.18.8.1 - 198.18.8.9"}]},
        "subnet4/7.pools[0].pool: '198.18.8.1 - 198.18.8.9' is outside 198.18.7.0/24",
    ),
    (
        "router outside its subnet",
        {
            "id": 7,
            "subnet": "198.18.7.0/24",
            "option-data": [{"name": "routers", "data": "198.18.0.1"}],
        },
        "subnet4/7.option-data.routers: router 198.18.0.1 is outside 198.18.7.0/24",
    ),
    (
        "unknown key",
        {"id": 7, "subnet": "198.18.7.0/24", "reservations-global": True},
        "subnet4/7.reservations-global: is not supported by etcdhcp",
    ),
    (
        "unknown key in a pool",
        {"id": 7, "subnet": "198.18.7.0/24", "pools": [{"pool": "198.18.7.0/28", "x": 1}]},
        "subnet4/7.pools[0].x: is not supported by etcdhcp",
    ),
    (
        "duplicate id",
        {"name": "floor-9", "subnet4": [{"id": 1, "subnet": "198.18.9.0/24"}]},
        "shared-networks/floor-9: scope id 1 is used by 198.18.0.0/24 too",
    ),
]


@pytest.mark.parametrize(("problem", "document", "expected"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_document_is_refused_in_one_line_and_nothing_is_written(
    run: Ctl, keys: Keys, tmp_path: Path, problem: str, document: dict[str, Any], expected: str
) -> None:
    run("scope", "add", json.dumps(LAN))
    before = keys.all()
    assert expected in run.fails("scope", "add", json.dumps(document)), problem
    kea = tmp_path / "kea.json"
    section = "shared-networks" if "subnet4" in document else "subnet4"
    kea.write_text(json.dumps({"Dhcp4": {section: [document]}}))
    assert expected in run.fails("scope", "import", str(kea)), problem
    if "id" in document:  # set: the same document, replacing one that is there
        run("scope", "add", json.dumps({"id": 7, "subnet": "198.18.70.0/24"}))
        before = keys.all()
        assert expected.split(": ", 1)[1] in run.fails("scope", "set", json.dumps(document))
    assert keys.all() == before


def test_what_is_or_is_not_there(run: Ctl, tmp_path: Path) -> None:
    run("scope", "add", json.dumps(LAN))
    assert "subnet4/1: already there (use etcdhcpctl scope set)" in run.fails(
        "scope", "add", json.dumps(LAN)
    )
    assert "subnet4/2: no such document" in run.fails("scope", "set", json.dumps({**LAN, "id": 2}))
    assert "subnet4/5: no such document" in run.fails("scope", "remove", "5")
    assert "subnet4/5: no such document" in run.fails("scope", "show", "5")
    kea = tmp_path / "twice.json"
    kea.write_text(json.dumps({"subnet4": [{**LAN, "id": 4}, {**LAN, "id": 4}]}))
    assert "subnet4[1]: subnet4/4 is in the file twice" in run.fails("scope", "import", str(kea))
    kea.write_text('{"Dhcp4": {"subnet4": [], "lease-database": {}}}')
    err = run.fails("scope", "import", str(kea))
    assert "not imported by 'scope import': Dhcp4.lease-database" in err
    kea.write_text('{"subnet4": [ {"id": 1,, } ]}')
    assert f"{kea}:1:24: Expecting property name" in run.fails("scope", "import", str(kea))
