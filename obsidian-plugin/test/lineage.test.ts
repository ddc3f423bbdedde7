import assert from "node:assert/strict";
import { test } from "node:test";
import { lineageFromNotes, lineageModel, methodNames, NoteFacts } from "../src/lineage";

const paper = (path: string, title: string, year: number, proposes: string[], extend: string[]): NoteFacts =>
  ({ path, kind: "paper", title, year, pass: 2, status: "reading", proposes, extends: extend });

const NOTES: NoteFacts[] = [
  paper("Papers/neubeck2006.md", "Efficient NMS", 2006, ["NMS"], []),
  paper("Papers/bodla2017.md", "Soft-NMS", 2017, ["Soft-NMS"], ["NMS"]),
  paper("Papers/later2020.md", "Softer-NMS", 2020, ["Softer-NMS"], ["Soft-NMS"]),
  { path: "Methods/NMS.md", kind: "method", title: "NMS", year: null, proposes: [], extends: [] },
  { path: "Methods/Soft-NMS.md", kind: "method", title: "Soft-NMS", year: null, proposes: [], extends: [] },
  { path: "Daily.md", kind: "other", title: "Daily", year: null, proposes: [], extends: [] },
];

test("a method's view: its papers, then its descendants with theirs, each clickable", () => {
  const sections = lineageModel(lineageFromNotes(NOTES, "Methods/NMS.md"));
  assert.deepEqual(sections.map((s) => s.title), ["Proposed in", "Extended by", "Descendants"]);
  assert.deepEqual(sections[0].entries[0],
    { label: "Efficient NMS", path: "Papers/neubeck2006.md", detail: "2006 · pass 2 · reading", indent: 0 });
  const down = sections[2].entries.map((e) => [e.label, e.path, e.indent]);
  assert.deepEqual(down, [
    ["Soft-NMS", "Methods/Soft-NMS.md", 0],
    ["Soft-NMS", "Papers/bodla2017.md", 1],
    ["Softer-NMS", null, 1], // the second generation, no method note yet
    ["Softer-NMS", "Papers/later2020.md", 2],
  ]);
});

test("a method's ancestors", () => {
  const data = lineageFromNotes(NOTES, "Methods/Soft-NMS.md");
  assert.deepEqual(data.ancestors!.map((m) => [m.name, m.path, m.depth]), [["NMS", "Methods/NMS.md", 1]]);
  const sections = lineageModel(data);
  assert.deepEqual(sections.map((s) => s.title), ["Proposed in", "Extends (ancestors)", "Extended by", "Descendants"]);
});

test("a paper's view: what it proposes and extends", () => {
  const sections = lineageModel(lineageFromNotes(NOTES, "Papers/bodla2017.md"));
  assert.deepEqual(sections.map((s) => [s.title, s.entries[0].label, s.entries[0].path]),
    [["Proposes", "Soft-NMS", "Methods/Soft-NMS.md"], ["Extends", "NMS", "Methods/NMS.md"]]);
});

test("the bridge's answer gives the same model", () => {
  const fromBridge = {
    kind: "paper" as const, path: "Papers/bodla2017.md",
    proposes: [{ name: "Soft-NMS", path: "Methods/Soft-NMS.md", depth: 1, proposed_in: [] }],
    extends: [{ name: "NMS", path: "Methods/NMS.md", depth: 1, proposed_in: [] }],
  };
  const local = lineageFromNotes(NOTES, "Papers/bodla2017.md");
  const labels = (d: any) => lineageModel(d).map((s) => s.entries.filter((e) => e.detail === "method"));
  assert.deepEqual(labels(fromBridge), labels(local));
});

test("other notes have no lineage", () => {
  assert.deepEqual(lineageModel(lineageFromNotes(NOTES, "Daily.md")), []);
  assert.deepEqual(lineageModel(null), []);
});

test("method names from links and plain text", () => {
  assert.deepEqual(methodNames(["[[NMS]]", "[[Methods/Soft-NMS|soft]]", "Plain", 3, null]), ["NMS", "Soft-NMS", "Plain", "3"]);
  assert.deepEqual(methodNames("[[GN]]"), ["GN"]);
});
