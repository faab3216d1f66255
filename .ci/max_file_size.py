"""pre-commit hook: refuse files larger than --max-kib (model weights and other binaries).

Written here rather than taken from pre-commit-hooks because that would be a hook repository
fetched from GitHub at install time; this one runs from the checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-kib", type=int, default=1024)
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    too_big = [(f, f.stat().st_size) for f in args.files if f.is_file() and f.stat().st_size > args.max_kib * 1024]
    for path, size in too_big:
        print(
            f"{path}: {size // 1024} KiB > {args.max_kib} KiB; large files (model weights, ONNX) are release "
            "assets, not commits"
        )
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
