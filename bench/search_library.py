"""A seeded vault for the search benchmark: paper notes as the bridge writes them (properties,
abstract, the user's paragraphs, highlights with `^block` ids and page links) and a Zotero
data folder holding each PDF's `.zotero-ft-cache` (pages split by form feeds).

    python bench/search_library.py DIR [--notes 10000] [--highlights 30000] [--full-texts 5000]

The same numbers and seed give the same bytes. Words follow a Zipf law over a vocabulary of
~20,000 made-up terms plus real method names, so BM25 sees a natural spread of frequencies;
one note in ten is in Chinese.
"""

from __future__ import annotations

import argparse
import itertools
import random
from pathlib import Path

ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
METHODS = ["NMS", "Soft-NMS", "batch normalization", "group normalization", "dropout",
           "attention", "transformer", "residual block", "Adam", "VAE", "GAN", "BERT"]  # fmt: skip
HAN = "的学习方法模型数据网络训练特征检测归一化注意力机制生成对抗变分推断优化梯度卷积图像语言统计"


class Words:
    def __init__(self, rnd: random.Random, size: int = 20000) -> None:
        syllables = "ka lo mi ten ser vo qua rin dex pol ul tra be si no ga fe ru zo pi ad em or ix"
        parts = syllables.split()
        vocab: set[str] = set()
        while len(vocab) < size:
            vocab.add("".join(rnd.choices(parts, k=rnd.randint(2, 4))))
        self.vocab = sorted(vocab)
        rnd.shuffle(self.vocab)  # the frequent words are not the alphabetically first
        weights = [1 / (i + 1) ** 1.05 for i in range(size)]
        self.cumulative = list(itertools.accumulate(weights))
        self.rnd = rnd

    def sentence(self, n: int | None = None) -> str:
        k = n or self.rnd.randint(8, 24)
        words = self.rnd.choices(self.vocab, cum_weights=self.cumulative, k=k)
        if self.rnd.random() < 0.3:
            words.insert(self.rnd.randrange(len(words)), self.rnd.choice(METHODS))
        return " ".join(words).capitalize() + "."

    def paragraph(self, sentences: int) -> str:
        return " ".join(self.sentence() for _ in range(sentences))

    def chinese(self, chars: int) -> str:
        return "".join(self.rnd.choices(HAN, k=chars)) + "。"


def key(rnd: random.Random) -> str:
    return "".join(rnd.choices(ALPHABET, k=8))


def note_text(i: int, w: Words, rnd: random.Random, pdf: str, highlights: int) -> str:
    zh = i % 10 == 0
    title = w.chinese(12) if zh else w.sentence(rnd.randint(4, 9)).rstrip(".")
    props = [
        "---", f"title: '{title}'", "authors:", f"- {w.sentence(2).rstrip('.')}",
        f"year: {rnd.randint(1990, 2025)}", f"citekey: paper{i}", f"zotero_key: {key(rnd)}",
        f"pdf: zotero://open-pdf/library/items/{pdf}", "tags:", f"- topic{rnd.randint(1, 40)}",
        f"date_added: '20{rnd.randint(10, 25)}-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}T10:00Z'",
        f"pass: {rnd.randint(0, 3)}", f"status: {rnd.choice(['to-read', 'reading', 'done'])}",
        "---",
    ]  # fmt: skip
    body = [f"# {title}", "", "## Abstract", "%% zob:begin abstract %%",
            w.chinese(200) if zh else w.paragraph(5), "%% zob:end abstract %%", ""]  # fmt: skip
    for _ in range(rnd.randint(0, 3)):  # the user's own paragraphs
        body += [w.chinese(80) if zh else w.paragraph(3), ""]
    body += ["## Highlights", "%% zob:begin annotations %%"]
    for _ in range(highlights):
        ann, page = key(rnd), rnd.randint(1, 12)
        body += [f"> {w.chinese(40) if zh else w.sentence()}", ">",
                 f"> [p. {page}](zotero://open-pdf/library/items/{pdf}?page={page}&annotation={ann})",
                 "", f"^{ann.lower()}", ""]  # fmt: skip
    body += ["%% zob:end annotations %%", ""]
    return "\n".join(props + body)


def full_text(w: Words, rnd: random.Random, chars: int) -> str:
    pages, page_chars = [], 3000
    for _ in range(max(1, chars // page_chars)):
        paragraphs, size = [], 0
        while size < page_chars:
            paragraph = w.paragraph(rnd.randint(2, 6))
            paragraphs.append(paragraph)
            size += len(paragraph)
        pages.append("\n\n".join(paragraphs))
    return "\f".join(pages)


def generate(
    root: Path, notes: int, highlights: int, full_texts: int, chars: int, seed: int = 7
) -> tuple[Path, Path]:
    """Write the vault and the Zotero folder under `root`; returns (vault, zotero_dir)."""
    rnd = random.Random(seed)
    w = Words(rnd)
    vault, zotero = root / "vault", root / "Zotero"
    (vault / "Papers").mkdir(parents=True, exist_ok=True)
    (zotero / "storage").mkdir(parents=True, exist_ok=True)
    per_note = [highlights // notes + (1 if i < highlights % notes else 0) for i in range(notes)]
    for i in range(notes):
        pdf = key(rnd)
        (vault / "Papers" / f"paper{i}.md").write_text(
            note_text(i, w, rnd, pdf, per_note[i]), encoding="utf-8"
        )
        if i < full_texts:
            folder = zotero / "storage" / pdf
            folder.mkdir(exist_ok=True)
            (folder / ".zotero-ft-cache").write_text(full_text(w, rnd, chars), encoding="utf-8")
    return vault, zotero


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--notes", type=int, default=10000)
    parser.add_argument("--highlights", type=int, default=30000)
    parser.add_argument("--full-texts", type=int, default=5000)
    parser.add_argument("--full-text-chars", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    generate(args.dir, args.notes, args.highlights, args.full_texts, args.full_text_chars,
             args.seed)  # fmt: skip


if __name__ == "__main__":
    main()
