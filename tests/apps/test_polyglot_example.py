"""examples/polyglot through its command line: a JavaScript tokenizer atom
between Python atoms; every documented option changes what it prints."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.polyglot", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


TEXT = """The quick brown fox jumps over the lazy dog.
A quick brown dog! The fox, the fox and the dog.
Über café déjà-vu: l'été, quick QUICK quick.
"""


def test_the_pipeline_counts_words_with_javascript_tokenizers(tmp_path: Path) -> None:
    text = tmp_path / "text.txt"
    text.write_text(TEXT, encoding="utf-8")
    done = run("--file", str(text), "--top", "3", "--tokenizers", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = next(line for line in lines if " lines, " in line and "tokenizers" in line)
    assert summary.startswith("3 lines, 20 words") and summary.endswith("1 tokenizers")
    assert lines[-3:] == ["     5  quick", "     3  dog", "     3  fox"]
    assert "  tokenizer 0: 3 lines, 20 words" in lines

    longer = run("--file", str(text), "--top", "2", "--tokenizers", "1", "--min-length", "5")
    assert longer.returncode == 0, longer.stderr
    assert longer.stdout.splitlines()[-2:] == ["     5  quick", "     2  brown"]

    shared = run("--file", str(text), "--top", "1", "--tokenizers", "3")
    assert shared.returncode == 0, shared.stderr
    per = [int(m) for m in re.findall(r"tokenizer \d: (\d+) lines", shared.stdout)]
    assert len(per) == 3 and sum(per) == 3  # the lines shared among three JS atoms
    assert shared.stdout.splitlines()[-1] == "     5  quick"


def test_bad_options_are_refused() -> None:
    done = run("--tokenizers", "0")
    assert done.returncode == 2 and "positive number" in done.stderr
    missing = run("--file", "/nonexistent/text.txt")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
