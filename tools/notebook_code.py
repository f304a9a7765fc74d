"""The notebooks' code cells as Python files, and the blocks of lines they repeat.

    python tools/notebook_code.py [--out DIR] [--min-lines 5]

Writes the code cells of every notebooks/*.ipynb to DIR/<notebook>.py, each cell after a line
`# %% cell <index> (<id>)` (DIR defaults to a new temporary folder outside the checkout, so that
`duplicates --repo DIR`, which reads no .ipynb and skips git-ignored folders, reads them too),
then prints every run of at least --min-lines lines that stands in two places: the same lines
("same"), or lines alike but for their names, numbers and strings ("shape"). Blank lines,
comments and imports are passed over. It only reports: the exit status is 0.
"""
from __future__ import annotations

import argparse
import io
import json
import keyword
import tempfile
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export(notebooks, out: Path) -> list[Path]:
    """One .py file per notebook in `out`, holding its code cells; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for nb in notebooks:
        cells = json.loads(Path(nb).read_text())["cells"]
        parts = [
            f"# %% cell {i} ({c.get('id', '')})\n{''.join(c['source']).rstrip()}\n"
            for i, c in enumerate(cells) if c["cell_type"] == "code"
        ]
        files.append(out / f"{Path(nb).stem}.py")
        files[-1].write_text("\n".join(parts))
    return files


def _shape(tokens) -> str:
    """A line's tokens with names, numbers and strings replaced by placeholders."""
    kinds = {tokenize.NUMBER: "0", tokenize.STRING: "'s'"}
    return " ".join("n" if t.type == tokenize.NAME and not keyword.iskeyword(t.string) else kinds.
                    get(t.type, t.string) for t in tokens)


def significant_lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, text without spaces, shape) of every line that counts."""
    by_line: dict[int, list] = {}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                            tokenize.DEDENT, tokenize.ENDMARKER):
            by_line.setdefault(tok.start[0], []).append(tok)
    lines = text.splitlines()
    out = []
    for number, tokens in sorted(by_line.items()):
        if tokens[0].string in ("import", "from") or all(t.string in "()[]{}," for t in tokens):
            continue
        out.append((number, "".join(lines[number - 1].split()), _shape(tokens)))
    return out


def repeats(files, min_lines: int = 5) -> list[str]:
    """'kind a.py:l1-l2 ~ b.py:m1-m2' for every maximal run of at least min_lines significant
    lines that two places share (a place is not paired with itself or with an overlap)."""
    seqs = {f.name: significant_lines(f.read_text()) for f in files}
    found = []
    for kind, field in (("same", 1), ("shape", 2)):
        starts: dict[tuple, list] = {}
        for name, seq in seqs.items():
            for i in range(len(seq) - min_lines + 1):
                key = tuple(line[field] for line in seq[i:i + min_lines])
                starts.setdefault(key, []).append((name, i))
        pairs = set()
        for places in starts.values():
            pairs |= {(a, b)
                      for a in places
                      for b in places if a < b and not (a[0] == b[0] and b[1] - a[1] < min_lines)}
        for (fa, i), (fb, j) in sorted(pairs):
            if ((fa, i - 1), (fb, j - 1)) in pairs:
                continue  # inside a longer run, reported from its start
            n = min_lines
            while ((fa, i + n - min_lines + 1), (fb, j + n - min_lines + 1)) in pairs:
                n += 1
            a, b = seqs[fa], seqs[fb]
            run = f"{fa}:{a[i][0]}-{a[i + n - 1][0]} ~ {fb}:{b[j][0]}-{b[j + n - 1][0]}"
            if kind == "same" or run not in {r.split(" ", 1)[1] for r in found}:
                found.append(f"{kind} {run}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for the .py files (default: a new temporary one)")
    parser.add_argument("--min-lines", type=int, default=5)
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="notebook_code-"))
    files = export(sorted((ROOT / "notebooks").glob("*.ipynb")), out)
    found = repeats(files, args.min_lines)
    print(f"{len(files)} notebooks exported to {out}; {len(found)} repeated runs of "
          f"{args.min_lines}+ lines" + (":" if found else ""))
    print("\n".join(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
