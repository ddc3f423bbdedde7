import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FileSystemAdapter, Notice, TFile } from "obsidian";
import { COMMANDS, LINEAGE_VIEW } from "../src/commands";
import { markPass, setStatus } from "../src/frontmatter";
import ZoteroBridgePlugin, { CitationSuggest, statusText } from "../src/main";
import { LIBRARY } from "./fixtures";

function fakeApp(vault: string, active: TFile | null, frontmatter: Record<string, any>) {
  const opened: string[] = [];
  const app = {
    opened,
    vault: { adapter: new FileSystemAdapter(vault), getMarkdownFiles: () => (active ? [active] : []) },
    workspace: {
      onLayoutReady: () => undefined,
      getActiveFile: () => active,
      openLinkText: async (path: string) => void opened.push(path),
      getLeavesOfType: () => [],
      on: () => ({}),
    },
    metadataCache: { getFileCache: (file: TFile) => ({ frontmatter: frontmatter[file.path] }), on: () => ({}) },
    fileManager: {
      processFrontMatter: async (file: TFile, fn: (fm: any) => void) => fn(frontmatter[file.path]),
    },
  };
  return app;
}

async function loaded(active: TFile | null, frontmatter: Record<string, any> = {}) {
  const vault = mkdtempSync(join(tmpdir(), "zob-vault-"));
  const app = fakeApp(vault, active, frontmatter);
  const plugin = new ZoteroBridgePlugin(app as any, {} as any);
  await plugin.onload();
  return { plugin: plugin as any, app, vault };
}

test("every command is registered, in order, with its name", async () => {
  const { plugin } = await loaded(null);
  assert.deepEqual(plugin.commands.map((c: any) => [c.id, c.name]), COMMANDS.map((c) => [c.id, c.name]));
  assert.ok(plugin.views[LINEAGE_VIEW], "the lineage view is registered");
  assert.ok(plugin.suggests[0] instanceof CitationSuggest, "the [@ suggester is registered");
  assert.equal(plugin.statusBar.length, 1);
  for (const id of ["open-or-create-note", "insert-citation", "sync-now"]) {
    assert.ok(COMMANDS.find((c) => c.id === id)!.name.startsWith("Zotero: "));
  }
});

test("reading commands apply only to a paper note, through processFrontMatter", async () => {
  const none = await loaded(new TFile("Daily.md"), { "Daily.md": { tags: [] } });
  const passOne = none.plugin.commands.find((c: any) => c.id === "mark-pass-1");
  assert.equal(passOne.checkCallback(true), false);

  const note = new TFile("Papers/he2016deep.md");
  const fm = { "Papers/he2016deep.md": { zotero_key: "AAAA0002", pass: 0, status: "to-read" } };
  const { plugin } = await loaded(note, fm);
  const byId = (id: string) => plugin.commands.find((c: any) => c.id === id);
  assert.equal(byId("mark-pass-2").checkCallback(true), true);
  byId("mark-pass-2").checkCallback(false);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(fm["Papers/he2016deep.md"], { zotero_key: "AAAA0002", pass: 2, status: "reading" });
  byId("status-dropped").checkCallback(false);
  await new Promise((r) => setImmediate(r));
  assert.equal(fm["Papers/he2016deep.md"].status, "dropped");
});

test("pass and status changes", () => {
  const fm: Record<string, unknown> = { pass: 0, status: "to-read" };
  markPass(fm, 1);
  assert.deepEqual(fm, { pass: 1, status: "reading" });
  markPass(fm, 3);
  assert.deepEqual(fm, { pass: 3, status: "done" });
  setStatus(fm, "dropped");
  markPass(fm, 2);
  assert.deepEqual(fm, { pass: 2, status: "dropped" });
});

test("without a daemon the modal's items come from library.json", async () => {
  const { plugin, vault } = await loaded(null);
  mkdirSync(join(vault, ".zotero-bridge"));
  writeFileSync(join(vault, ".zotero-bridge", "library.json"), JSON.stringify({ complete: true, items: LIBRARY }));
  const items = await plugin.loadItems(true);
  assert.equal(items.length, LIBRARY.length);
  await plugin.openItem(LIBRARY[0]); // it has a note: opened, nothing created
  assert.deepEqual(plugin.app.opened, ["Papers/vaswani2017attention.md"]);
});

test("the [@ suggester replaces [@query and an auto-paired ]", async () => {
  const { plugin } = await loaded(null);
  const suggest = plugin.suggests[0] as CitationSuggest;
  let line = "see [@he]";
  const editor = {
    getLine: () => line,
    replaceRange: (text: string, from: any, to: any) => {
      line = line.slice(0, from.ch) + text + line.slice(to.ch);
    },
  };
  const trigger = suggest.onTrigger({ line: 0, ch: 8 }, editor as any, null as any);
  assert.deepEqual(trigger, { start: { line: 0, ch: 4 }, end: { line: 0, ch: 8 }, query: "he" });
  suggest.context = { ...trigger!, editor: editor as any, file: null as any };
  plugin.settings.citationFormat = "pandoc";
  suggest.selectSuggestion(LIBRARY[1], null as any);
  assert.equal(line, "see [@he2016deep]");
});

test("the status bar says whether the daemon runs, the last sync and conflicts", () => {
  assert.equal(statusText({ via: "api", running: true, lastSync: "2026-12-05T10:14:16Z",
    conflicts: [{ key: "K", path: "p.md", field: "title", since: "x" }], lastError: null }),
  "Zotero: watching · synced 10:14 · 1 conflict(s)");
  assert.equal(statusText({ via: "index", running: false, lastSync: null, conflicts: [], lastError: null }),
    "Zotero: zob watch not running");
  assert.equal(statusText({ via: "none", running: false, lastSync: null, conflicts: [], lastError: null }),
    "Zotero: never synced");
  assert.ok(Array.isArray(Notice.messages));
});
