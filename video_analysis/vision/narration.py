"""A small vision-language model writes the summary from keyframes plus the extracted facts (``full``).

The model's answer must be JSON ``{"summary": "..."}`` with a summary of sensible length; anything else
is rejected with the reason, and the caller keeps the templated summary. Facts (incidents, score) always
come from the rules, never from the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np

MIN_CHARS, MAX_CHARS = 20, 1500
PROMPT = (
    "You see keyframes from a surveillance video and the facts measured from it. Write a short, factual "
    "summary of what happens, using only these facts and what the keyframes show. Answer with JSON only, "
    'exactly: {{"summary": "<two to four sentences>"}}.\nFacts: {facts}'
)


ANSWER_PROMPT = (
    "Answer the question about surveillance footage using only the numbered facts below. End every sentence "
    "with the number of the fact it rests on, like [1]. Do not add anything the facts do not say.\n"
    "Facts:\n{facts}\nQuestion: {question}\nAnswer:"
)


QUERY_PROMPT = (
    "Read the question about surveillance footage into a counting query. Answer with JSON only, with these keys: "
    '"what" (one of {whats}), "class" (one of {classes}), "name" (one of {names}, or null), "direction" ("in", '
    '"out" or null), "camera" (one of {cameras}, or null), "colour" (one of {colours}, or null), "time" (the '
    'question\'s own words for when, such as "today" or "between 14:00 and 15:00", or null).\n'
    "Question: {question}\nJSON:"
)


class InvalidSummary(ValueError):
    """The model's output is not the JSON summary asked for."""


def parse_summary(raw: str) -> str:
    match = re.search(r"\{.*\}", raw, re.DOTALL)
    if not match:
        raise InvalidSummary("no JSON object in the output")
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError as exc:
        raise InvalidSummary(f"not valid JSON ({exc.msg})") from exc
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, str):
        raise InvalidSummary('no "summary" string in the JSON')
    summary = " ".join(summary.split())
    if not MIN_CHARS <= len(summary) <= MAX_CHARS:
        raise InvalidSummary(f"summary of {len(summary)} characters (expected {MIN_CHARS}-{MAX_CHARS})")
    return summary


class VisionLanguageSummarizer:
    """Any transformers image-text-to-text checkpoint with a chat template (SmolVLM, LLaVA, Qwen-VL...)."""

    def __init__(self, path: Path, device: str = "cpu", max_new_tokens: int = 200):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch = torch
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.processor = AutoProcessor.from_pretrained(str(path))
        self.model = AutoModelForImageTextToText.from_pretrained(str(path)).to(device).eval()

    def write(self, keyframes_bgr: list[np.ndarray], facts: dict) -> str:
        """The model's raw answer (validate it with parse_summary)."""
        images = [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in keyframes_bgr]
        content = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": PROMPT.format(facts=json.dumps(facts, default=str))})
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                    add_generation_prompt=True)
        inputs = self.processor(images=images or None, text=prompt, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)

    def write_answer(self, question: str, facts: list[str]) -> str:
        """The model's answer to ``question`` from numbered ``facts`` (text only; validated by the caller)."""
        return self._text(ANSWER_PROMPT.format(facts="\n".join(facts), question=question))

    def phrase_query(self, question: str, vocabulary: dict[str, list[str]]) -> str:
        """The model's reading of a counting question as a JSON query over ``vocabulary``'s words (the kinds of
        count, classes, lines and zones, cameras, colours): validated by search/phrasing.py, never run as SQL."""
        return self._text(QUERY_PROMPT.format(question=question, **{k: ", ".join(v) for k, v in vocabulary.items()}))

    def _text(self, text: str) -> str:
        content = [{"type": "text", "text": text}]
        prompt = self.processor.apply_chat_template([{"role": "user", "content": content}],
                                                    add_generation_prompt=True)
        inputs = self.processor(text=prompt, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.processor.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def narrate(summarizer, frames: list[np.ndarray], facts: dict, templated: str) -> tuple[str | None, str]:
    """(model summary or None, note): None when the output does not validate, and the note says why."""
    raw = summarizer.write(frames, {**facts, "summary": templated})
    try:
        return parse_summary(raw), "valid JSON"
    except InvalidSummary as exc:
        return None, f"invalid output ({exc}); the templated summary stands"
