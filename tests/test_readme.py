"""The README's code runs as written (issue 32): every ```python and ```bash block of README.md, in order.

The blocks run in a temporary project folder ``tmp/project`` beside a link ``tmp/shared/data`` to the shared data,
so ``../shared/data`` resolves as it does from the repository, with ``SYNTHAUG_QUICK=2``: the library's documented
smoke-test switch caps every step budget (training runs, the classifiers and encoders trained along the way) at 2
steps (:func:`synthaug.utils.quick_steps`); nothing in the README's text is rewritten.

* A ```python block is executed in a fresh namespace, so it must import and load everything it uses; it may read the
  files earlier blocks wrote (the model directories), as a reader following the README would.
* A ```bash block goes through a small interpreter of the shell forms the README uses, line by line:
  ``NAME=value ...`` assignments (kept for the rest of the block, ``$NAME`` expanded); ``synthaug ...``,
  ``python -m synthaug ...`` and ``torchrun ... -m synthaug.cli ...`` run in this process through
  :func:`synthaug.cli.main` and must return 0 (torchrun as one process: ``tests/test_distributed.py`` runs the
  multi-process path); ``make TARGET`` is checked with ``make -n`` in the repository (``make test`` runs this very
  suite; the demo is ``tests/test_demo.py``); a command of ``benchmarks/`` is checked, not run, because it takes hours
  and writes the repository's reports: its module must import and its ``--help`` must list every option the line
  uses; any other line (``mkdir``, ``cp``) runs in bash.

About a minute on one core (``slow``); the fast part checks that every block parses and every shell line is one the
interpreter knows.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICK_STEPS = "2"
_BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```$", re.S | re.M)
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def readme_blocks() -> list[tuple[str, int, str]]:
    """``(language, line number of the opening fence, code)`` of every python and bash block, in order."""
    text = README.read_text()
    return [(m.group(1), text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _BLOCK.finditer(text)]


def shell_lines(code: str) -> list[tuple[int, str, list[str]]]:
    """``(offset, raw line, tokens)`` of every command line of a bash block (comments dropped, ``\\`` joined)."""
    out, pending, start = [], "", 0
    for i, line in enumerate(code.splitlines()):
        if not pending:
            start = i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full, pending = pending + line, ""
        tokens = shlex.split(full, comments=True)
        if tokens:
            out.append((start, full, tokens))
    return out


def kind_of(tokens: list[str]) -> str:
    """How the interpreter treats a command: assign, synthaug, make, benchmarks or bash."""
    words = [t for t in tokens if not _ASSIGN.match(t)]
    if not words:
        return "assign"
    head = words[0]
    if head == "synthaug" or (head.endswith("python") and words[1:3] in (["-m", "synthaug"], ["-m", "synthaug.cli"])):
        return "synthaug"
    if head == "torchrun":
        assert words[words.index("-m") + 1] in ("synthaug", "synthaug.cli"), words
        return "synthaug"
    if head == "make":
        return "make"
    if any(w.startswith("benchmarks") for w in words[1:3]):
        return "benchmarks"
    return "bash"


def test_every_block_parses_and_every_shell_line_is_understood():
    blocks = readme_blocks()
    assert sum(lang == "python" for lang, _, _ in blocks) >= 10 and sum(lang == "bash" for lang, _, _ in blocks) >= 8
    for lang, line, code in blocks:
        if lang == "python":
            compile(code, f"README.md:{line}", "exec")
        else:
            for _, raw, tokens in shell_lines(code):
                assert kind_of(tokens) in ("assign", "synthaug", "make", "benchmarks", "bash"), (line, raw)


# ---------------------------------------------------------------------------------------------- running them
class Shell:
    """The interpreter of the README's bash lines (see the module docstring)."""

    def __init__(self, cwd: Path):
        self.cwd, self.env = cwd, {}

    def expand(self, token: str) -> str:
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: self.env.get(m.group(1), m.group(0)), token)

    def run(self, raw: str, tokens: list[str]) -> None:
        kind = kind_of(tokens)
        tokens = [self.expand(t) for t in tokens]
        words = [t for t in tokens if not _ASSIGN.match(t)]
        if kind == "assign":
            self.env.update(t.split("=", 1) for t in tokens)
        elif kind == "synthaug":
            self.synthaug(words)
        elif kind == "make":
            done = subprocess.run(["make", "-n", "-C", str(REPO), *words[1:]], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        elif kind == "benchmarks":
            self.check_benchmark(words)
        else:
            done = subprocess.run(["bash", "-c", raw], cwd=self.cwd, env={**os.environ, **self.env},
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr

    @staticmethod
    def synthaug(words: list[str]) -> None:
        from synthaug.cli import main

        argv = words[words.index("-m") + 2:] if "-m" in words else words[1:]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(argv)
        assert rc == 0, f"synthaug {' '.join(argv)} returned {rc}: {err.getvalue()[-3000:]}"

    @staticmethod
    def check_benchmark(words: list[str]) -> None:
        """Import the module (or script) and read its --help: every option the line passes must be listed."""
        if "-m" in words:
            target, rest = words[words.index("-m") + 1], words[words.index("-m") + 2:]
            run = lambda: runpy.run_module(target, run_name="__main__", alter_sys=True)  # noqa: E731
        else:
            target, rest = words[1], words[2:]
            run = lambda: runpy.run_path(str(REPO / target), run_name="__main__")  # noqa: E731
        out, argv, path = io.StringIO(), sys.argv, list(sys.path)
        sys.argv = [target, "--help"]
        sys.path.insert(0, str(REPO))
        try:
            with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop, warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # runpy: the module was imported before, as a module
                run()
        finally:
            sys.argv, sys.path[:] = argv, path
        assert stop.value.code in (0, None), f"{target} --help exited with {stop.value.code}"
        missing = [o for o in rest if o.startswith("--") and o.split("=")[0] not in out.getvalue()]
        assert not missing, f"{target}: options {missing} are not in its --help"


@pytest.mark.slow
def test_every_readme_block_runs_as_written(tmp_path, monkeypatch, shared_data):
    project = tmp_path / "project"
    project.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data, target_is_directory=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("SYNTHAUG_QUICK", QUICK_STEPS)
    monkeypatch.setenv("SYNTHAUG_DATA", str(shared_data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    for lang, line, code in readme_blocks():
        try:
            if lang == "python":
                exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "readme_block"})
            else:
                shell = Shell(project)
                for offset, raw, tokens in shell_lines(code):
                    line_no = line + 1 + offset
                    try:
                        shell.run(raw, tokens)
                    except AssertionError as e:
                        raise AssertionError(f"README.md:{line_no}: {raw.strip()}\n{e}") from None
        except Exception as e:
            raise AssertionError(f"the {lang} block at README.md:{line} failed: {type(e).__name__}: {e}") from e
    assert (project / "runs" / "breast" / "model" / "config.json").is_file()  # the first block really trained
    assert len(list((project / "fog_256").glob("*.png"))) == 4  # and a late one upscaled the translated frames
