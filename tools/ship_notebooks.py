"""Copy the experiment and report notebooks into the package, so `gptnb run` and `gptnb report` need no checkout.

nbs/train.ipynb and nbs/report.ipynb are the sources; gptnb/notebooks/ holds byte-identical copies shipped as package data
(pyproject.toml). tools/test.sh runs this and fails when the committed copy differs."""
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["train.ipynb", "report.ipynb"]   # notebooks of nbs/ that the installed package needs


def main() -> int:
    dest = ROOT / "gptnb" / "notebooks"
    dest.mkdir(exist_ok=True)
    for name in SHIPPED:
        src, dst = ROOT / "nbs" / name, dest / name
        if dst.is_file() and dst.read_bytes() == src.read_bytes(): continue
        shutil.copyfile(src, dst)
        print(f"copied {src.relative_to(ROOT)} to {dst.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
