"""Seeded synthetic Zotero libraries in Zotero's real on-disk layout, for the benchmark.

Built with `tests/zotero_db.py` (the same table layout as a real Zotero 7 database, schema
123), so the bridge reads them exactly as it reads a user's `zotero.sqlite`. The same
`(items, seed)` always gives byte-identical rows.

Shape, per item (chosen to look like a working researcher's library):
- type: journal article 55 %, conference paper 25 %, preprint 10 %, book section 4 %,
  thesis 3 %, report 3 %; about 13 filled fields (the shared Zotero 7 fixture averages 12.8):
  title, abstract (400-2,000 characters), date, language, url, accessDate, DOI, pages,
  venue, volume/issue, ISSN/abbreviation, library catalog, and sometimes a native citation key;
- 1-8 creators (mostly authors, people shared across papers), 0-6 tags from a pool of a few
  hundred, 0-3 collections in a two-level tree;
- 90 % have a PDF attachment (a small stub file in `storage/<key>/`, as Zotero keeps it);
  a third of the items carry annotations, on average
  `annotations_per_annotated` each (default 9, i.e. 3 per item across the library), in all
  eight Zotero 7 reader colours plus the imported `#ffed00`, some with comments;
- 10 % carry lineage tags (`proposes:X` for a new method, `extends:Y` for an earlier one),
  5 % are related to another item, 1 % are in the trash, 10 % have a child note.
"""

from __future__ import annotations

import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.zotero_db import ZoteroDB  # noqa: E402

ITEM_TYPES = (
    ("journalArticle", 55), ("conferencePaper", 25), ("preprint", 10), ("bookSection", 4),
    ("thesis", 3), ("report", 3),
)  # fmt: skip
COLORS = (
    ("#ffd400", 40), ("#2ea8e5", 15), ("#5fb236", 12), ("#ff6666", 10), ("#a28ae5", 8),
    ("#e56eee", 5), ("#f19837", 4), ("#aaaaaa", 3), ("#ffed00", 3),
)  # fmt: skip
ANNOTATION_KINDS = (("highlight", 80), ("underline", 10), ("note", 7), ("image", 3))
BASE_METHODS = (
    "NMS", "Soft-NMS", "BatchNorm", "InstanceNorm", "GroupNorm", "VAE", "CVAE", "Highway",
    "ResNet", "Transformer", "Dropout", "Adam", "LSTM", "GRU", "U-Net", "GAN", "DCGAN", "BERT",
)  # fmt: skip
WORDS = (  # noqa: SIM905
    "deep residual learning image recognition attention network transformer graph neural "
    "convolutional sparse efficient scalable robust adversarial generative model training "
    "optimization stochastic gradient descent regularization normalization batch layer group "
    "instance detection segmentation object semantic instance panoptic tracking video "
    "language representation pretraining contrastive self-supervised learning reinforcement "
    "policy value function bayesian inference variational autoencoder diffusion score "
    "matching flow kernel gaussian process uncertainty calibration federated privacy "
    "differential compression quantization pruning distillation knowledge retrieval "
    "augmented memory recurrent sequence alignment translation speech recognition audio "
    "protein structure prediction molecule chemistry physics simulation climate weather "
    "forecasting causal discovery fairness interpretability explanation benchmark dataset "
    "evaluation metric analysis theory bounds convergence generalization overparameterized"
).split()
VENUES = (
    "Nature", "Science", "Journal of Machine Learning Research", "IEEE Transactions on "
    "Pattern Analysis and Machine Intelligence", "Neural Computation", "Physical Review "
    "Letters", "Proceedings of the National Academy of Sciences", "Bioinformatics",
    "Wellcome Open Research", "PLOS ONE", "Communications of the ACM", "Artificial Intelligence",
)  # fmt: skip
CONFERENCES = ("CVPR", "ICCV", "ECCV", "NeurIPS", "ICML", "ICLR", "ACL", "EMNLP", "AAAI", "KDD")
FIRST = (  # noqa: SIM905
    "Kaiming Xiangyu Shaoqing Jian Ross Piotr Yann Geoffrey Yoshua Ian Diederik Jimmy Sepp "
    "Jürgen Alex Ilya Ashish Noam Niki Jakob Llion Aidan Łukasz Illia Sergey Christian Olaf "
    "Philipp Thomas Navaneeth Bharat Rupesh Klaus Max Danilo Shakir Yuxin Fei-Fei Andrej Wei "
    "Yi Li Xin Hao Jun Mei Ana Carlos Sofia Lucas Emma Noah Olivia Liam Mia Ethan Zoë"
).split()
LAST = (  # noqa: SIM905
    "He Zhang Ren Sun Girshick Dollár LeCun Hinton Bengio Goodfellow Kingma Ba Hochreiter "
    "Schmidhuber Krizhevsky Sutskever Vaswani Shazeer Parmar Uszkoreit Jones Gomez Kaiser "
    "Polosukhin Ioffe Szegedy Ronneberger Fischer Brox Bodla Singh Srivastava Greff Welling "
    "Rezende Mohamed Wu Li Karpathy Wang Chen Liu Yang Huang Zhao Müller García Silva Rossi "
    "Nguyen Kim Park Tanaka Suzuki Novak Kowalski Ivanova O'Brien Dubois"
).split()


