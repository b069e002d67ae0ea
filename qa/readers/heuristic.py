"""Placeholder: replaced by the full answer-type reader."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from index.documents import Document
from index.embedder import Embedder
from index.lexical import tokenize
from index.retriever import RetrievedPassage
from index.sentences import split_sentences
from qa.answers import Answer, make_answer

_NUM = re.compile(r"\d+(?:\.\d+)?\s?(?:%|months?|mg)?")


class HeuristicReader:
    name = "heuristic"

    def __init__(self, embedder: Embedder, max_answer_tokens: int = 30) -> None:
        self.embedder = embedder
        self.max_answer_tokens = max_answer_tokens

    def warm_up(self) -> None:
        self.embedder.warm_up()

    def run(
        self,
        question: str,
        passages: Sequence[RetrievedPassage],
        documents: Mapping[str, Document],
        max_answers: int = 5,
    ) -> list[Answer]:
        q = set(tokenize(question))
        out = []
        for p in passages:
            doc = documents[p.chunk.doc_id]
            for s, e in split_sentences(p.chunk.text):
                overlap = len(q & set(tokenize(p.chunk.text[s:e]))) / max(1, len(q))
                m = _NUM.search(p.chunk.text, s, e)
                if m:
                    a, b = p.chunk.start + m.start(), p.chunk.start + m.end()
                    out.append(
                        make_answer(
                            question, doc.text, doc.id, p.chunk.id, p.chunk.start, p.chunk.end, a, b, self.name, overlap
                        )
                    )
        return sorted(out, key=lambda x: -x.score)[:max_answers]
