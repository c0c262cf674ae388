"""Copy the experiment notebook into the package, so `gptnb run` works from an installed wheel without a checkout.

nbs/train.ipynb is the source; gptnb/notebooks/train.ipynb is a byte-identical copy shipped as package data
(pyproject.toml). tools/test.sh runs this and fails when the committed copy differs."""
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["train.ipynb"]   # notebooks of nbs/ that the installed package needs


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
