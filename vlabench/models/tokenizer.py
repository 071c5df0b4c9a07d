"""Prompt tokenisation: the checkpoint's Llama-2 tokenizer, or a stand-in for random builds.

Prompt (OpenVLA / OFT LIBERO evaluation): `In: What action should the robot take to
{instruction.lower()}?\\nOut:`, tokenised with BOS and followed by the empty token 29871 that
`predict_action` appends when missing.

Random-weight builds (tiny, full-size meta) have no tokenizer files offline; `WordTokenizer`
stands in: one id per word or punctuation mark (a stable hash into the id range the Llama
vocabulary uses for text). Its length is close to, not equal to, the Llama-2 tokenisation of
the same prompt; FLOPs of such builds carry that approximation (recorded as a deviation).
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

BOS_ID = 1
EMPTY_ID = 29871


def prompt_text(instruction: str) -> str:
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


class WordTokenizer:
    """Deterministic stand-in: BOS + one id per word/punctuation (ids in 100..29000)."""

    exact = False

    def encode(self, text: str) -> list[int]:
        pieces = re.findall(r"\w+|[^\w\s]", text)
        return [BOS_ID] + [100 + zlib.crc32(p.encode()) % 28900 for p in pieces]


class HFTokenizer:
    """The checkpoint's own tokenizer (LlamaTokenizer files in the checkpoint directory).

    Loaded without remote code: the published exports' config.json has an `auto_map` (their
    modeling code), for which transformers would otherwise stop and ask "Do you wish to run the
    custom code? [y/N]" on a terminal; the tokenizer itself is a stock class."""

    exact = True

    def __init__(self, path: str | Path):
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])


def prompt_ids(tokenizer, instruction: str, style: str = "template") -> list[int]:
    """Token ids of the prompt: the LIBERO template, or the raw instruction (SIMPLER)."""
    ids = tokenizer.encode(prompt_text(instruction) if style == "template" else instruction)
    if ids[-1] != EMPTY_ID:
        ids.append(EMPTY_ID)
    return ids
