"""Recognise the Apache License 2.0 by its text, not by a keyword.

A file passes only if it opens with the licence's title block and carries
every section heading of its terms, in order.  An MIT licence that merely
mentions "Apache" and "Version 2.0" has none of those headings and fails.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import LicenseError

SPDX_ID = "Apache-2.0"

# The title block, which must open the file.
_TITLE = ("Apache License", "Version 2.0, January 2004", "http://www.apache.org/licenses/")

# Every heading of the terms, in the order the licence has them.
_SECTIONS = (
    "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
    "1. Definitions.",
    '"License" shall mean the terms and conditions for use, reproduction, '
    "and distribution as defined by Sections 1 through 9 of this document.",
    "2. Grant of Copyright License.",
    "3. Grant of Patent License.",
    "4. Redistribution.",
    "5. Submission of Contributions.",
    "6. Trademarks.",
    "7. Disclaimer of Warranty.",
    "8. Limitation of Liability.",
    "9. Accepting Warranty or Additional Liability.",
    "END OF TERMS AND CONDITIONS",
)


def _normalise(text: str) -> str:
    # Re-wrapped or re-indented copies of the licence are still the licence.
    return re.sub(r"\s+", " ", text).strip()


def check_apache_2(path: Path, raw: bytes | None = None) -> None:
    """Raise ``LicenseError`` unless ``path`` holds the Apache License 2.0 text.

    Pass ``raw``, the file's bytes, when they have been read already: the audit reads each
    pinned file once and judges the bytes it hashed.
    """
    if raw is None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise LicenseError(f"{path}: no LICENSE file; the upstream must ship the Apache License 2.0") from None
        except OSError as exc:
            raise LicenseError(f"{path}: cannot read the licence ({exc.strerror})") from None
    text = _normalise(raw.decode("utf-8", errors="replace"))
    title = " ".join(_TITLE)
    if not text.startswith(title):
        raise LicenseError(
            f"{path}: not the Apache License 2.0 (the file does not open with its title "
            f"block {title!r}); refusing to redistribute"
        )
    position = len(title)
    for heading in _SECTIONS:
        found = text.find(_normalise(heading), position)
        if found < 0:
            raise LicenseError(
                f"{path}: not the Apache License 2.0 (missing or out of order: {heading[:60]!r}); "
                "refusing to redistribute"
            )
        position = found + len(heading)
