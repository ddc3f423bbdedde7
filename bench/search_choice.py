"""How the search engine and the Chinese tokenizer were chosen (issue 21): run it again to check.

    python bench/search_choice.py engines [N]   # SQLite FTS5 vs bm25s vs tantivy, N passages
    python bench/search_choice.py chinese       # character bigrams vs jieba vs rjieba

`engines` needs `pip install bm25s tantivy` (not dependencies of the bridge); `chinese` needs
`pip install jieba rjieba`. Numbers on the 2-core development machine (100,000 passages of
30–90 Zipf-distributed words, 28 MB):

    fts5     build 1.3 s   p95 10 ms    one passage updated 1.6 ms   0.77× the text on disk
    bm25s    build 5.2 s   p95 2.4 ms   no update: rebuild 5.2 s     1.43×
    tantivy  build 0.94 s  p95 0.1 ms   one passage updated 18 ms    0.53× (a folder of files)

    bigram         39/39 labelled Chinese queries top-1, none unmatched, 7.5 M chars/s
    jieba (search) 39/39, none unmatched, 0.54 M chars/s
    jieba precise  37/39, 解码 unmatched, 0.60 M chars/s
    rjieba         37/39, 解码 unmatched, 6.7 M chars/s
"""

from __future__ import annotations

import logging
import math
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time

ZH_DOCS = {
    "tongji": (
        "统计学习是计算机及其应用领域的一门重要的学科。本书全面系统地介绍了统计学习的主要"
        "方法，特别是监督学习方法，包括感知机、k近邻法、朴素贝叶斯法、决策树、逻辑斯谛回"
        "归与最大熵模型、支持向量机、提升方法、EM算法、隐马尔可夫模型和条件随机场等。"
    ),
    "nms": (
        "非极大值抑制先按得分排序检测框，保留得分最高的框，再删除与它"
        "重叠度超过阈值的其他框。软性非极大值抑制不直接删除，而是按重"
        "叠度衰减得分。"
    ),
    "bn": (
        "批归一化在每个小批量上对激活值做标准化，训练更快，但批量很小"
        "时统计量估计不准。组归一化按通道分组计算均值和方差，与批量大"
        "小无关。"
    ),
    "attn": (
        "注意力机制让解码器在每一步对源句子的所有位置加权求和。自注意"
        "力把序列中每个位置与其他位置联系起来，Transformer"
        "完全基于自注意力。"
    ),
    "vae": (
        "变分自编码器用重参数化技巧把采样变成可微分的运算，从而用随机"
        "梯度下降优化证据下界。条件变分自编码器在编码器和解码器中都加"
        "入条件变量。"
    ),
    "gan": "生成对抗网络由生成器和判别器组成，二者进行极小极大博弈，生成器试图骗过判别器。",
    "dropout": "随机失活在训练时随机丢弃神经元，防止神经元之间的共适应，从而减轻过拟合。",
    "resnet": "残差学习让网络拟合残差函数，通过恒等映射的捷径连接，使得非常深的网络也能训练。",
    "adam": "自适应矩估计优化器为每个参数维护一阶矩和二阶矩的估计，并做偏差修正。",
}
ZH_QUERIES = [
    ("统计学习", "tongji"),
    ("监督学习", "tongji"),
    ("支持向量", "tongji"),
    ("马尔可夫", "tongji"),
    ("非极大值抑制", "nms"),
    ("重叠", "nms"),
    ("得分衰减", "nms"),
    ("小批量", "bn"),
    ("批量大小", "bn"),
    ("归一化", "bn"),
    ("自注意力", "attn"),
    ("加权求和", "attn"),
    ("重参数化", "vae"),
    ("变分", "vae"),
    ("证据下界", "vae"),
    ("判别器", "gan"),
    ("博弈", "gan"),
    ("过拟合", "dropout"),
    ("共适应", "dropout"),
    ("恒等映射", "resnet"),
    ("残差", "resnet"),
    ("偏差修正", "adam"),
    ("二阶矩", "adam"),
    ("条件随机场", "tongji"),
    ("近邻", "tongji"),
    ("检测框", "nms"),
    ("极大值", "nms"),
    ("神经元", "dropout"),
    ("自编码", "vae"),
    ("随机梯度", "vae"),
    ("得分最高", "nms"),
    ("捷径", "resnet"),
    ("深的网络", "resnet"),
    ("矩估计", "adam"),
    ("朴素贝叶斯", "tongji"),
    ("向量机", "tongji"),
    ("解码", "attn"),
    ("标准化", "bn"),
    ("均值", "bn"),
]
_HAN = re.compile(r"[\u4e00-\u9fff]+")


