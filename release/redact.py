"""Text that reaches a terminal or a log: secrets removed, control characters escaped, one line.

Two jobs, both about output we do not fully control:

* Secrets (the GitHub token, the Sigstore identity token) must never be printed or logged,
  ``--debug`` included.  Invoke's parser logs the whole command line and every task's
  arguments at debug level, so a token given as ``--identity-token`` would be shown several
  times.  ``install_log_redaction`` makes every log record pass a ``RedactingFilter``.
* Text that comes from a server (an error ``message``) may hold newlines and ANSI escapes;
  ``printable`` shows it on one line with control characters escaped and its length capped.

Stdlib only, so the task layer can install it before anything else is imported.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from types import TracebackType

REDACTED = "[REDACTED]"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENVIRONMENT = ("GITHUB_TOKEN", "GH_TOKEN", "SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
# Options whose value is a secret.
SECRET_OPTIONS = ("--identity-token",)
# Shapes of secrets we may meet without knowing their value: JSON Web Tokens (OIDC identity
# tokens) and GitHub's token formats (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_).
_SECRET_SHAPES = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"
    r"|\bgithub_pat_[A-Za-z0-9_]{20,}"
)
# Shorter values are not treated as secrets: redacting "1" would mangle every number.
_MIN_SECRET_LENGTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class Redactor:
    """Replaces known secret values, and anything shaped like a token, with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret.strip()) >= _MIN_SECRET_LENGTH:
                self._secrets.add(secret.strip())

    def __call__(self, text: str) -> str:
        # Longest first, so a secret containing another is replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return _SECRET_SHAPES.sub(REDACTED, text)


def secrets_in(argv: Iterable[str], environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The secret values a process was given: in SECRET_ENVIRONMENT and after SECRET_OPTIONS."""
    found = [environ.get(name, "") for name in SECRET_ENVIRONMENT]
    words = list(argv)
    for index, word in enumerate(words):
        for option in SECRET_OPTIONS:
            if word == option and index + 1 < len(words):
                found.append(words[index + 1])
            elif word.startswith(option + "="):
                found.append(word.split("=", 1)[1])
    return [value for value in found if value]


REDACT = Redactor(secrets_in(sys.argv, os.environ))


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in) through a ``Redactor``."""

    def __init__(self, redactor: Redactor = REDACT) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(redactor: Redactor = REDACT) -> None:
    """Make every log record, from any logger, pass a ``RedactingFilter``.

    The filter goes on the root logger and, because filters on a logger do not see records
    that propagate up from its children (Invoke logs to ``invoke.*``), also into the log
    record factory, which every record passes when it is made.  Idempotent.
    """
    root = logging.getLogger()
    if any(isinstance(f, RedactingFilter) for f in root.filters):
        return
    check = RedactingFilter(redactor)
    root.addFilter(check)
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        check.filter(record)
        return record

    logging.setLogRecordFactory(redacted_record)

    # A traceback (shown under --debug) prints an exception's text and never passes logging.
    def redacted_traceback(kind: type[BaseException], value: BaseException, trace: TracebackType | None) -> None:
        sys.stderr.write(redactor("".join(traceback.format_exception(kind, value, trace))))

    sys.excepthook = redacted_traceback


def printable(text: object, limit: int = 240) -> str:
    """``text`` on one line: secrets redacted, control characters escaped, at most ``limit`` characters."""
    escaped = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), REDACT(str(text)))
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"
