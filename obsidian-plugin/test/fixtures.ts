import type { IndexItem } from "../src/types";

export function item(partial: Partial<IndexItem> & { key: string }): IndexItem {
  return {
    citekey: "", title: "", authors: [], surnames: [], author_count: 0, year: null, venue: "",
    note: null, pass: null, status: "", pdf: null, ...partial,
  };
}

export const LIBRARY: IndexItem[] = [
  item({ key: "AAAA0001", citekey: "vaswani2017attention", title: "Attention Is All You Need",
    authors: ["Ashish Vaswani", "Noam Shazeer"], surnames: ["Vaswani", "Shazeer", "Parmar"],
    author_count: 8, year: 2017, venue: "NIPS", note: "Papers/vaswani2017attention.md", pass: 1,
    status: "reading" }),
  item({ key: "AAAA0002", citekey: "he2016deep", title: "Deep Residual Learning for Image Recognition",
    authors: ["Kaiming He", "Xiangyu Zhang"], surnames: ["He", "Zhang", "Ren"], author_count: 4,
    year: 2016, venue: "CVPR" }),
  item({ key: "AAAA0003", citekey: "attention2015", title: "Neural Machine Translation by Jointly Learning to Align",
    authors: ["Dzmitry Bahdanau"], surnames: ["Bahdanau"], author_count: 1, year: 2015 }),
  item({ key: "AAAA0004", citekey: "smith2020", title: "Attention", authors: ["Jane Smith"],
    surnames: ["Smith"], author_count: 1, year: 2020 }),
  item({ key: "AAAA0005", citekey: "attentionless", title: "A Study of Things",
    authors: ["Attention Person"], surnames: ["Person"], author_count: 1, year: 2019 }),
  item({ key: "AAAA0006", citekey: "x2017", title: "Written in 2017", authors: ["Ann Bee"],
    surnames: ["Bee"], author_count: 1, year: 2017 }),
];
