"""Every policy-file snippet in the README and docs/ loads with the real loader; every example config checks.

A fenced ```yaml block is taken as what it looks like:

* a whole policy file (it has ``policies:``, or ``extends:`` the bundled default): loaded as written;
* a list of rules, or one rule / plan (``plan:`` or ``strategy:`` at the top): loaded as the
  rules of a ``default`` policy;
* top-level sections only (``providers:``, ``auth:``, ``cache:``...): loaded next to a one-rule
  ``default`` policy.

Anything else, or a block that is deliberately not valid on its own, must say so on its first
line with ``# fragment: <why>``. Key variables named by ``api_key_env`` get dummy values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from policyd.cli.main import main
from policyd.config import load_text
from policyd.config.schema import FileConfig
from policyd.plugin.specs import Registered

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_CHECKED = {
    # Its snippets configure the example plugins the guide teaches you to write (a `speculative`
    # strategy, an `echo` provider), which only exist once you have written and installed them.
    "plugins.md",
}
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
MARKER = "# fragment:"
CATCH_ALL = {"name": "any", "plan": {"strategy": "single", "params": {"model": "gpt-oss-120b"}}}
EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))


@dataclass(frozen=True)
class Snippet:
    source: str  # file:line, as the loader's errors will name it
    text: str

    def __str__(self) -> str:
        return self.source


def snippets() -> list[Snippet]:
    found = []
    for doc in DOCS:
        if doc.name in NOT_CHECKED:
            continue
        text = doc.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            line = text.count("\n", 0, block.start()) + 2  # the block's first line
            found.append(Snippet(f"{doc.relative_to(ROOT)}:{line}", block.group(1)))
    return found


def as_policy_file(snippet: Snippet) -> str | None:
    """The snippet as a whole policy file; None when it is marked as a fragment."""
    if snippet.text.lstrip().startswith(MARKER):
        return None
    data: Any = yaml.safe_load(snippet.text)
    if isinstance(data, dict) and ("policies" in data or "extends" in data):
        return snippet.text
    if isinstance(data, dict) and ("plan" in data or "strategy" in data):
        data = [data if "plan" in data else {"plan": data}]
    if isinstance(data, list):
        rules = [{"name": f"rule-{i}", **rule} if "name" not in rule else rule for i, rule in enumerate(data)]
        return yaml.safe_dump({"policies": {"default": {"rules": rules}}})
    sections = set(FileConfig.model_fields)
    if isinstance(data, dict) and set(data) <= sections:
        return yaml.safe_dump({**data, "policies": {"default": {"rules": [CATCH_ALL]}}})
    pytest.fail(f"{snippet}: neither a policy file, rules nor top-level sections; mark it '{MARKER} <why>'")


def test_the_docs_have_snippets_to_check():
    found = {s.source.split(":")[0] for s in snippets()}
    assert {"README.md", "docs/strategies.md", "docs/providers.md", "docs/cache.md", "docs/ledger.md"} <= found


@pytest.mark.parametrize("snippet", snippets(), ids=str)
def test_doc_snippet_is_a_valid_policy_file(snippet: Snippet, registered: Registered, monkeypatch):
    text = as_policy_file(snippet)
    if text is None:
        pytest.skip(snippet.text.splitlines()[0])
    for var in re.findall(r"api_key_env:\s*([A-Za-z_][A-Za-z0-9_]*)", snippet.text):
        monkeypatch.setenv(var, "dummy-key-for-the-doc-test")
    load_text(text, registered, snippet.source)  # raises ConfigError naming the key path


def key_variables(path: Path) -> list[str]:
    return re.findall(r"^\s*api_key_env:\s*([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"), re.M)


FLEET_ADDRESSES = {"url_env": "redis://127.0.0.1:6379/0", "dsn_env": "postgresql://policyd@127.0.0.1:5432/policyd"}
"""A fleet file's address variables (``fleet.valkey.url_env``, ``fleet.postgres.dsn_env``) get plausible values."""


def fleet_variables(path: Path) -> dict[str, str]:
    found = re.findall(r"^\s*(url_env|dsn_env):\s*([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8"), re.M)
    return {var: FLEET_ADDRESSES[key] for key, var in found}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_config_passes_policyd_check(path: Path, monkeypatch, capsys):
    for var in key_variables(path):
        monkeypatch.setenv(var, "dummy-key-for-the-doc-test")
    for var, address in fleet_variables(path).items():
        monkeypatch.setenv(var, address)
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    assert f"{path}: OK" in capsys.readouterr().out


@pytest.mark.parametrize("path", [p for p in EXAMPLES if key_variables(p)], ids=lambda p: p.name)
def test_example_without_its_keys_names_every_missing_variable(path: Path, monkeypatch, capsys):
    names = key_variables(path)
    for var in names:
        monkeypatch.delenv(var, raising=False)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Value error" not in err
    for var in names:
        assert f"environment variable {var} is not set or empty" in err
