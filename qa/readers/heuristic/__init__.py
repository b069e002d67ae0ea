"""An extractive reader that needs no QA-trained weights (`--reader heuristic`; the trained reader is the default).

It reads the way a careful person skims an abstract: decide what kind of answer the question wants (a
percentage, a duration, a dose, a named thing, a list...), collect the spans of that kind in the retrieved
sentences, and prefer the span that sits closest to the question's rarest words, in the same clause, outside
confidence intervals and p-values, and that does not merely repeat the question.

Every rule reads punctuation, numbers, units and word classes; none names a drug, trial or document.
Scores are in [0, 1]: a weighted sum of evidence terms times shape factors, so a threshold can abstain.

Modules, one job each:

- `sentences`: sentence profiles (tokens, stems, asides) and the clause-aware token distance;
- `corpus`: corpus statistics (IDF, learned abbreviations, sentence profiles), cached per documents mapping;
- `context`: the question's key terms and their weights, overall and inside one document;
- `candidates`: answer-type patterns and candidate spans (numbers with units, phrases, lists, long forms);
- `alignment`: distances from the question's words to a candidate, and ties to the question's head noun;
- `respectively`: "..., respectively" value/item alignment and time points that must agree;
- `scoring`: `ReaderWeights`, the named shape factors and the final score;
- `reader`: `HeuristicReader`, which runs the above over the passages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.readers.heuristic.context import MAX_KEY_TERMS, QuestionContext
from qa.readers.heuristic.reader import HeuristicReader
from qa.readers.heuristic.scoring import ReaderWeights

if TYPE_CHECKING:
    from index.embedder import Embedder
    from qa.readers.base import ReaderOf
    from qa.settings import Settings


def from_settings(settings: Settings, embedder: Embedder, reader_of: ReaderOf) -> HeuristicReader:
    """The registry's factory (qa.readers.base.READERS)."""
    return HeuristicReader(embedder=embedder, max_answer_tokens=settings.max_answer_tokens)


_QuestionContext = QuestionContext  # the module's former private name, which tests import

__all__ = ["MAX_KEY_TERMS", "HeuristicReader", "QuestionContext", "ReaderWeights", "_QuestionContext", "from_settings"]
