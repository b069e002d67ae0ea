"""The README and docs/ cannot drift: links resolve, the README stays short, the generated results block has its
markers, and the `/ask` example shows exactly the fields of the service's response schema.

Fast: reads Markdown and imports the pydantic models; loads no model and builds no index.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from service.schemas import AskResponse

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 260
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# Written by a generator (`python -m eval.results_doc`), not by hand: a link to one may be checked in before the
# first run writes it. Once the file exists its links and anchors are checked like any other page's.
GENERATED = {DOCS / "reader.md"}

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose(text: str) -> str:
    """The text without code: fenced blocks and inline code hold examples, not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    targets = LINK.findall(prose(path.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            if dest not in GENERATED:
                broken.append(f"{target}: no such file")
            continue
        if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading with anchor #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_docs_folder_holds_the_moved_pages() -> None:
    for name in ("api.md", "configuration.md", "design.md", "evaluation.md", "performance.md", "reliability.md"):
        assert (DOCS / name).is_file(), name
    for old in ("PERFORMANCE.md", "RELIABILITY.md", "service/API.md"):
        assert not (ROOT / old).exists(), f"{old} moved to docs/; keep one copy"


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n < MAX_README_LINES, f"README.md has {n} lines; details belong in docs/"


def test_results_markers_once_each_in_order() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "the generated results block needs both markers once"
    assert text.index(BEGIN) < text.index(END)
    for marker in (BEGIN, END):
        assert any(line.strip() == marker for line in text.splitlines()), f"{marker} must stand on its own line"


# --- the /ask example ---------------------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"(?<=[:\[,\s])\.\.\.(?=\s*[,\]}])")


def ask_example() -> dict[str, Any]:
    """The README's one JSON example: the `/ask` response, `...` standing for values that depend on the model."""
    blocks = re.findall(r"^```json[ \t]*\n(.*?)^```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, f"expected one ```json block (the /ask response) in README.md, found {len(blocks)}"
    return json.loads(PLACEHOLDER.sub("null", blocks[0]))


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds, directly, in a list or as an optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = nested_model(arg)
            if found is not None:
                return found
    return None


def schema_problems(value: Any, model: type[BaseModel], where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object for {model.__name__}, got {type(value).__name__}"]
    fields = model.model_fields
    problems = [f"{where}.{k}: not a field of {model.__name__}" for k in value if k not in fields]
    problems += [
        f"{where}.{k}: field of {model.__name__} missing from the example"
        for k, f in fields.items()
        if k not in value and f.is_required()  # optional ones (a sharded index's `partial`) appear when they apply
    ]
    for key, shown in value.items():
        if key not in fields or shown is None:  # None: a `...` placeholder
            continue
        annotation = fields[key].annotation
        sub = nested_model(annotation)
        if sub is None:
            try:
                TypeAdapter(annotation).validate_python(shown, strict=True)
            except ValueError as err:
                problems.append(f"{where}.{key}: {shown!r} is not a valid {annotation}: {err}")
        elif isinstance(shown, list):
            for i, item in enumerate(shown):
                problems += schema_problems(item, sub, f"{where}.{key}[{i}]")
        else:
            problems += schema_problems(shown, sub, f"{where}.{key}")
    return problems


def test_ask_example_matches_response_schema() -> None:
    example = ask_example()
    problems = schema_problems(example, AskResponse, "response")
    assert not problems, "README's /ask example and service/schemas.py disagree:\n" + "\n".join(problems)
    assert example["answers"] and example["passages"], "the example shows one answer and one passage"


def test_schema_walk_catches_drift() -> None:
    """The check itself: an unknown field, a missing one and a wrongly typed value are each reported."""
    example = ask_example()
    example["answers"][0]["passage"]["title"] = "..."
    del example["passages"][0]["rank"]
    example["no_answer"] = "no"
    problems = "\n".join(schema_problems(example, AskResponse, "response"))
    assert "response.answers[0].passage.title: not a field" in problems
    assert "response.passages[0].rank: field of PassageOut missing" in problems
    assert "response.no_answer:" in problems
