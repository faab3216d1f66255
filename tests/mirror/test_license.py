from pathlib import Path

import pytest

from mirror.errors import LicenseError
from mirror.fixture import fixture_text
from mirror.license import check_apache_2

APACHE = fixture_text("apache-2.0.txt")

MIT_MENTIONING_APACHE = """MIT License

Copyright (c) 2020 Somebody

Apache License Version 2.0, January 2004 http://www.apache.org/licenses/ is not this licence.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, subject to the following conditions:
parts of it were once under the Apache License, Version 2.0.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "LICENSE"
    path.write_text(text, encoding="utf-8")
    return path


def test_apache_text_passes(tmp_path):
    check_apache_2(write(tmp_path, APACHE))


def test_rewrapped_apache_text_passes(tmp_path):
    rewrapped = "\n".join(" ".join(APACHE.split()[i : i + 7]) for i in range(0, len(APACHE.split()), 7))
    check_apache_2(write(tmp_path, rewrapped))


def test_apache_text_with_filled_in_appendix_passes(tmp_path):
    filled = APACHE.replace("[yyyy] [name of copyright owner]", "2020 Xuebin Qin")
    check_apache_2(write(tmp_path, filled))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (MIT_MENTIONING_APACHE, "title block"),
        ("MIT License\n\n" + APACHE, "title block"),
        (APACHE.replace("5. Submission of Contributions.", "5. Whatever."), "Submission of Contributions"),
        (APACHE.split("END OF TERMS AND CONDITIONS")[0], "END OF TERMS"),
        (APACHE.replace("Version 2.0, January 2004", "Version 1.1, 2000"), "title block"),
        ("", "title block"),
    ],
    ids=["mit-mentioning-apache", "mit-then-apache", "edited-section", "truncated", "apache-1.1", "empty"],
)
def test_other_texts_are_refused(tmp_path, text, why):
    path = write(tmp_path, text)
    with pytest.raises(LicenseError) as caught:
        check_apache_2(path)
    message = str(caught.value)
    assert str(path) in message and why in message and "\n" not in message


def test_missing_licence_is_an_error(tmp_path):
    with pytest.raises(LicenseError, match="no LICENSE file"):
        check_apache_2(tmp_path / "LICENSE")
