/* zotero-obsidian-bridge plugin: built from obsidian-plugin/ by esbuild; do not edit */
"use strict";
var __create = Object.create;
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __getProtoOf = Object.getPrototypeOf;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __export = (target, all) => {
  for (var name in all)
    __defProp(target, name, { get: all[name], enumerable: true });
};
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toESM = (mod, isNodeMode, target) => (target = mod != null ? __create(__getProtoOf(mod)) : {}, __copyProps(
  // If the importer is in node compatibility mode or this is not an ESM
  // file that has been converted to a CommonJS file using a Babel-
  // compatible transform (i.e. "__esModule" has not been set), then set
  // "default" to the CommonJS "module.exports" for node compatibility.
  isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
  mod
));
var __toCommonJS = (mod) => __copyProps(__defProp({}, "__esModule", { value: true }), mod);

// src/main.ts
var main_exports = {};
__export(main_exports, {
  CitationSuggest: () => CitationSuggest,
  ItemModal: () => ItemModal,
  LineageView: () => LineageView,
  default: () => ZoteroBridgePlugin,
  itemDetail: () => itemDetail,
  statusText: () => statusText
});
module.exports = __toCommonJS(main_exports);
var import_obsidian = require("obsidian");

// src/citation.ts
var UNSAFE = /[[\]|#^<>`$%*_{}\\]/g;
function clean(text) {
  return text.replace(UNSAFE, "").replace(/\s+/g, " ").trim();
}
function authorLabel(item) {
  const names = (item.surnames ?? []).map(clean).filter(Boolean);
  const count = Math.max(item.author_count ?? names.length, names.length);
  let who;
  if (names.length === 0) who = clean(item.title).split(" ").slice(0, 3).join(" ") || item.key;
  else if (count === 1) who = names[0];
  else if (count === 2 && names.length >= 2) who = `${names[0]} & ${names[1]}`;
  else who = `${names[0]} et al.`;
  return item.year ? `${who} ${item.year}` : who;
}
function citeKey(item) {
  const key = item.citekey && /^[\w:.+\-/]+$/.test(item.citekey) ? item.citekey : item.key;
  return key;
}
function linkTarget(item) {
  if (item.note) {
    const name = item.note.split("/").pop() ?? item.note;
    return name.replace(/\.md$/i, "");
  }
  return citeKey(item);
}
function citation(item, format) {
  if (format === "pandoc") return `[@${citeKey(item)}]`;
  return `[[${linkTarget(item)}|${authorLabel(item)}]]`;
}
function pandocQuery(lineBeforeCursor) {
  const match = /\[@([^\]\s[]*)$/.exec(lineBeforeCursor);
  if (!match) return null;
  return { query: match[1], start: match.index };
}

// src/client.ts
var import_child_process = require("child_process");
var import_fs = require("fs");
var http = __toESM(require("http"));
var os = __toESM(require("os"));
var path = __toESM(require("path"));
var STATE_DIR = ".zotero-bridge";
var ClientError = class extends Error {
};
var nodeTransport = (request2) => new Promise((resolve, reject) => {
  const data = request2.body === void 0 ? void 0 : Buffer.from(JSON.stringify(request2.body));
  const headers = { Authorization: `Bearer ${request2.token}` };
  if (data) {
    headers["Content-Type"] = "application/json";
    headers["Content-Length"] = String(data.length);
  }
  const req = http.request(
    {
      host: "127.0.0.1",
      port: request2.port,
      method: request2.method,
      path: request2.path,
      headers,
      timeout: request2.timeoutMs
    },
    (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = { error: text.slice(0, 200) };
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    }
  );
  req.on("timeout", () => req.destroy(new Error("the bridge did not answer in time")));
  req.on("error", reject);
  if (data) req.write(data);
  req.end();
});
var runProcess = (command, args, cwd) => new Promise((resolve) => {
  (0, import_child_process.execFile)(
    command,
    args,
    { cwd, timeout: 10 * 6e4, maxBuffer: 16 << 20 },
    (error, stdout, stderr) => {
      const code = error ? typeof error.code === "number" ? error.code : 127 : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (error?.message ?? "")) });
    }
  );
});
async function readStateFile(file) {
  const flags = import_fs.constants.O_RDONLY | (import_fs.constants.O_NONBLOCK ?? 0) | (import_fs.constants.O_NOFOLLOW ?? 0);
  const handle = await import_fs.promises.open(file, flags);
  try {
    if (!(await handle.stat()).isFile()) throw new ClientError(`${file} is not a plain file`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}
var QUICK_MS = 3e4;
var SLOW_MS = 10 * 6e4;
var BridgeClient = class {
  constructor(vaultPath, zobPath = "zob", transport = nodeTransport, run = runProcess) {
    this.vaultPath = vaultPath;
    this.zobPath = zobPath;
    this.transport = transport;
    this.run = run;
  }
  stateFile(name) {
    return path.join(this.vaultPath, STATE_DIR, name);
  }
  /** The running daemon's port and token, or null when none wrote them. */
  async endpoint() {
    try {
      const data = JSON.parse(await readStateFile(this.stateFile("api.json")));
      const here = typeof data.host !== "string" || data.host.toLowerCase() === os.hostname().toLowerCase();
      if (here && Number.isInteger(data.port) && data.port > 0 && data.port < 65536 && typeof data.token === "string") {
        return { port: data.port, token: data.token };
      }
    } catch {
    }
    return null;
  }
  /** The API's answer; `undefined` when no daemon answers (then the caller falls back). */
  async call(method, route, body, timeoutMs = QUICK_MS) {
    const endpoint = await this.endpoint();
    if (!endpoint) return void 0;
    let answer;
    try {
      answer = await this.transport({ ...endpoint, method, path: route, body, timeoutMs });
    } catch (error) {
      if (error?.code === "ECONNREFUSED") return void 0;
      throw new ClientError(`the bridge did not answer: ${error?.message ?? error}`);
    }
    if (answer.status !== 200) {
      const hint = answer.json?.hint ? ` (${answer.json.hint})` : "";
      throw new ClientError(`${answer.json?.error ?? `HTTP ${answer.status}`}${hint}`);
    }
    return answer.json;
  }
  async zob(args) {
    const result = await this.run(this.zobPath, [...args, "--vault", this.vaultPath], os.homedir() || os.tmpdir());
    if (result.code === 127) {
      throw new ClientError(`cannot run ${this.zobPath}: install the bridge (pip install) or set its path in the settings`);
    }
    return result;
  }
  /** The daemon's state. Without a daemon: `full` runs `zob status` (open conflicts too);
   * else only the item index's time is read — the status bar asks every few seconds and
   * must not start a Python process each time. */
  async status(full = false) {
    const fromApi = await this.call("GET", "/status");
    if (fromApi !== void 0) return summarise(fromApi, "api");
    if (!full) {
      try {
        const index = JSON.parse(await readStateFile(this.stateFile("library.json")));
        return { via: "index", running: false, lastSync: index.generated_at ?? null, conflicts: [], lastError: null };
      } catch {
        return { via: "none", running: false, lastSync: null, conflicts: [], lastError: null };
      }
    }
    const result = await this.zob(["status", "--json"]);
    if (result.code !== 0) return { via: "none", running: false, lastSync: null, conflicts: [], lastError: lastLine(result.stderr) };
    return summarise(JSON.parse(result.stdout), "cli");
  }
  /** Every item of the library (the modal ranks them itself). */
  async items() {
    const fromApi = await this.call("GET", "/items");
    if (fromApi !== void 0) return { complete: !!fromApi.complete, items: fromApi.items };
    let index = await this.readIndex();
    if (index === null) {
      await this.sync();
      index = await this.readIndex();
    }
    if (index === null) throw new ClientError("no item index yet: run `zob sync` once");
    return index;
  }
  async readIndex() {
    try {
      const index = JSON.parse(await readStateFile(this.stateFile("library.json")));
      return { complete: !!index.complete, items: Array.isArray(index.items) ? index.items : [] };
    } catch {
      return null;
    }
  }
  async sync() {
    const fromApi = await this.call("POST", "/sync", {}, SLOW_MS);
    if (fromApi !== void 0) return { via: "api", summary: describeCounts(fromApi.counts) };
    const result = await this.zob(["sync", "--json"]);
    if (result.code !== 0 && result.code !== 1) throw new ClientError(lastLine(result.stderr));
    return { via: "cli", summary: describeCounts(JSON.parse(lastLine(result.stdout))) };
  }
  /** The note of item KEY, made by `zob new`'s pipeline when it has none; its vault path. */
  async createNote(key) {
    if (!/^[A-Z0-9]{8}$/.test(key)) throw new ClientError(`${key} is not a Zotero item key`);
    const fromApi = await this.call("POST", "/notes", { key }, SLOW_MS);
    if (fromApi !== void 0) return { via: "api", path: fromApi.path };
    const result = await this.zob(["new", key, "--first"]);
    if (result.code !== 0 && result.code !== 1) throw new ClientError(lastLine(result.stderr));
    return { via: "cli", path: lastLine(result.stdout) };
  }
  /** The bridge's lineage of the note at PATH; null without a daemon (the plugin then
   * builds it from the notes' properties, `lineageFromNotes`). */
  async lineage(notePath) {
    const fromApi = await this.call("GET", `/lineage?path=${encodeURIComponent(notePath)}`);
    return fromApi === void 0 ? null : fromApi;
  }
};
function lastLine(text) {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}
function describeCounts(counts) {
  if (!counts) return "synced";
  const parts = ["created", "updated", "conflicts", "skipped"].filter((k) => counts[k]).map((k) => `${k} ${counts[k]}`);
  return parts.length ? parts.join(", ") : "nothing to change";
}
function summarise(info, via) {
  const daemon = info?.daemon ?? {};
  return {
    via,
    running: !!daemon.running,
    lastSync: info?.last_sync?.finished_at ?? daemon.last_sync_at ?? null,
    conflicts: info?.conflicts ?? [],
    lastError: daemon.running ? daemon.last_error ?? null : null
  };
}

// src/commands.ts
var COMMANDS = [
  { id: "open-or-create-note", name: "Zotero: open or create paper note" },
  { id: "insert-citation", name: "Zotero: insert citation" },
  { id: "sync-now", name: "Zotero: sync now" },
  { id: "show-conflicts", name: "Zotero: show open conflicts" },
  { id: "open-lineage", name: "Zotero: open lineage view" },
  { id: "mark-pass-1", name: "Zotero: mark pass 1 done", needsNote: true },
  { id: "mark-pass-2", name: "Zotero: mark pass 2 done", needsNote: true },
  { id: "mark-pass-3", name: "Zotero: mark pass 3 done", needsNote: true },
  { id: "status-reading", name: "Zotero: set status reading", needsNote: true },
  { id: "status-dropped", name: "Zotero: set status dropped", needsNote: true },
  { id: "open-in-zotero", name: "Zotero: open item in Zotero", needsNote: true },
  { id: "open-pdf", name: "Zotero: open PDF", needsNote: true }
];
var LINEAGE_VIEW = "zotero-bridge-lineage";

// src/frontmatter.ts
function markPass(fm, pass) {
  fm.pass = pass;
  if (pass === 3) fm.status = "done";
  else if (fm.status !== "dropped") fm.status = "reading";
}
function setStatus(fm, status) {
  fm.status = status;
}
function zoteroLinks(fm) {
  const pick = (value, prefix) => typeof value === "string" && value.startsWith(prefix) ? value : null;
  return {
    select: pick(fm?.zotero, "zotero://select/"),
    pdf: pick(fm?.pdf, "zotero://open-pdf/")
  };
}
function zoteroSelectUri(key) {
  return `zotero://select/library/items/${encodeURIComponent(key)}`;
}
function zoteroPdfUri(attachmentKey) {
  return `zotero://open-pdf/library/items/${encodeURIComponent(attachmentKey)}`;
}

// src/lineage.ts
function paperEntry(paper, indent) {
  const bits = [paper.year ? String(paper.year) : "", passLabel(paper.pass), paper.status ?? ""];
  return {
    label: paper.title || paper.path.split("/").pop().replace(/\.md$/, ""),
    path: paper.path,
    detail: bits.filter(Boolean).join(" \xB7 "),
    indent
  };
}
function passLabel(pass) {
  const n = Number(pass);
  return Number.isInteger(n) && n > 0 ? `pass ${n}` : "";
}
function methodEntries(methods, base) {
  const entries = [];
  for (const method of methods) {
    const indent = base + Math.max(0, (method.depth ?? 1) - 1);
    entries.push({ label: method.name, path: method.path, detail: "method", indent });
    for (const paper of method.proposed_in ?? []) entries.push(paperEntry(paper, indent + 1));
  }
  return entries;
}
function lineageModel(data) {
  if (!data || data.kind === "none") return [];
  const sections = [];
  const add = (title, entries) => {
    if (entries.length) sections.push({ title, entries });
  };
  if (data.kind === "method") {
    add("Proposed in", (data.proposed_in ?? []).map((p) => paperEntry(p, 0)));
    add("Extends (ancestors)", methodEntries(data.ancestors ?? [], 0));
    add("Extended by", (data.extended_by ?? []).map((p) => paperEntry(p, 0)));
    add("Descendants", methodEntries(data.descendants ?? [], 0));
  } else {
    add("Proposes", methodEntries(data.proposes ?? [], 0));
    add("Extends", methodEntries(data.extends ?? [], 0));
  }
  return sections;
}
function methodName(value) {
  if (typeof value !== "string" && typeof value !== "number") return null;
  let text = String(value).trim();
  const link = /^\[\[([^\]|#]+)(?:#[^\]|]*)?(?:\|[^\]]*)?\]\]$/.exec(text);
  if (link) text = link[1].trim().split("/").pop().replace(/\.md$/i, "");
  return text || null;
}
function methodNames(value) {
  const values = Array.isArray(value) ? value : value == null ? [] : [value];
  return values.map(methodName).filter((n) => n !== null);
}
function buildGraph(notes) {
  const nodes = /* @__PURE__ */ new Map();
  const node = (name) => {
    const key = name.toLocaleLowerCase();
    if (!nodes.has(key)) {
      nodes.set(key, { name, proposedIn: [], extendedBy: [], parents: /* @__PURE__ */ new Set(), children: /* @__PURE__ */ new Set() });
    }
    return nodes.get(key);
  };
  const methodPaths = /* @__PURE__ */ new Map();
  for (const note of notes) {
    if (note.kind === "method") methodPaths.set(stem(note.path).toLocaleLowerCase(), note.path);
    if (note.kind !== "paper") continue;
    for (const name of note.proposes) node(name).proposedIn.push(note);
    for (const name of note.extends) node(name).extendedBy.push(note);
    for (const child of note.proposes) {
      for (const parent of note.extends) {
        if (child.toLocaleLowerCase() === parent.toLocaleLowerCase()) continue;
        node(child).parents.add(parent.toLocaleLowerCase());
        node(parent).children.add(child.toLocaleLowerCase());
      }
    }
  }
  return { nodes, methodPaths };
}
function stem(path2) {
  return path2.split("/").pop().replace(/\.md$/i, "");
}
function paperOf(n) {
  return { path: n.path, title: n.title, year: n.year, pass: n.pass, status: n.status };
}
function methodOf(graph, key, depth) {
  const found = graph.nodes.get(key);
  return {
    name: found?.name ?? key,
    path: graph.methodPaths.get(key) ?? null,
    depth,
    proposed_in: (found?.proposedIn ?? []).map(paperOf)
  };
}
function walk(graph, start, up, depth) {
  const found = [];
  const seen = /* @__PURE__ */ new Set([start]);
  let frontier = [start];
  for (let generation = 1; generation <= depth; generation++) {
    const next = [];
    for (const key of frontier) {
      const around = graph.nodes.get(key);
      for (const other of [...up ? around?.parents ?? [] : around?.children ?? []].sort()) {
        if (seen.has(other)) continue;
        seen.add(other);
        next.push(other);
        found.push(methodOf(graph, other, generation));
      }
    }
    frontier = next;
  }
  return found;
}
function lineageFromNotes(notes, path2, depth = 3) {
  const self = notes.find((n) => n.path === path2);
  if (!self || self.kind === "other") return { kind: "none", path: path2 };
  const graph = buildGraph(notes);
  if (self.kind === "method") {
    const key = stem(path2).toLocaleLowerCase();
    const found = graph.nodes.get(key);
    return {
      kind: "method",
      path: path2,
      name: found?.name ?? self.title,
      proposed_in: (found?.proposedIn ?? []).map(paperOf),
      extended_by: (found?.extendedBy ?? []).map(paperOf),
      ancestors: walk(graph, key, true, depth),
      descendants: walk(graph, key, false, depth)
    };
  }
  const named = (names) => names.map((n) => methodOf(graph, n.toLocaleLowerCase(), 1));
  return {
    kind: "paper",
    path: path2,
    title: self.title,
    proposes: named(self.proposes),
    extends: named(self.extends)
  };
}

// src/ranking.ts
function fold(text) {
  return String(text ?? "").toLocaleLowerCase().split(/\s+/).filter(Boolean).join(" ");
}
function rank(item, query) {
  const q = fold(query);
  if (!q) return null;
  const title = fold(item.title);
  if (title === q) return 0;
  const citekey = fold(item.citekey);
  if (citekey && citekey.startsWith(q)) return 1;
  const names = [...item.authors ?? [], ...item.surnames ?? []].map(fold);
  if (names.some((n) => n === q || n.startsWith(q) || n.split(" ").pop() === q)) return 2;
  if (String(item.year ?? "") === q) return 3;
  const hay = [
    title,
    citekey,
    names.join(" "),
    fold(item.venue),
    String(item.year ?? ""),
    fold(item.key)
  ].join(" ");
  if (q.split(" ").every((word) => hay.includes(word))) return title.includes(q) ? 4 : 5;
  return null;
}
function rankItems(items, query, limit = 50) {
  if (!fold(query)) {
    return [...items].sort((a, b) => Number(b.note !== null) - Number(a.note !== null) || (b.year ?? 0) - (a.year ?? 0) || fold(a.title).localeCompare(fold(b.title))).slice(0, limit);
  }
  const scored = [];
  for (const item of items) {
    const tier = rank(item, query);
    if (tier !== null) scored.push([tier, item]);
  }
  scored.sort((a, b) => a[0] - b[0] || compare(fold(a[1].title), fold(b[1].title)) || compare(a[1].key, b[1].key));
  return scored.slice(0, limit).map(([, item]) => item);
}
function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// src/types.ts
var DEFAULT_SETTINGS = { citationFormat: "wikilink", zobPath: "zob" };

// src/main.ts
var ITEMS_FRESH_MS = 1e4;
var STATUS_EVERY_MS = 15e3;
var ZoteroBridgePlugin = class extends import_obsidian.Plugin {
  constructor() {
    super(...arguments);
    this.settings = { ...DEFAULT_SETTINGS };
    this.status = { via: "none", running: false, lastSync: null, conflicts: [], lastError: null };
    this.items = [];
    this.itemsAt = 0;
    this.loading = null;
    this.statusEl = null;
  }
  async onload() {
    this.settings = { ...DEFAULT_SETTINGS, ...await this.loadData() ?? {} };
    this.client = new BridgeClient(this.vaultPath(), this.settings.zobPath);
    this.registerView(LINEAGE_VIEW, (leaf) => new LineageView(leaf, this));
    this.addCommands();
    this.registerEditorSuggest(new CitationSuggest(this.app, this));
    this.addSettingTab(new BridgeSettingTab(this.app, this));
    this.statusEl = this.addStatusBarItem();
    this.statusEl.addClass("mod-clickable");
    this.statusEl.setText("Zotero \u2026");
    this.registerDomEvent(this.statusEl, "click", () => void this.showConflicts());
    this.app.workspace.onLayoutReady(() => void this.refreshStatus());
    this.registerInterval(window.setInterval(() => void this.refreshStatus(), STATUS_EVERY_MS));
  }
  vaultPath() {
    const adapter = this.app.vault.adapter;
    return adapter instanceof import_obsidian.FileSystemAdapter ? adapter.getBasePath() : "";
  }
  async saveSettings() {
    await this.saveData(this.settings);
    this.client = new BridgeClient(this.vaultPath(), this.settings.zobPath);
  }
  /** Every command, in the order of `COMMANDS`. */
  addCommands() {
    const run = {
      "open-or-create-note": () => this.pickItem("Open or create the note of\u2026", (item) => this.openItem(item)),
      "sync-now": () => this.syncNow(),
      "show-conflicts": () => this.showConflicts(),
      "open-lineage": () => this.openLineage()
    };
    const onNote = {
      "mark-pass-1": (f) => this.editProperties(f, (fm) => markPass(fm, 1), "pass 1 done"),
      "mark-pass-2": (f) => this.editProperties(f, (fm) => markPass(fm, 2), "pass 2 done"),
      "mark-pass-3": (f) => this.editProperties(f, (fm) => markPass(fm, 3), "pass 3 done"),
      "status-reading": (f) => this.editProperties(f, (fm) => setStatus(fm, "reading"), "reading"),
      "status-dropped": (f) => this.editProperties(f, (fm) => setStatus(fm, "dropped"), "dropped"),
      "open-in-zotero": (f) => this.openInZotero(f, "select"),
      "open-pdf": (f) => this.openInZotero(f, "pdf")
    };
    for (const spec of COMMANDS) {
      if (spec.id === "insert-citation") {
        this.addCommand({
          id: spec.id,
          name: spec.name,
          editorCallback: (editor) => this.pickItem("Cite\u2026", (item) => editor.replaceSelection(citation(item, this.settings.citationFormat)))
        });
      } else if (spec.needsNote) {
        this.addCommand({
          id: spec.id,
          name: spec.name,
          checkCallback: (checking) => {
            const file = this.paperNote();
            if (!file) return false;
            if (!checking) void onNote[spec.id](file);
            return true;
          }
        });
      } else {
        this.addCommand({ id: spec.id, name: spec.name, callback: () => void run[spec.id]() });
      }
    }
  }
  /** The active note when it is a paper note of the bridge (it has a `zotero_key`). */
  paperNote() {
    const file = this.app.workspace.getActiveFile();
    if (!file || file.extension !== "md") return null;
    const fm = this.app.metadataCache.getFileCache(file)?.frontmatter;
    return fm && typeof fm.zotero_key === "string" ? file : null;
  }
  /** The whole library, fetched at most every ITEMS_FRESH_MS, one fetch at a time (the
   * `[@` suggester asks at every keystroke). */
  async loadItems(force = false) {
    if (!force && Date.now() - this.itemsAt <= ITEMS_FRESH_MS && this.items.length) return this.items;
    this.loading ?? (this.loading = this.client.items().then((index) => {
      this.items = index.items;
      this.itemsAt = Date.now();
      return this.items;
    }).finally(() => {
      this.loading = null;
    }));
    return this.loading;
  }
  async pickItem(placeholder, chosen) {
    try {
      const items = await this.loadItems();
      new ItemModal(this.app, items, placeholder, chosen).open();
    } catch (error) {
      new import_obsidian.Notice(`Zotero: ${error.message}`);
    }
  }
  async openItem(item) {
    try {
      let notePath = item.note;
      if (!notePath) {
        new import_obsidian.Notice(`Zotero: creating the note of ${item.citekey || item.key}\u2026`);
        notePath = (await this.client.createNote(item.key)).path;
        this.itemsAt = 0;
      }
      await this.app.workspace.openLinkText(notePath, "", false);
    } catch (error) {
      new import_obsidian.Notice(`Zotero: ${error.message}`);
    }
  }
  async syncNow() {
    new import_obsidian.Notice("Zotero: syncing\u2026");
    try {
      const done = await this.client.sync();
      new import_obsidian.Notice(`Zotero: ${done.summary}`);
      this.itemsAt = 0;
    } catch (error) {
      new import_obsidian.Notice(`Zotero: sync failed: ${error.message}`);
    }
    await this.refreshStatus();
  }
  async refreshStatus() {
    try {
      this.status = await this.client.status();
    } catch (error) {
      this.status = { via: "none", running: false, lastSync: null, conflicts: [], lastError: error.message };
    }
    this.statusEl?.setText(statusText(this.status));
    this.statusEl?.setAttr("aria-label", this.status.lastError ?? "Zotero bridge: click for open conflicts");
  }
  async showConflicts() {
    if (this.status.via !== "api") {
      try {
        this.status = await this.client.status(true);
      } catch (error) {
        new import_obsidian.Notice(`Zotero: ${error.message}`);
        return;
      }
    }
    if (!this.status.conflicts.length) {
      new import_obsidian.Notice("Zotero: no open conflicts");
      return;
    }
    new ConflictModal(this.app, this.status.conflicts, (c) => this.app.workspace.openLinkText(c.path, "", false)).open();
  }
  async editProperties(file, change, what) {
    await this.app.fileManager.processFrontMatter(file, change);
    new import_obsidian.Notice(`Zotero: ${file.basename}: ${what}`);
  }
  openInZotero(file, what) {
    const fm = this.app.metadataCache.getFileCache(file)?.frontmatter;
    const links = zoteroLinks(fm);
    const item = this.items.find((i) => i.key === fm?.zotero_key);
    const uri = what === "select" ? links.select ?? zoteroSelectUri(String(fm?.zotero_key)) : links.pdf ?? (item?.pdf ? zoteroPdfUri(item.pdf) : null);
    if (!uri) {
      new import_obsidian.Notice("Zotero: this paper has no PDF in Zotero");
      return;
    }
    window.open(uri);
  }
  async openLineage() {
    const existing = this.app.workspace.getLeavesOfType(LINEAGE_VIEW)[0];
    const leaf = existing ?? this.app.workspace.getRightLeaf(false);
    if (!leaf) return;
    await leaf.setViewState({ type: LINEAGE_VIEW, active: true });
    this.app.workspace.revealLeaf(leaf);
  }
  /** Every note's lineage facts, from Obsidian's metadata cache (no daemon needed). */
  noteFacts() {
    return this.app.vault.getMarkdownFiles().map((file) => {
      const fm = this.app.metadataCache.getFileCache(file)?.frontmatter ?? {};
      const kind = typeof fm.zotero_key === "string" ? "paper" : fm.type === "method" ? "method" : "other";
      return {
        path: file.path,
        kind,
        title: String(fm.title ?? file.basename),
        year: Number.isInteger(fm.year) ? fm.year : null,
        pass: fm.pass,
        status: fm.status,
        proposes: methodNames(fm.proposes),
        extends: methodNames(fm.extends)
      };
    });
  }
};
function statusText(status) {
  const state = status.via === "none" ? "never synced" : status.running ? "watching" : "zob watch not running";
  const last = status.lastSync ? ` \xB7 synced ${status.lastSync.slice(11, 16)}` : "";
  const conflicts = status.conflicts.length ? ` \xB7 ${status.conflicts.length} conflict(s)` : "";
  return `Zotero: ${state}${last}${conflicts}`;
}
function itemDetail(item) {
  const who = item.authors.slice(0, 3).join(", ") + (item.author_count > 3 ? " et al." : "");
  const bits = [who, item.year ? String(item.year) : "", item.venue, item.citekey];
  if (item.note) bits.push(`pass ${item.pass ?? 0}${item.status ? ` \xB7 ${item.status}` : ""}`);
  return bits.filter(Boolean).join(" \xB7 ");
}
var ItemModal = class extends import_obsidian.SuggestModal {
  constructor(app, items, placeholder, chosen) {
    super(app);
    this.items = items;
    this.chosen = chosen;
    this.setPlaceholder(placeholder);
  }
  getSuggestions(query) {
    return rankItems(this.items, query, 50);
  }
  renderSuggestion(item, el) {
    el.createDiv({ text: (item.note ? "\u25CF " : "\u25CB ") + (item.title || item.key) });
    el.createEl("small", { text: itemDetail(item) });
  }
  onChooseSuggestion(item) {
    void this.chosen(item);
  }
};
var ConflictModal = class extends import_obsidian.SuggestModal {
  constructor(app, conflicts, chosen) {
    super(app);
    this.conflicts = conflicts;
    this.chosen = chosen;
    this.setPlaceholder("Open conflicts: pick one to open its note");
  }
  getSuggestions(query) {
    const q = query.toLocaleLowerCase();
    return this.conflicts.filter((c) => `${c.path} ${c.field}`.toLocaleLowerCase().includes(q));
  }
  renderSuggestion(conflict, el) {
    el.createDiv({ text: conflict.path });
    el.createEl("small", { text: `${conflict.field} \xB7 since ${conflict.since}` });
  }
  onChooseSuggestion(conflict) {
    void this.chosen(conflict);
  }
};
var CitationSuggest = class extends import_obsidian.EditorSuggest {
  constructor(app, plugin) {
    super(app);
    this.plugin = plugin;
  }
  onTrigger(cursor, editor) {
    const found = pandocQuery(editor.getLine(cursor.line).slice(0, cursor.ch));
    if (!found) return null;
    return { start: { line: cursor.line, ch: found.start }, end: cursor, query: found.query };
  }
  async getSuggestions(context) {
    const items = await this.plugin.loadItems().catch(() => []);
    return rankItems(items, context.query, 20);
  }
  renderSuggestion(item, el) {
    el.createDiv({ text: item.title || item.key });
    el.createEl("small", { text: itemDetail(item) });
  }
  selectSuggestion(item) {
    const context = this.context;
    if (!context) return;
    const end = { ...context.end };
    if (context.editor.getLine(end.line).charAt(end.ch) === "]") end.ch += 1;
    context.editor.replaceRange(citation(item, this.plugin.settings.citationFormat), context.start, end);
    this.close();
  }
};
var LineageView = class extends import_obsidian.ItemView {
  constructor(leaf, plugin) {
    super(leaf);
    this.plugin = plugin;
    this.path = null;
  }
  getViewType() {
    return LINEAGE_VIEW;
  }
  getDisplayText() {
    return "Lineage";
  }
  getIcon() {
    return "git-fork";
  }
  async onOpen() {
    this.registerEvent(this.app.workspace.on("file-open", () => void this.render()));
    this.registerEvent(this.app.metadataCache.on("resolved", () => void this.render()));
    await this.render();
  }
  async render() {
    const file = this.app.workspace.getActiveFile();
    const container = this.contentEl;
    if (!file) return;
    this.path = file.path;
    let data = null;
    try {
      data = await this.plugin.client.lineage(file.path);
    } catch {
      data = null;
    }
    if (this.path !== file.path) return;
    data = data ?? lineageFromNotes(this.plugin.noteFacts(), file.path);
    container.empty();
    container.createEl("h4", { text: data.name ?? data.title ?? file.basename });
    const sections = lineageModel(data);
    if (!sections.length) container.createEl("p", { text: "No lineage: not a paper or method note, or no proposes/extends yet." });
    for (const section of sections) {
      container.createEl("h5", { text: section.title });
      for (const entry of section.entries) {
        const row = container.createDiv({ cls: "zob-lineage-entry" });
        row.style.paddingLeft = `${entry.indent * 14}px`;
        const link = row.createEl("a", { text: entry.label, cls: entry.path ? "internal-link" : "" });
        if (entry.path) {
          const target = entry.path;
          link.addEventListener("click", () => void this.app.workspace.openLinkText(target, file.path, false));
        }
        if (entry.detail) row.createEl("small", { text: ` ${entry.detail}` });
      }
    }
  }
};
var BridgeSettingTab = class extends import_obsidian.PluginSettingTab {
  constructor(app, plugin) {
    super(app, plugin);
    this.plugin = plugin;
  }
  display() {
    const { containerEl } = this;
    containerEl.empty();
    new import_obsidian.Setting(containerEl).setName("Citation format").setDesc("[[citekey|Author Year]] links to the paper note; [@citekey] is Pandoc's.").addDropdown((d) => d.addOptions({ wikilink: "[[citekey|Author Year]]", pandoc: "[@citekey]" }).setValue(this.plugin.settings.citationFormat).onChange(async (value) => {
      this.plugin.settings.citationFormat = value;
      await this.plugin.saveSettings();
    }));
    new import_obsidian.Setting(containerEl).setName("zob command").setDesc("Used when `zob watch` is not running: the path of the zob program.").addText((t) => t.setValue(this.plugin.settings.zobPath).onChange(async (value) => {
      this.plugin.settings.zobPath = value.trim() || "zob";
      await this.plugin.saveSettings();
    }));
  }
};
// Annotate the CommonJS export names for ESM import in node:
0 && (module.exports = {
  CitationSuggest,
  ItemModal,
  LineageView,
  itemDetail,
  statusText
});