# What Zotero keeps in storage/<attachment key>/: the bridge never opens it, the peer checks
# that the file is there (else it tries to download one).
PDF_STUB = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class GeneratedLibrary:
    """What the benchmark needs to know about a generated library."""

    path: Path
    items: int
    seed: int
    annotations: int
    attachments: int
    lineage_items: int
    annotations_per_annotated: float = 9.0
    keys: list[str] = field(default_factory=list)
    plain_keys: list[str] = field(default_factory=list)  # live, no lineage tags, no relations

    def change_target(self) -> str:
        """A stable item to edit for the one-change figure (a plain paper mid-library)."""
        return self.plain_keys[len(self.plain_keys) // 2]


def _weighted(rnd: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    names, weights = zip(*table, strict=True)
    return rnd.choices(names, weights=weights, k=1)[0]


def _sentence(rnd: random.Random, low: int, high: int) -> str:
    words = rnd.choices(WORDS, k=rnd.randint(low, high))
    return " ".join(words).capitalize()


def _title(rnd: random.Random) -> str:
    title = _sentence(rnd, 4, 12)
    if rnd.random() < 0.3:
        title += ": " + _sentence(rnd, 2, 6).lower()
    return title


def _abstract(rnd: random.Random) -> str:
    target = rnd.randint(400, 2000)
    parts: list[str] = []
    size = 0
    while size < target:
        sentence = _sentence(rnd, 8, 25) + "."
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)


def _people(rnd: random.Random, count: int) -> list[tuple[str, str]]:
    return [(rnd.choice(FIRST), rnd.choice(LAST)) for _ in range(count)]


def generate(
    path: Path, items: int, seed: int = 7, annotations_per_annotated: float = 9.0
) -> GeneratedLibrary:
    """Write a Zotero 7 database with `items` regular items at `path` (must not exist)."""
    rnd = random.Random(seed)
    db = ZoteroDB.create(path, schema=123, seed=seed)
    people = _people(rnd, max(50, items // 3))
    tag_pool = [f"{rnd.choice(WORDS)}-{rnd.choice(WORDS)}" for _ in range(300)]
    tag_pool += ["to-read", "important", "survey", "reproduce", "baseline", "Computer Science"]
    tag_pool = list(dict.fromkeys(tag_pool))
    parents = [_sentence(rnd, 1, 2) for _ in range(8)]
    collections = parents + [f"{p}/{_sentence(rnd, 1, 3)}" for p in parents for _ in range(4)]
    methods: list[str] = list(BASE_METHODS)
    library = GeneratedLibrary(path, items, seed, 0, 0, 0, annotations_per_annotated)
    related_pending: list[str] = []
    for index in range(items):
        key, plain = _add_item(db, rnd, index, people, tag_pool, collections, methods, library)
        library.keys.append(key)
        if rnd.random() < 0.05:
            related_pending.append(key)
            plain = False
        trashed = rnd.random() < 0.01
        if trashed:
            db._queue("deletedItems", (db.item_id(key), "2025-01-01 00:00:00"))
        elif plain:
            library.plain_keys.append(key)
        if rnd.random() < 0.10:
            db.add_note(key, f"<p>{_sentence(rnd, 5, 30)}</p>")
    _relate(db, rnd, related_pending)
    db.close()
    _add_base_tables(path)
    return library


def _add_base_tables(path: Path) -> None:
    """`itemTypes` and `fields`: real Zotero databases have them next to the `*Combined` tables
    (the builder makes only what the bridge reads); tools that query them, like the peer, need
    them. Columns as in the shared Zotero 7.0.30 fixture."""
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT,
                templateItemTypeID INT, display INT DEFAULT 1);
            INSERT INTO itemTypes SELECT itemTypeID, typeName, NULL, display
                FROM itemTypesCombined WHERE custom = 0;
            CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT, fieldFormatID INT);
            INSERT INTO fields SELECT fieldID, fieldName, fieldFormatID
                FROM fieldsCombined WHERE custom = 0;
            """
        )
    conn.close()


def _add_item(
    db: ZoteroDB,
    rnd: random.Random,
    index: int,
    people: list[tuple[str, str]],
    tag_pool: list[str],
    collections: list[str],
    methods: list[str],
    library: GeneratedLibrary,
) -> tuple[str, bool]:
    item_type = _weighted(rnd, ITEM_TYPES)
    year = rnd.randint(1995, 2024)
    title = _title(rnd)
    fields = {
        "title": title,
        "abstractNote": _abstract(rnd),
        "date": f"{year}-{rnd.randint(1, 12)}-{rnd.randint(1, 28)}",
        "language": "en",
        "url": f"https://example.org/papers/{index}",
        "accessDate": f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} 10:00:00",
        "libraryCatalog": rnd.choice(("DOI.org (Crossref)", "arXiv.org", "Semantic Scholar")),
    }
    if item_type in ("journalArticle", "conferencePaper", "preprint"):
        fields["DOI"] = f"10.{rnd.randint(1000, 9999)}/bench.{index}"
        fields["pages"] = f"{rnd.randint(1, 900)}-{rnd.randint(901, 999)}"
    if item_type == "journalArticle":
        venue = rnd.choice(VENUES)
        fields.update(publicationTitle=venue, volume=str(rnd.randint(1, 60)),
                      issue=str(rnd.randint(1, 12)), ISSN=f"{rnd.randint(1000, 9999)}-0000",
                      journalAbbreviation=venue[:12])  # fmt: skip
    elif item_type == "conferencePaper":
        conf = rnd.choice(CONFERENCES)
        fields.update(proceedingsTitle=f"Proceedings of {conf} {year}", conferenceName=conf,
                      publisher="IEEE", place="Online")  # fmt: skip
    elif item_type == "preprint":
        fields.update(repository="arXiv", archiveID=f"arXiv:{year % 100:02d}{index:05d}")
    elif item_type == "bookSection":
        fields.update(bookTitle=_title(rnd), publisher="Springer", ISBN="978-3-16-148410-0")
    elif item_type == "thesis":
        fields.update(university="University of Somewhere", thesisType="PhD thesis")
    else:
        fields.update(institution="Some Lab", reportNumber=f"TR-{index}")
    creators = [("author", first, last) for first, last in rnd.sample(people, rnd.randint(1, 8))]
    if item_type == "bookSection" and rnd.random() < 0.5:
        creators.append(("editor", *rnd.choice(people)))
    citation_key = None
    if rnd.random() < 0.6:
        citation_key = re.sub(r"\W", "", f"{creators[0][2]}{year}{title.split()[0]}{index}".lower())
    tags = rnd.sample(tag_pool, rnd.randint(0, 6))
    plain = True
    if rnd.random() < 0.10:
        plain = False
        library.lineage_items += 1
        if rnd.random() < 0.4:
            name = f"M{len(methods):04d}-{rnd.choice(WORDS).capitalize()}"
            methods.append(name)
            tags.append(f"proposes:{name}")
            if rnd.random() < 0.5:
                tags.append(f"extends:{rnd.choice(methods[:-1])}")
        else:
            for name in rnd.sample(methods, min(len(methods), rnd.randint(1, 2))):
                tags.append(f"extends:{name}")
    in_collections = rnd.sample(collections, rnd.choices((0, 1, 2, 3), (15, 50, 25, 10))[0])
    added = f"{rnd.randint(2015, 2024)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} 09:00:00"
    key = db.add_item(
        item_type, creators=creators, tags=list(dict.fromkeys(tags)), collections=in_collections,
        citation_key=citation_key, date_added=added, **fields,
    )  # fmt: skip
    if rnd.random() < 0.9:
        _add_pdf(db, rnd, key, added, index, library)
    return key, plain


def _add_pdf(
    db: ZoteroDB, rnd: random.Random, key: str, added: str, index: int, library: GeneratedLibrary
) -> None:
    filename = f"paper-{index}.pdf"
    att = db.add_attachment(key, filename=filename, title="Full Text PDF", date_added=added)
    library.attachments += 1
    storage = library.path.parent / "storage" / att
    storage.mkdir(parents=True)
    (storage / filename).write_bytes(PDF_STUB)
    if rnd.random() >= 1 / 3 / 0.9:  # a third of all items
        return
    mean = library.annotations_per_annotated
    count = max(1, min(int(mean * 3), int(rnd.expovariate(1 / mean)) + 1))
    for _ in range(count):
        page = rnd.randint(1, 30)
        kind = _weighted(rnd, ANNOTATION_KINDS)
        text = _sentence(rnd, 8, 45) + "." if kind in ("highlight", "underline") else None
        comment = _sentence(rnd, 3, 20) if kind == "note" or rnd.random() < 0.3 else None
        db.add_annotation(
            att, type=kind, text=text, comment=comment, color=_weighted(rnd, COLORS),
            page_label=str(page), date_added=added,
        )  # fmt: skip
        library.annotations += 1


def _relate(db: ZoteroDB, rnd: random.Random, keys: list[str]) -> None:
    """`dc:relation` both ways, written as rows (no per-edit timestamps: a built library)."""
    if len(keys) < 2:
        return
    pid = db._predicate_id("dc:relation")
    rows: set[tuple[int, int, str]] = set()
    for key in keys:
        other = rnd.choice(keys)
        if other != key:
            rows.add((db.item_id(key), pid, db.uri(other)))
            rows.add((db.item_id(other), pid, db.uri(key)))
    for row in sorted(rows):
        db._queue("itemRelations", row)
