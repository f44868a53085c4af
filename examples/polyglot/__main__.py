"""A JavaScript atom inside a Python pipeline: count the words of a text.

    python -m examples.polyglot [--file PATH] [--top N] [--tokenizers N] [--min-length N]

The pipeline's ends are Python: this program reads the lines and a native
``WordCounter`` atom counts words. In between, ``Tokenizer`` atoms written in
JavaScript (``tokenizer.js``), built into a WebAssembly component with
``radon build --js`` (here through its Python API, on first run) and run
sandboxed, split each line into words and ask the counter to add them: a
Python atom's Ref passed to a JavaScript constructor, asked from JavaScript.
See docs/polyglot.md.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import trio

from radon_actors import Atom, Ref, handler, open_system
from radon_actors.sandbox._jsbuild import build_js

HERE = Path(__file__).resolve().parent


class WordCounter(Atom):
    """Counts the words the tokenizers add (a native Python atom)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    @handler
    def add(self, words: list[str]) -> int:
        self.counts.update(words)
        return len(words)

    @handler
    def top(self, n: int) -> list[tuple[str, int]]:
        # Most frequent first; ties in alphabetical order, so the output is stable.
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[:n]

    @handler
    def total(self) -> int:
        return sum(self.counts.values())


async def run(lines: list[str], top: int, tokenizers: int, min_length: int) -> None:
    built = await trio.to_thread.run_sync(
        lambda: build_js(HERE / "tokenizer.js", progress=lambda m: print(f"  {m}", flush=True))
    )
    if not built.wasm.with_name("component.cwasm").exists():
        print("  compiling the component for this machine (about 15 s, cached after)", flush=True)
    async with open_system() as system:
        counter: Ref[WordCounter] = await system.spawn(WordCounter)
        pool = [
            await system.spawn_component(built.wasm, "Tokenizer", counter, min_length)
            for _ in range(tokenizers)
        ]
        started = time.perf_counter()
        send, receive = trio.open_memory_channel[str](len(pool) * 4)

        async def feed() -> None:
            async with send:
                for line in lines:
                    await send.send(line)

        async def work(tokenizer: Ref[Atom], receive: trio.MemoryReceiveChannel[str]) -> None:
            async with receive:
                async for line in receive:
                    await tokenizer.ask("line", line)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            for tokenizer in pool:
                nursery.start_soon(work, tokenizer, receive.clone())
            await receive.aclose()
        elapsed = time.perf_counter() - started
        words = await counter.ask(WordCounter.total)
        print(f"{len(lines)} lines, {words} words in {elapsed:.2f} s, {tokenizers} tokenizers")
        for i, tokenizer in enumerate(pool):
            stats = await tokenizer.ask("stats")
            print(f"  tokenizer {i}: {stats['lines']} lines, {stats['words']} words")
        for word, count in await counter.ask(WordCounter.top, top):
            print(f"{count:6d}  {word}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.polyglot", description=__doc__)
    parser.add_argument(
        "--file", type=Path, default=HERE / "sample.txt", help="text to count (default: a sample)"
    )
    parser.add_argument("--top", type=int, default=10, help="how many words to list (10)")
    parser.add_argument(
        "--tokenizers", type=int, default=2, help="JavaScript tokenizer atoms sharing the lines (2)"
    )
    parser.add_argument(
        "--min-length", type=int, default=3, help="drop words shorter than this (3)"
    )
    args = parser.parse_args(argv)
    if args.top < 1 or args.tokenizers < 1 or args.min_length < 1:
        parser.error("--top, --tokenizers and --min-length take a positive number")
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        parser.error(f"cannot read {args.file}: {exc}")
    trio.run(run, lines, args.top, args.tokenizers, args.min_length)
    return 0


if __name__ == "__main__":
    sys.exit(main())
