"""keajson: Kea's commented JSON."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest

from etcdhcp import keajson


def test_all_three_comment_styles_are_removed() -> None:
    text = """{
      // a line comment
      "a": 1, # a shell comment
      /* a block
         comment */ "b": [2, 3]
    }"""
    assert keajson.loads(text) == {"a": 1, "b": [2, 3]}


def test_comment_markers_inside_strings_are_kept() -> None:
    text = '{"url": "http://x/#frag", "c": "/* not */", "d": "a // b", "e": "q\\"#"}'
    assert keajson.loads(text) == {
        "url": "http://x/#frag",
        "c": "/* not */",
        "d": "a // b",
        "e": 'q"#',
    }


def test_a_number_without_leading_zero_is_read_as_kea_reads_it() -> None:
    assert keajson.loads('{"t1-percent": .5, "x": [1.5, -0.25], "s": ".5"}') == {
        "t1-percent": 0.5,
        "x": [1.5, -0.25],
        "s": ".5",
    }


def test_errors_keep_the_line_of_the_original_text() -> None:
    text = '{\n  /* one\n  two */\n  "a": 1,\n  "b": ,\n}'
    with pytest.raises(keajson.KeaJsonError, match=r"^conf.json:5:8: Expecting value$"):
        keajson.loads(text, "conf.json")


def test_an_unterminated_block_comment_is_one_line() -> None:
    with pytest.raises(keajson.KeaJsonError, match="unterminated /\\* comment starting on line 2"):
        keajson.loads('{\n /* open\n "a": 1}')


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(keajson.KeaJsonError, match="No such file"):
        keajson.load(tmp_path / "absent.json")


def test_every_example_configuration_of_kea_doc_loads() -> None:
    files = glob.glob("/usr/share/doc/kea/examples/kea*/*.json")
    assert len(files) > 20, "kea-doc is not installed"
    for path in files:
        assert isinstance(keajson.load(path), dict), path
