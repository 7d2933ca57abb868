"""docs/plugins.md documents every hook exactly as the code declares it, and every public name.

Generic on purpose: a hook added to ``policyd/plugin/hookspecs.py`` fails here until
its section (signature, when, parameters, returns, added, example) is written.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import policyd.api
from policyd.plugin import PROJECT, hookspecs

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
LABELS = ("**When:**", "**Parameters:**", "**Returns:**", "**Added:**", "**Example**")


def hooks() -> dict[str, object]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if callable(fn) and getattr(fn, f"{PROJECT}_spec", None) is not None
    }


def signature(fn: object) -> str:
    """``def name(param: Annotation, ...) -> Return`` as written in the source (annotations are strings)."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {fn.__name__}({params}) -> {sig.return_annotation}"  # type: ignore[attr-defined]


def section(text: str, hook: str) -> str:
    """The text from the hook's ``### `name``` heading to the next heading of that level or above."""
    found = re.search(rf"^### `{hook}`\n(.*?)(?=^#{{1,3}} )", text + "\n## end\n", re.S | re.M)
    assert found, f"docs/plugins.md has no '### `{hook}`' section"
    return found.group(1)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_the_hookspecs_module_has_hooks():
    assert len(hooks()) >= 6


@pytest.mark.parametrize("hook", sorted(hooks()))
def test_every_hook_is_documented_with_its_exact_signature(doc, hook):
    fn = hooks()[hook]
    body = section(doc, hook)
    blocks = python_blocks(body)
    assert blocks, f"{hook}: no python block"
    assert blocks[0].strip() == signature(fn), f"{hook}: documented signature differs from the code"
    for label in LABELS:
        assert label in body, f"{hook}: section lacks {label}"


@pytest.mark.parametrize("hook", sorted(hooks()))
def test_every_hook_says_when_it_was_added_as_its_docstring_does(doc, hook):
    declared = re.search(r"\.\. versionadded:: (\S+)", inspect.getdoc(hooks()[hook]) or "")
    assert declared, f"{hook}: the hookspec's docstring needs '.. versionadded:: X'"
    assert f"**Added:** policyd {declared.group(1)} " in section(doc, hook)


@pytest.mark.parametrize("hook", sorted(hooks()))
def test_every_hook_has_a_complete_example_that_implements_it(doc, hook):
    examples = python_blocks(section(doc, hook))[1:]
    assert any("@hookimpl" in code and f"def {hook}(" in code for code in examples), f"{hook}: no example"
    for code in examples:
        tree = ast.parse(code)
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "policyd.api"
            for alias in node.names
        }
        assert imported <= set(policyd.api.__all__), (
            f"{hook}: example imports non-public {imported - set(policyd.api.__all__)}"
        )


def test_the_doc_documents_no_hook_that_does_not_exist(doc):
    documented = set(re.findall(r"^### `(policyd_\w+)`", doc, re.M))
    assert documented == set(hooks())


def test_every_python_block_in_the_doc_is_valid_python(doc):
    for code in python_blocks(doc):
        if code.lstrip().startswith(("def policyd_", "async def __call__", "async def complete")):
            continue  # signatures, not programs
        ast.parse(code)


def test_every_public_name_is_documented(doc):
    missing = [name for name in policyd.api.__all__ if f"`{name}`" not in doc]
    assert not missing, f"docs/plugins.md does not mention {missing}"
