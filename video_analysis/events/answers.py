"""Answers to questions about the footage, built only from retrieved rows: every sentence cites its video and time.

The templated answer (always available, offline) says each matching fact in one sentence. A language model
may write the answer instead (``writer``), from the same rows numbered [1]..[n]; its text is kept only when
every sentence cites at least one of those numbers and no citation names a row that was not given. There is
never an answer without a citation: with no rows, the answer says that nothing in the footage matches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from video_analysis.wording import article

log = logging.getLogger(__name__)
_CITATION = re.compile(r"\[(\d+)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Citation:
    ref: int  # [ref] in the text
    partition_key: str
    object_key: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    generator: str = "template"
    note: str | None = None  # why a language model's answer was not used


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def fact(hit: dict) -> str:
    """One retrieved row as a sentence, without its citation."""
    where = hit["object_key"] + (f" (camera {hit['camera']})" if hit.get("camera") else "")
    span = f"{_clock(hit['start_s'])}-{_clock(hit['end_s'])}"
    if hit["kind"] == "incident":
        return f"{hit['text'][0].upper()}{hit['text'][1:]}, in {where} at {span}"
    if hit["kind"] == "summary":  # its first sentence: one sentence, one citation
        first = _SENTENCE_END.split(hit["text"].strip())[0].rstrip(".")
        return f"In {where}: {first}"
    described = article(hit["text"])
    return f"{described[0].upper()}{described[1:]}, in {where} at {span}"


def _valid(text: str, refs: int) -> bool:
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    cited = [int(n) for n in _CITATION.findall(text)]
    return bool(sentences) and all(_CITATION.search(s) for s in sentences) and all(1 <= n <= refs for n in cited)


def grounded_answer(question: str, hits: list[dict], writer: Callable[[str, list[str]], str] | None = None,
                    writer_name: str = "language model") -> Answer:
    """The answer to ``question`` from ``hits`` (search results, best first)."""
    if not hits:
        return Answer(question, "Nothing in the footage matches that question.")
    citations = [Citation(i, h["partition_key"], h["object_key"], h["start_s"], h["end_s"])
                 for i, h in enumerate(hits, 1)]
    facts = [fact(h) for h in hits]
    note = None
    if writer is not None:
        try:
            written = writer(question, [f"[{i}] {f}." for i, f in enumerate(facts, 1)])
        except Exception as exc:  # noqa: BLE001 - a model that fails leaves the template
            log.warning("%s failed writing an answer: %s", writer_name, exc)
            written, note = "", f"{writer_name} failed ({type(exc).__name__}); the templated answer stands"
        if written and _valid(written, len(hits)):
            return Answer(question, written.strip(), citations, writer_name)
        note = note or (f"{writer_name}'s answer was empty or did not cite a given fact in every sentence; "
                        "the templated answer stands")
    lines = [f"{f} [{i}]." for i, f in enumerate(facts, 1)]
    return Answer(question, " ".join(lines), citations, note=note)
