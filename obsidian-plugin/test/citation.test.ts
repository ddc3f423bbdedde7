import assert from "node:assert/strict";
import { test } from "node:test";
import { authorLabel, citation, pandocQuery } from "../src/citation";
import { item, LIBRARY } from "./fixtures";

test("a wikilink to the paper note, labelled Author Year", () => {
  assert.equal(citation(LIBRARY[0], "wikilink"), "[[vaswani2017attention|Vaswani et al. 2017]]");
  // no note yet: the citation key, the name the bridge will give the note
  assert.equal(citation(LIBRARY[1], "wikilink"), "[[he2016deep|He et al. 2016]]");
});

test("Pandoc's [@citekey], the item key when there is no citation key", () => {
  assert.equal(citation(LIBRARY[1], "pandoc"), "[@he2016deep]");
  assert.equal(citation(item({ key: "ABCD1234", title: "T" }), "pandoc"), "[@ABCD1234]");
});

test("one, two and more authors", () => {
  const one = item({ key: "K1", surnames: ["Bahdanau"], author_count: 1, year: 2015 });
  const two = item({ key: "K2", surnames: ["He", "Sun"], author_count: 2, year: 2016 });
  const none = item({ key: "K3", title: "Anonymous Report On Things", year: null });
  assert.equal(authorLabel(one), "Bahdanau 2015");
  assert.equal(authorLabel(two), "He & Sun 2016");
  assert.equal(authorLabel(none), "Anonymous Report On");
});

test("a label never breaks the link", () => {
  const hostile = item({ key: "K4", citekey: "ok2020", surnames: ["Evil]]|#^[[x"],
    author_count: 1, year: 2020 });
  assert.equal(citation(hostile, "wikilink"), "[[ok2020|Evilx 2020]]");
});

test("the [@ suggester sees what follows [@ up to the cursor", () => {
  assert.deepEqual(pandocQuery("as shown in [@he20"), { query: "he20", start: 12 });
  assert.deepEqual(pandocQuery("[@"), { query: "", start: 0 });
  assert.equal(pandocQuery("no citation here"), null);
  assert.equal(pandocQuery("[@done] and more"), null);
});
