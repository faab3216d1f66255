"""The docs stay true: every command they show parses against the real tasks, and the
manifest guide explains every field of the schema."""

import json
import re
import shlex

import pytest

from tasks import namespace
from tests.helpers import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CORE_FLAGS = {"--dry", "--debug", "--echo", "--hide", "--warn-only", "--list", "--help"}


def shell_blocks(path):
    text = path.read_text(encoding="utf-8")
    for block in re.findall(r"```(?:bash|console|sh)\n(.*?)```", text, flags=re.S):
        yield from block.replace("\\\n", " ").splitlines()


def our_commands():
    for path in DOCS:
        for line in shell_blocks(path):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token in ("&&", "||", ";", "|", "&"):
                    if words and words[0] in ("invoke", "u2netp-mirror"):
                        yield path.relative_to(ROOT).as_posix(), words
                    words = []
                else:
                    words.append(token)


COMMANDS = list(our_commands())


def test_docs_show_commands():
    assert len(COMMANDS) >= 10
    for task in ("demo", "verify", "release", "attach", "export", "fetch-upstream"):
        assert any(task in words for _, words in COMMANDS), task


@pytest.mark.parametrize(("doc", "words"), COMMANDS, ids=[" ".join(w) for _, w in COMMANDS])
def test_documented_command_matches_the_tasks(doc, words):
    if words[0] == "u2netp-mirror":  # the operator's console script: its own argparse parser
        from release.cli import _parser

        try:
            _parser().parse_args(words[1:])
        except SystemExit as exc:
            raise AssertionError(f"{doc}: `{' '.join(words)}` does not parse") from exc
        return
    contexts = {context.name: context for context in namespace.to_contexts()}
    rest = words[1:]
    while rest and rest[0] in CORE_FLAGS:
        rest = rest[1:]
    assert rest, f"{doc}: {words}: no task named"
    task, options = rest[0], rest[1:]
    assert task in contexts, f"{doc}: no task {task!r}"
    known = set(contexts[task].flags)
    for option in options:
        if option.startswith("--"):
            assert option.split("=")[0] in known, f"{doc}: `{' '.join(words)}`: {task} has no {option}"


def schema_fields(node, prefix=""):
    for key, value in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        if "properties" in value:  # a section: its fields are what is explained
            yield from schema_fields(value, path)
            if prefix:
                yield path
            continue
        yield path
        if "properties" in value.get("items", {}):
            yield from schema_fields(value["items"], path + "[]")


def test_manifest_guide_explains_every_field():
    schema = json.loads((ROOT / "mirror" / "schema" / "manifest.schema.json").read_text())
    rows = [line for line in (ROOT / "docs" / "manifest.md").read_text().splitlines() if line.startswith("| `")]
    for field in schema_fields(schema):
        parent, _, leaf = field.rpartition(".")
        # A row may name siblings briefly: "`toolchain.python`, `.torch`" or "`inputs[].role`, `outputs[].role`".
        covered = any(
            f"`{field}`" in row
            or (parent and f"`{parent}." in row and f"`.{leaf}`" in row)
            or (parent and f"`{parent.rsplit('.', 1)[-1]}.{leaf}`" in row)
            for row in rows
        )
        assert covered, field
