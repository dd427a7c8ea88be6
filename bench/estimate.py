"""The prompt estimate against real tokenizers: estimate / real count per sample of bench/token_corpus.json.

Tokenizers, all offline: tiktoken's cl100k_base and o200k_base, read from the encoding files the litellm
package ships (tiktoken finds them by its cache directory, so nothing is downloaded), and the Claude tokenizer
JSON shipped in the same package (an older Claude tokenizer, the closest public approximation) through Hugging
Face `tokenizers`. None of it is a dependency of the gateway: set it up once, in a virtualenv of its own,

    python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install -e '.[bench]'
    pip download litellm --no-deps -d /tmp/litellm
    unzip -o -q /tmp/litellm/litellm-*.whl 'litellm/litellm_core_utils/tokenizers/*' -d /tmp/litellm
    /tmp/bench-venv/bin/python bench/estimate.py --tokenizers /tmp/litellm/litellm/litellm_core_utils/tokenizers

`--record` writes the real counts into the corpus (what tests/unit/domain/test_tokens.py pins the estimate above);
`--stress` adds generated texts no user writes (random letters, random ideographs) to show where the bound ends.
`--timing` measures the estimator's import time and its cost per request, and its cost per character by kind of
text, the adversarial kinds included (needs no tokenizer).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "token_corpus.json"
sys.path.insert(0, str(ROOT / "layers" / "gateway"))

TOKENIZERS = ("cl100k_base", "o200k_base", "claude")


def tokenizers(directory: Path) -> dict[str, Callable[[str], int]]:
    os.environ["TIKTOKEN_CACHE_DIR"] = str(directory)
    import tiktoken
    from tokenizers import Tokenizer

    cl100k, o200k = tiktoken.get_encoding("cl100k_base"), tiktoken.get_encoding("o200k_base")
    claude = Tokenizer.from_file(str(directory / "anthropic_tokenizer.json"))
    return {
        "cl100k_base": lambda text: len(cl100k.encode(text, disallowed_special=())),
        "o200k_base": lambda text: len(o200k.encode(text, disallowed_special=())),
        "claude": lambda text: len(claude.encode(text).ids),
    }


def stress_texts() -> list[dict[str, str]]:
    rng = random.Random(16)
    letters = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(80))
    return [
        {"kind": "random lowercase words", "name": "letters", "text": letters},
        {
            "kind": "random CJK ideographs",
            "name": "ideographs",
            "text": "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(200)),
        },
        {
            "kind": "random Hangul syllables",
            "name": "hangul",
            "text": "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(200)),
        },
        {"kind": "random printable ASCII", "name": "printable", "text": "".join(rng.choices(string.printable, k=400))},
    ]


def ratio_table(samples: list[dict[str, object]]) -> str:
    from llm_gateway.domain.tokens import estimate_text_tokens

    kinds: dict[str, list[dict[str, object]]] = {}
    for sample in samples:
        kinds.setdefault(str(sample["kind"]), []).append(sample)
    lines = [
        "| text kind | samples | " + " | ".join(f"{name} min / median / max" for name in TOKENIZERS) + " |",
        "|---|--:|" + "--:|" * len(TOKENIZERS),
    ]
    everything: list[float] = []
    for kind, rows in kinds.items():
        cells = []
        for name in TOKENIZERS:
            ratios = [estimate_text_tokens(str(r["text"])) / r["counts"][name] for r in rows]  # type: ignore[index]
            everything += ratios
            cells.append(f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f}")
        lines.append(f"| {kind} | {len(rows)} | " + " | ".join(cells) + " |")
    prose = [
        estimate_text_tokens(str(r["text"])) / count
        for r in samples
        if str(r["kind"]).startswith("prose")
        for count in r["counts"].values()  # type: ignore[attr-defined]
    ]
    if prose:
        lines.append(f"\nprose (English and other Latin-script) median ratio: {statistics.median(prose):.2f}")
    lines.append(f"lowest ratio over every sample and tokenizer: {min(everything):.2f}")
    return "\n".join(lines)


# Texts of one kind each, about a megabyte: what users write, and the shapes that cost the estimate most per character
# (a piece every character or two). A 4.8 MB prompt of "0 0 0 ..." took 4.6 s of the function's CPU before this
# estimate priced each distinct piece once.
def kinds_of_text() -> dict[str, str]:
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    size = 1_000_000

    def filled(text: str) -> str:
        return (text * (size // len(text) + 1))[:size]

    def sample(kind: str) -> str:
        return filled("\n".join(s["text"] for s in corpus if s["kind"] == kind))

    rng = random.Random(19)
    return {
        "English prose": sample("prose-en"),
        "code": sample("code"),
        "JSON": sample("json"),
        "Chinese": sample("chinese"),
        "emoji": sample("emoji"),
        "base64": filled("".join(rng.choices(string.ascii_letters + string.digits + "+/", k=size))),
        'digits "0 0 0"': filled("0 "),
        'punctuation ". . ."': filled(". "),
        'one-letter words "a b c"': filled("a "),
        'letters and symbols "a+.+"': filled("a+.+"),
        "random printable ASCII": "".join(rng.choices(string.printable, k=size)),
    }


def per_kind_timing() -> str:
    """The estimate and its floor (`text_tokens_floor`) in microseconds per character, by kind of text (median
    of 5 calls on about a megabyte each)."""
    from llm_gateway.domain.tokens import estimate_text_tokens, text_tokens_floor

    lines = [
        "| text (1 MB) | estimate µs/char | floor µs/char | tokens/char |",
        "|---|--:|--:|--:|",
    ]
    for kind, text in kinds_of_text().items():
        costs = {}
        for name, function in (("estimate", estimate_text_tokens), ("floor", text_tokens_floor)):
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                function(text)
                runs.append(time.perf_counter() - started)
            costs[name] = statistics.median(runs) / len(text) * 1e6
        ratio = estimate_text_tokens(text) / len(text)
        lines.append(f"| {kind} | {costs['estimate']:.3f} | {costs['floor']:.4f} | {ratio:.2f} |")
    return "\n".join(lines)


def timing() -> str:
    """Import time of the estimator (fresh processes, median of 9) and its cost per call on corpus-sized texts."""
    statement = "import llm_gateway.domain.tokens"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "gateway"), "PYTHONDONTWRITEBYTECODE": "1"}
    imports = []
    for _ in range(9):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", statement], env=env, capture_output=True, text=True, check=True
        ).stderr
        line = next(line for line in out.splitlines() if line.rstrip().endswith("llm_gateway.domain.tokens"))
        imports.append(int(line.split("|")[1]) / 1000)
    first_non_ascii = []
    probe = (
        "import time; from llm_gateway.domain.tokens import estimate_text_tokens as e; e('ascii warm-up'); "
        "t = time.perf_counter(); e('\u4e2d\u6587'); print(time.perf_counter() - t)"
    )
    for _ in range(9):
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        first_non_ascii.append(float(out.stdout) * 1000)
    from llm_gateway.domain.tokens import estimate_text_tokens

    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    text = "\n".join(sample["text"] for sample in corpus)
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        estimate_text_tokens(text)
    per_call = (time.perf_counter() - started) / runs
    prose = next(s["text"] for s in corpus if s["kind"] == "prose-en") * 290  # about 200 KB of English
    started = time.perf_counter()
    estimate_text_tokens(prose)
    big = time.perf_counter() - started
    return (
        per_kind_timing() + "\n"
        f"import (cumulative, -X importtime, median of 9 fresh processes): {statistics.median(imports):.2f} ms\n"
        f"first non-ASCII text in a process (compiles the script ranges): {statistics.median(first_non_ascii):.2f} ms\n"
        f"whole corpus ({len(text):,} characters) per call: {per_call * 1000:.2f} ms "
        f"({per_call / len(text) * 1e9:.0f} ns per character)\n"
        f"{len(prose):,} characters of English prose: {big * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", type=Path, help="litellm's litellm/litellm_core_utils/tokenizers folder")
    parser.add_argument("--record", action="store_true", help="write the real counts into the corpus")
    parser.add_argument("--stress", action="store_true", help="also show generated worst cases")
    parser.add_argument("--timing", action="store_true", help="import time and per-call cost only")
    args = parser.parse_args()
    if args.timing:
        print(timing())
        return
    if args.tokenizers is None:
        parser.error("--tokenizers is required (see the setup above)")
    count = tokenizers(args.tokenizers)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    for sample in corpus:
        real = {name: count[name](sample["text"]) for name in TOKENIZERS}
        if args.record:
            sample["counts"] = real
        elif sample.get("counts") != real:
            print(f"warning: recorded counts of {sample['name']} differ from these tokenizers': {real}")
            sample["counts"] = real
    if args.record:
        CORPUS.write_text(json.dumps(corpus, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(ratio_table(corpus))
    if args.stress:
        stress = stress_texts()
        for sample in stress:
            sample["counts"] = {name: count[name](sample["text"]) for name in TOKENIZERS}  # type: ignore[assignment]
        print("\ngenerated worst cases (not in the corpus; nobody writes these):")
        print(ratio_table(stress))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
