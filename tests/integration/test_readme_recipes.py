"""The README's recipes, run as written against etcdhcp with its embedded etcd.

The README marks its runnable recipes with an `<!-- recipe -->` line before a
```console block: `$ ` starts a command, the lines after it are what it prints, and
`...` stands for what varies (a whole line of it: any lines). Each command runs in a
fresh bash in the server namespace, as a root shell on the machine that
scripts/bootstrap.sh set up would run it: its PATH is a root login's, so etcdhcpctl
must come from bootstrap's /usr/local/bin link, and etcdctl finds the embedded etcd
only if the recipe says where (127.0.0.1:2479, the daemon's default).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from .daemon import EtcdhcpProcess
from .lab import Lab

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARK = "<!-- recipe -->"
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Step:
    """One `$ command` of a recipe block and the lines the README says it prints."""

    command: str
    expected: list[str]


def recipe_steps(text: str) -> list[Step]:
    """The steps of every marked ```console block, in the README's order."""
    steps: list[Step] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        assert lines[i + 1].strip() == "```console", f"{MARK} must precede a ```console block"
        for body in lines[i + 2 :]:
            if body.startswith("```"):
                break
            if body.startswith("$ "):
                steps.append(Step(body[2:], []))
            else:
                assert steps, f"output before any command: {body!r}"
                steps[-1].expected.append(body)
    return steps


def _squeeze(line: str) -> str:
    """Table columns pad to their widest cell: compare words, not spacing."""
    return " ".join(line.split())


def output_pattern(expected: list[str]) -> re.Pattern[str]:
    """A regex for the whole output: `...` alone on a line is any lines, inside one any text."""
    parts = []
    for line in expected:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            words = (re.escape(w) for w in _squeeze(line).split("..."))
            parts.append(".*?".join(words) + r"\n")
    return re.compile("".join(parts))


def printed(output: str) -> str:
    return "".join(_squeeze(line) + "\n" for line in output.splitlines())


def test_recipe_parser_and_matcher() -> None:
    text = "x\n<!-- recipe -->\n```console\n$ a\none  two\n$ b\n```\n$ c\n"
    assert recipe_steps(text) == [Step("a", ["one  two"]), Step("b", [])]
    assert output_pattern(["A  ...  C", "...", "end"]).fullmatch(printed("A b C\nx\ny\nend\n"))
    assert output_pattern(["...", "end"]).fullmatch(printed("end\n"))
    assert not output_pattern(["OK"]).fullmatch(printed("OK\nOK\n"))
    assert not output_pattern([]).fullmatch(printed("something\n"))


def test_readme_recipes_run_as_written(lab: Lab) -> None:
    steps = recipe_steps(README.read_text())
    assert len(steps) >= 10, "the README lost its marked recipes"
    ctl = shutil.which("etcdhcpctl", path=ROOT_PATH)
    assert ctl and Path(ctl).resolve().parent == (ROOT / ".venv" / "bin").resolve(), (
        f"etcdhcpctl on a root PATH is {ctl}, not this tree's venv: run scripts/bootstrap.sh"
    )
    daemon = EtcdhcpProcess(
        lab,
        "",  # no endpoint: the embedded etcd on 127.0.0.1:2479, as the README's recipes say
        issue_from="198.18.0.10",
        issue_to="198.18.0.100",
        extra=["--state-dir", str(lab.workdir / "state"), "-dhcp.processes=1"],
        verbosity=0,
    ).start()
    env = {"PATH": ROOT_PATH, "HOME": str(lab.workdir), "LANG": "C.UTF-8"}
    for step in steps:
        done = lab.run(lab.server_ns, ["bash", "-c", step.command], timeout=20, env=env)
        shown = f"$ {step.command}\n{done.stdout}{done.stderr}"
        assert done.returncode == 0 and done.stderr == "", shown
        assert output_pattern(step.expected).fullmatch(printed(done.stdout)), (
            f"{shown}\nbut the README says:\n" + "\n".join(step.expected)
        )
        if step.command.startswith("export "):
            env.update(w.split("=", 1) for w in shlex.split(step.command)[1:])
    assert daemon.stop() == 0, daemon.log()
    assert "Traceback" not in daemon.log(), daemon.log()
    assert os.path.exists(lab.workdir / "state"), "the daemon did not use its embedded etcd"
