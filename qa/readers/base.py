"""The reader protocol (passages in, candidate answers as verbatim document spans out) and the registry of
readers.

Adding a reader is one module with a `from_settings(settings, embedder, reader_of)` factory and one entry in
`READERS`: `ReaderKind` (the settings' and the API's choices) is made from the table, and the pipeline builds a
reader through its entry, importing its module only when it is first asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from index.documents import Document
from index.passages import RetrievedPassage
from qa.answers import Answer

if TYPE_CHECKING:
    from index.embedder import Embedder
    from qa.settings import Settings


@dataclass(frozen=True, slots=True)
class ReaderEntry:
    name: str
    factory: str  # "module:function"; the function takes (settings, embedder, reader_of) and returns a Reader
    uses_model: bool  # reads the QA model folder of `settings.reader_model` (unavailable when it is missing)
    description: str


READERS: tuple[ReaderEntry, ...] = (
    ReaderEntry("heuristic", "qa.readers.heuristic:from_settings", False, "rules over typed candidate spans"),
    ReaderEntry("transformers", "qa.readers.transformers_reader:from_settings", True, "the trained extractive model"),
    ReaderEntry("combined", "qa.readers.combined:from_settings", True, "both, scores mixed (qa/readers/combined.py)"),
)

ReaderKind = StrEnum("ReaderKind", [(e.name.upper(), e.name) for e in READERS])  # type: ignore[misc]
ReaderKind.__doc__ = "The registered readers, by name (`READERS`)."
ReaderKind.__module__ = __name__


def reader_entry(kind: ReaderKind | str) -> ReaderEntry:
    return next(e for e in READERS if e.name == ReaderKind(kind).value)


class Reader(Protocol):
    """Readers score candidates in [0, 1]; ranking, deduplication and abstention happen in `qa.ranking`.

    A score means something only on its own reader's scale, so each reader carries the abstention threshold
    and the retrieval weight calibrated for it (`min_score`, `retrieval_weight`), the exponent of question
    coverage (`qa.coverage`; 0 is off) and the share of the best answer's score a further answer needs to be
    listed (`secondary_ratio`; 0 is off); settings override them.

    `independent_passages` says that a passage's candidates do not depend on which other passages are read
    (each is read on its own); the pipeline then skips the passages whose document cannot reach the threshold
    (`qa.ranking.reachable`).
    """

    name: str
    independent_passages: bool
    min_score: float
    retrieval_weight: float
    coverage_exponent: float
    secondary_ratio: float

    def warm_up(self) -> None: ...

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]: ...


READER_SCORE_MAX = 1.0
"""The highest score a reader gives (the protocol's scale, tested for every reader)."""

ReaderOf = Callable[[ReaderKind], Reader]  # another reader, built (or taken from the pipeline's cache) by kind


def build_reader(kind: ReaderKind | str, settings: Settings, embedder: Embedder, reader_of: ReaderOf) -> Reader:
    """A new, unloaded reader of `kind`, made by its registered factory; `reader_of` supplies readers it is made
    of (the combined reader's two), so they are loaded once and shared."""
    module, _, function = reader_entry(kind).factory.partition(":")
    factory = getattr(importlib.import_module(module), function)
    return factory(settings, embedder, reader_of)
