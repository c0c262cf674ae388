"""Fail when a notebook in nbs/ and its Markdown twin in nbs_md/ disagree (jupytext pairing, see jupytext.toml).

Compares cell types, sources and tags — what a reviewer reads — so outputs and metadata never cause noise."""
import sys
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]


def cells(path):
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def main() -> int:
    notebooks = {p.stem for p in (ROOT / "nbs").glob("*.ipynb")}
    twins = {p.stem for p in (ROOT / "nbs_md").glob("*.md")}
    problems = [f"nbs/{n}.ipynb has no twin nbs_md/{n}.md" for n in sorted(notebooks - twins)]
    problems += [f"nbs_md/{n}.md has no notebook nbs/{n}.ipynb" for n in sorted(twins - notebooks)]
    for name in sorted(notebooks & twins):
        a, b = cells(ROOT / "nbs" / f"{name}.ipynb"), cells(ROOT / "nbs_md" / f"{name}.md")
        if a != b:
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            problems.append(f"nbs/{name}.ipynb and nbs_md/{name}.md differ (first at cell {first}); "
                            f"run `jupytext --sync` on the one you edited")
    for p in problems: print(p, file=sys.stderr)
    print(f"{len(notebooks & twins)} notebook pairs checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
