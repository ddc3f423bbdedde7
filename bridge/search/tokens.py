"""Text → search terms, the same for what is indexed and for a query.

Latin (and other spaced) script: NFKC, casefolded words; FTS5's porter stemmer then folds
`overlapping` and `overlap` together. Chinese, Japanese and Korean have no spaces: every run of
such characters becomes its overlapping character bigrams (`统计学习` → 统计 计学 学习), so a
query matches any substring of two characters or more whatever the word boundaries. Measured
against jieba (bench/search_choice.py): bigrams found every one of 39 labelled Chinese
queries, jieba's precise mode missed 2 (rjieba the same 2), jieba's search mode found all but
tokenized 14× slower (0.54 vs 7.5 M chars/s) — and bigrams need no dictionary.
"""

from __future__ import annotations

import re
import unicodedata

VERSION = "1"  # bump when terms change: the index is then rebuilt from scratch

# CJK ideographs (+ extension A, compatibility), kana, hangul
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TERM = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]")

# words that carry no topic in a question; dropped from queries only (BM25 weighs the rest)
_STOPWORDS = (
    "a an and are as at be by can de did do does for from had has have how i in into is "
    "it its me my of on or our paper papers so that the their them these this those to "
    "was we were what when where which who why will with you your about any there than "
    "then 的 了 和 是 在 哪些 什么 如何 怎么 我 我们 关于"
)
STOPWORDS = frozenset(_STOPWORDS.split())


_CJK_RUNS = re.compile(rf"[{_CJK}]+")
# British -ise spellings meet the -ize ones (normalisation ~ normalization) before stemming;
# a literal `is` first, so the scan is fast (lowercase only: an all-caps word keeps its -ise)
_ISE_TEXT = re.compile(r"is(es|ed|e|ing|ations|ation)\b")


def _ize(match: re.Match[str]) -> str:
    """`is…` → `iz…` after three lowercase letters (normalis-ation, not ra-ise or is-ing)."""
    start = match.start()
    before = match.string[max(start - 3, 0) : start]
    return (
        "iz" + match.group(1)
        if len(before) == 3 and before.isalpha() and before.islower()
        else match.group()
    )


def terms(text: str) -> list[str]:
    """The terms of `text`, in order (bigrams for CJK runs, a lone CJK character as itself)."""
    out: list[str] = []
    text = unicodedata.normalize("NFKC", text)
    text = _ISE_TEXT.sub(_ize, text) if "is" in text else text
    for match in _TERM.finditer(text.casefold()):
        run = match.group()
        if not _CJK_RUN.match(run) or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def _bigrams(match: re.Match[str]) -> str:
    run = match.group()
    pairs = [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return f" {' '.join(pairs)} "


def indexed(text: str) -> str:
    """`text` as the FTS5 table is given it: FTS5's own tokenizer (unicode61: case, accents,
    punctuation) then splits it as `terms` does, so only CJK runs (→ bigrams), compatibility
    forms (NFKC) and -ise spellings are done here — in C-speed passes, not word by word."""
    if not text.isascii():
        text = _CJK_RUNS.sub(_bigrams, unicodedata.normalize("NFKC", text))
    return _ISE_TEXT.sub(_ize, text) if "is" in text else text


def query_terms(text: str) -> list[str]:
    """The distinct terms of a query, stopwords dropped (all kept if nothing else is left)."""
    seen = list(dict.fromkeys(terms(text)))
    kept = [t for t in seen if t not in STOPWORDS]
    return kept or seen


def match_expression(words: list[str]) -> str:
    """An FTS5 MATCH that ranks by any of the terms (each quoted: no query syntax leaks)."""
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
