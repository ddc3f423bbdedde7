import assert from "node:assert/strict";
import { test } from "node:test";
import { rank, rankItems } from "../src/ranking";
import { item, LIBRARY } from "./fixtures";

const keys = (query: string): string[] => rankItems(LIBRARY, query).map((i) => i.key);

test("an exact title comes first, then citation keys, then authors, then words", () => {
  // "attention": title of AAAA0004 exactly; citekey prefix of AAAA0003 and AAAA0005;
  // an author's name starts with it (AAAA0005, already a citekey match); AAAA0001's title
  // holds the word
  assert.deepEqual(keys("attention"), ["AAAA0004", "AAAA0005", "AAAA0003", "AAAA0001"]);
});

test("citation key before author before year", () => {
  const lib = [
    item({ key: "YEAR0001", title: "B", year: 2016 }),
    item({ key: "AUTH0001", title: "C", authors: ["Jo 2016son"], surnames: ["2016son"] }),
    item({ key: "CITE0001", title: "D", citekey: "2016paper" }),
    item({ key: "TITL0001", title: "2016" }),
  ];
  assert.deepEqual(rankItems(lib, "2016").map((i) => i.key),
    ["TITL0001", "CITE0001", "AUTH0001", "YEAR0001"]);
});

test("an author's surname finds the paper; case and spaces do not matter", () => {
  assert.equal(keys("  HE ")[0], "AAAA0002");
  assert.equal(rank(LIBRARY[1], "zhang"), 2);
});

test("the year finds every paper of that year", () => {
  assert.deepEqual(new Set(keys("2017")), new Set(["AAAA0001", "AAAA0006"]));
  assert.equal(rank(LIBRARY[0], "2017"), 3);
});

test("several words must all appear somewhere", () => {
  assert.deepEqual(keys("deep residual cvpr"), ["AAAA0002"]);
  assert.deepEqual(keys("deep quantum"), []);
});

test("an empty query lists noted papers first", () => {
  assert.equal(rankItems(LIBRARY, "")[0].key, "AAAA0001");
  assert.equal(rankItems(LIBRARY, "", 2).length, 2);
});