def bigrams(text: str) -> list[str]:
    out: list[str] = []
    for run in _HAN.findall(text):
        out += [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
    return out


def chinese() -> None:
    import jieba
    import rjieba

    jieba.setLogLevel(logging.WARNING)
    tokenizers = {
        "bigram": bigrams,
        "jieba (search)": lambda s: [t for t in jieba.cut_for_search(s) if _HAN.match(t)],
        "jieba precise": lambda s: [t for t in jieba.cut(s) if _HAN.match(t)],
        "rjieba": lambda s: [t for t in rjieba.cut(s) if _HAN.match(t)],
    }
    for name, tok in tokenizers.items():
        toks = {k: tok(v) for k, v in ZH_DOCS.items()}
        df: dict[str, int] = {}
        for ts in toks.values():
            for t in set(ts):
                df[t] = df.get(t, 0) + 1
        avg = sum(map(len, toks.values())) / len(toks)

        n = len(toks)

        def score(q: str, ts: list[str], df=df, avg=avg, tok=tok, n=n) -> float:
            s = 0.0
            for t in set(tok(q)):
                f = ts.count(t)
                if f:
                    idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))  # plain BM25
                    s += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * len(ts) / avg))
            return s

        top1 = sum(
            max(toks, key=lambda k, q=q: score(q, toks[k])) == d and score(q, toks[d]) > 0
            for q, d in ZH_QUERIES
        )
        missed = [q for q, d in ZH_QUERIES if score(q, toks[d]) == 0]
        text = "".join(ZH_DOCS.values()) * 2000
        started = time.perf_counter()
        tok(text[:200_000])
        speed = 0.2 / (time.perf_counter() - started)
        print(
            f"{name:15s} top-1 {top1}/{len(ZH_QUERIES)}  unmatched {missed}  {speed:.2f} M chars/s"
        )


def _corpus(n: int) -> tuple[list[str], list[str]]:
    random.seed(1)
    vocab = [f"w{i}" for i in range(30000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    docs = [" ".join(random.choices(vocab, weights, k=random.randint(30, 90))) for _ in range(n)]
    queries = [" ".join(random.choices(vocab[50:3000], k=3)) for _ in range(200)]
    return docs, queries


def _p95(latencies: list[float]) -> float:
    return sorted(latencies)[int(len(latencies) * 0.95) - 1] * 1000


def engines(n: int) -> None:
    docs, queries = _corpus(n)
    size = sum(len(d) for d in docs)
    work = tempfile.mkdtemp(prefix="zob-engines-")
    try:
        for name, run in (("fts5", _fts5), ("bm25s", _bm25s), ("tantivy", _tantivy)):
            build, p95, update, disk = run(docs, queries, os.path.join(work, name))
            print(f"{name:8s} build {build:.2f} s  p95 {p95:.1f} ms  update {update * 1000:.1f} ms"
                  f"  {disk / size:.2f}x the text")  # fmt: skip
    finally:
        shutil.rmtree(work)


def _size(path: str) -> int:
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


def _fts5(docs: list[str], queries: list[str], path: str) -> tuple[float, float, float, int]:
    started = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE f USING fts5(body, content='')")
    with db:
        db.executemany("INSERT INTO f(rowid, body) VALUES (?, ?)", enumerate(docs))
    build = time.perf_counter() - started
    latencies = []
    for q in queries:
        started = time.perf_counter()
        sql = "SELECT rowid FROM f WHERE f MATCH ? ORDER BY rank LIMIT 10"
        db.execute(sql, (" OR ".join(q.split()),)).fetchall()
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    with db:
        db.execute("INSERT INTO f(f, rowid, body) VALUES('delete', 5, ?)", (docs[5],))
        db.execute("INSERT INTO f(rowid, body) VALUES (5, ?)", (docs[6],))
    update = time.perf_counter() - started
    db.close()
    return build, _p95(latencies), update, _size(path)


def _bm25s(docs: list[str], queries: list[str], path: str) -> tuple[float, float, float, int]:
    import bm25s

    started = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(docs, stopwords=None, show_progress=False), show_progress=False)
    build = time.perf_counter() - started
    latencies = []
    for q in queries:
        started = time.perf_counter()
        tokens = bm25s.tokenize([q], stopwords=None, show_progress=False)
        retriever.retrieve(tokens, k=10, show_progress=False)
        latencies.append(time.perf_counter() - started)
    retriever.save(path)
    return build, _p95(latencies), build, _size(path)  # no update in place: a rebuild


def _tantivy(docs: list[str], queries: list[str], path: str) -> tuple[float, float, float, int]:
    import tantivy

    os.makedirs(path)
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("id", stored=True, indexed=True)
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
    started = time.perf_counter()
    index = tantivy.Index(builder.build(), path=path)
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    for i, d in enumerate(docs):
        writer.add_document(tantivy.Document(id=i, body=d))
    writer.commit()
    writer.wait_merging_threads()
    build = time.perf_counter() - started
    index.reload()
    searcher = index.searcher()
    latencies = []
    for q in queries:
        started = time.perf_counter()
        searcher.search(index.parse_query(q, ["body"]), 10)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    writer = index.writer(heap_size=15_000_000, num_threads=1)
    writer.delete_documents_by_term("id", 5)
    writer.add_document(tantivy.Document(id=5, body=docs[6]))
    writer.commit()
    writer.wait_merging_threads()
    return build, _p95(latencies), time.perf_counter() - started, _size(path)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "engines"
    if what == "chinese":
        chinese()
    else:
        engines(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
