/** The Obsidian plugin of zotero-obsidian-bridge: cite, open and create paper notes, sync,
 * reading commands and a lineage panel. The bridge (`zob`) does all writing of notes; the
 * plugin writes only properties the user asks to change, through Obsidian's own API. */
import {
  App, Editor, EditorPosition, EditorSuggest, EditorSuggestContext, EditorSuggestTriggerInfo,
  FileSystemAdapter, ItemView, Notice, Plugin, PluginSettingTab, Setting,
  SuggestModal, TFile, WorkspaceLeaf,
} from "obsidian";
import { citation, pandocQuery } from "./citation";
import { BridgeClient } from "./client";
import { COMMANDS, LINEAGE_VIEW } from "./commands";
import { markPass, setStatus, zoteroLinks, zoteroPdfUri, zoteroSelectUri } from "./frontmatter";
import { lineageFromNotes, lineageModel, methodNames, NoteFacts } from "./lineage";
import { rankItems } from "./ranking";
import { Conflict, DEFAULT_SETTINGS, IndexItem, Settings, StatusInfo } from "./types";

const ITEMS_FRESH_MS = 10_000;
const STATUS_EVERY_MS = 15_000;

export default class ZoteroBridgePlugin extends Plugin {
  settings: Settings = { ...DEFAULT_SETTINGS };
  client!: BridgeClient;
  status: StatusInfo = { via: "none", running: false, lastSync: null, conflicts: [], lastError: null };
  private items: IndexItem[] = [];
  private itemsAt = 0;
  private loading: Promise<IndexItem[]> | null = null;
  private statusEl: HTMLElement | null = null;

  async onload(): Promise<void> {
    this.settings = { ...DEFAULT_SETTINGS, ...((await this.loadData()) ?? {}) };
    this.client = new BridgeClient(this.vaultPath(), this.settings.zobPath);
    this.registerView(LINEAGE_VIEW, (leaf) => new LineageView(leaf, this));
    this.addCommands();
    this.registerEditorSuggest(new CitationSuggest(this.app, this));
    this.addSettingTab(new BridgeSettingTab(this.app, this));
    this.statusEl = this.addStatusBarItem();
    this.statusEl.addClass("mod-clickable");
    this.statusEl.setText("Zotero …");
    this.registerDomEvent(this.statusEl, "click", () => void this.showConflicts());
    this.app.workspace.onLayoutReady(() => void this.refreshStatus());
    this.registerInterval(window.setInterval(() => void this.refreshStatus(), STATUS_EVERY_MS));
  }

  vaultPath(): string {
    const adapter = this.app.vault.adapter;
    return adapter instanceof FileSystemAdapter ? adapter.getBasePath() : "";
  }

  async saveSettings(): Promise<void> {
    await this.saveData(this.settings);
    this.client = new BridgeClient(this.vaultPath(), this.settings.zobPath);
  }

  /** Every command, in the order of `COMMANDS`. */
  addCommands(): void {
    const run: Record<string, () => unknown> = {
      "open-or-create-note": () => this.pickItem("Open or create the note of…", (item) => this.openItem(item)),
      "sync-now": () => this.syncNow(),
      "show-conflicts": () => this.showConflicts(),
      "open-lineage": () => this.openLineage(),
    };
    const onNote: Record<string, (file: TFile) => unknown> = {
      "mark-pass-1": (f) => this.editProperties(f, (fm) => markPass(fm, 1), "pass 1 done"),
      "mark-pass-2": (f) => this.editProperties(f, (fm) => markPass(fm, 2), "pass 2 done"),
      "mark-pass-3": (f) => this.editProperties(f, (fm) => markPass(fm, 3), "pass 3 done"),
      "status-reading": (f) => this.editProperties(f, (fm) => setStatus(fm, "reading"), "reading"),
      "status-dropped": (f) => this.editProperties(f, (fm) => setStatus(fm, "dropped"), "dropped"),
      "open-in-zotero": (f) => this.openInZotero(f, "select"),
      "open-pdf": (f) => this.openInZotero(f, "pdf"),
    };
    for (const spec of COMMANDS) {
      if (spec.id === "insert-citation") {
        this.addCommand({
          id: spec.id, name: spec.name,
          editorCallback: (editor: Editor) =>
            this.pickItem("Cite…", (item) => editor.replaceSelection(citation(item, this.settings.citationFormat))),
        });
      } else if (spec.needsNote) {
        this.addCommand({
          id: spec.id, name: spec.name,
          checkCallback: (checking: boolean) => {
            const file = this.paperNote();
            if (!file) return false;
            if (!checking) void onNote[spec.id](file);
            return true;
          },
        });
      } else {
        this.addCommand({ id: spec.id, name: spec.name, callback: () => void run[spec.id]() });
      }
    }
  }

  /** The active note when it is a paper note of the bridge (it has a `zotero_key`). */
  paperNote(): TFile | null {
    const file = this.app.workspace.getActiveFile();
    if (!file || file.extension !== "md") return null;
    const fm = this.app.metadataCache.getFileCache(file)?.frontmatter;
    return fm && typeof fm.zotero_key === "string" ? file : null;
  }

  /** The whole library, fetched at most every ITEMS_FRESH_MS, one fetch at a time (the
   * `[@` suggester asks at every keystroke). */
  async loadItems(force = false): Promise<IndexItem[]> {
    if (!force && Date.now() - this.itemsAt <= ITEMS_FRESH_MS && this.items.length) return this.items;
    this.loading ??= this.client.items()
      .then((index) => {
        this.items = index.items;
        this.itemsAt = Date.now();
        return this.items;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  async pickItem(placeholder: string, chosen: (item: IndexItem) => unknown): Promise<void> {
    try {
      const items = await this.loadItems();
      new ItemModal(this.app, items, placeholder, chosen).open();
    } catch (error) {
      new Notice(`Zotero: ${(error as Error).message}`);
    }
  }

  async openItem(item: IndexItem): Promise<void> {
    try {
      let notePath = item.note;
      if (!notePath) {
        new Notice(`Zotero: creating the note of ${item.citekey || item.key}…`);
        notePath = (await this.client.createNote(item.key)).path;
        this.itemsAt = 0;
      }
      await this.app.workspace.openLinkText(notePath, "", false);
    } catch (error) {
      new Notice(`Zotero: ${(error as Error).message}`);
    }
  }

  async syncNow(): Promise<void> {
    new Notice("Zotero: syncing…");
    try {
      const done = await this.client.sync();
      new Notice(`Zotero: ${done.summary}`);
      this.itemsAt = 0;
    } catch (error) {
      new Notice(`Zotero: sync failed: ${(error as Error).message}`);
    }
    await this.refreshStatus();
  }

  async refreshStatus(): Promise<void> {
    try {
      this.status = await this.client.status();
    } catch (error) {
      this.status = { via: "none", running: false, lastSync: null, conflicts: [], lastError: (error as Error).message };
    }
    this.statusEl?.setText(statusText(this.status));
    this.statusEl?.setAttr("aria-label", this.status.lastError ?? "Zotero bridge: click for open conflicts");
  }

  async showConflicts(): Promise<void> {
    if (this.status.via !== "api") {
      try {
        this.status = await this.client.status(true); // no daemon: ask `zob status`
      } catch (error) {
        new Notice(`Zotero: ${(error as Error).message}`);
        return;
      }
    }
    if (!this.status.conflicts.length) {
      new Notice("Zotero: no open conflicts");
      return;
    }
    new ConflictModal(this.app, this.status.conflicts, (c) => this.app.workspace.openLinkText(c.path, "", false)).open();
  }

  async editProperties(file: TFile, change: (fm: Record<string, unknown>) => void, what: string): Promise<void> {
    await this.app.fileManager.processFrontMatter(file, change);
    new Notice(`Zotero: ${file.basename}: ${what}`);
  }

  openInZotero(file: TFile, what: "select" | "pdf"): void {
    const fm = this.app.metadataCache.getFileCache(file)?.frontmatter;
    const links = zoteroLinks(fm);
    const item = this.items.find((i) => i.key === fm?.zotero_key);
    const uri = what === "select"
      ? links.select ?? zoteroSelectUri(String(fm?.zotero_key))
      : links.pdf ?? (item?.pdf ? zoteroPdfUri(item.pdf) : null);
    if (!uri) {
      new Notice("Zotero: this paper has no PDF in Zotero");
      return;
    }
    window.open(uri);
  }

  async openLineage(): Promise<void> {
    const existing = this.app.workspace.getLeavesOfType(LINEAGE_VIEW)[0];
    const leaf = existing ?? this.app.workspace.getRightLeaf(false);
    if (!leaf) return;
    await leaf.setViewState({ type: LINEAGE_VIEW, active: true });
    this.app.workspace.revealLeaf(leaf);
  }

  /** Every note's lineage facts, from Obsidian's metadata cache (no daemon needed). */
  noteFacts(): NoteFacts[] {
    return this.app.vault.getMarkdownFiles().map((file) => {
      const fm = this.app.metadataCache.getFileCache(file)?.frontmatter ?? {};
      const kind = typeof fm.zotero_key === "string" ? "paper" : fm.type === "method" ? "method" : "other";
      return {
        path: file.path, kind, title: String(fm.title ?? file.basename),
        year: Number.isInteger(fm.year) ? fm.year : null, pass: fm.pass, status: fm.status,
        proposes: methodNames(fm.proposes), extends: methodNames(fm.extends),
      } as NoteFacts;
    });
  }
}

export function statusText(status: StatusInfo): string {
  const state = status.via === "none" ? "never synced" : status.running ? "watching" : "zob watch not running";
  const last = status.lastSync ? ` · synced ${status.lastSync.slice(11, 16)}` : "";
  const conflicts = status.conflicts.length ? ` · ${status.conflicts.length} conflict(s)` : "";
  return `Zotero: ${state}${last}${conflicts}`;
}

export function itemDetail(item: IndexItem): string {
  const who = item.authors.slice(0, 3).join(", ") + (item.author_count > 3 ? " et al." : "");
  const bits = [who, item.year ? String(item.year) : "", item.venue, item.citekey];
  if (item.note) bits.push(`pass ${item.pass ?? 0}${item.status ? ` · ${item.status}` : ""}`);
  return bits.filter(Boolean).join(" · ");
}

export class ItemModal extends SuggestModal<IndexItem> {
  constructor(app: App, private items: IndexItem[], placeholder: string, private chosen: (item: IndexItem) => unknown) {
    super(app);
    this.setPlaceholder(placeholder);
  }

  getSuggestions(query: string): IndexItem[] {
    return rankItems(this.items, query, 50);
  }

  renderSuggestion(item: IndexItem, el: HTMLElement): void {
    el.createDiv({ text: (item.note ? "● " : "○ ") + (item.title || item.key) });
    el.createEl("small", { text: itemDetail(item) });
  }

  onChooseSuggestion(item: IndexItem): void {
    void this.chosen(item);
  }
}

class ConflictModal extends SuggestModal<Conflict> {
  constructor(app: App, private conflicts: Conflict[], private chosen: (c: Conflict) => unknown) {
    super(app);
    this.setPlaceholder("Open conflicts: pick one to open its note");
  }

  getSuggestions(query: string): Conflict[] {
    const q = query.toLocaleLowerCase();
    return this.conflicts.filter((c) => `${c.path} ${c.field}`.toLocaleLowerCase().includes(q));
  }

  renderSuggestion(conflict: Conflict, el: HTMLElement): void {
    el.createDiv({ text: conflict.path });
    el.createEl("small", { text: `${conflict.field} · since ${conflict.since}` });
  }

  onChooseSuggestion(conflict: Conflict): void {
    void this.chosen(conflict);
  }
}

/** `[@` while typing: the library, ranked; the choice replaces `[@query` (and a `]`
 * auto-paired after the cursor) with the citation in the chosen format. */
export class CitationSuggest extends EditorSuggest<IndexItem> {
  constructor(app: App, private plugin: ZoteroBridgePlugin) {
    super(app);
  }

  onTrigger(cursor: EditorPosition, editor: Editor): EditorSuggestTriggerInfo | null {
    const found = pandocQuery(editor.getLine(cursor.line).slice(0, cursor.ch));
    if (!found) return null;
    return { start: { line: cursor.line, ch: found.start }, end: cursor, query: found.query };
  }

  async getSuggestions(context: EditorSuggestContext): Promise<IndexItem[]> {
    const items = await this.plugin.loadItems().catch(() => [] as IndexItem[]);
    return rankItems(items, context.query, 20);
  }

  renderSuggestion(item: IndexItem, el: HTMLElement): void {
    el.createDiv({ text: item.title || item.key });
    el.createEl("small", { text: itemDetail(item) });
  }

  selectSuggestion(item: IndexItem): void {
    const context = this.context;
    if (!context) return;
    const end = { ...context.end };
    if (context.editor.getLine(end.line).charAt(end.ch) === "]") end.ch += 1;
    context.editor.replaceRange(citation(item, this.plugin.settings.citationFormat), context.start, end);
    this.close();
  }
}

export class LineageView extends ItemView {
  private path: string | null = null;

  constructor(leaf: WorkspaceLeaf, private plugin: ZoteroBridgePlugin) {
    super(leaf);
  }

  getViewType(): string {
    return LINEAGE_VIEW;
  }

  getDisplayText(): string {
    return "Lineage";
  }

  getIcon(): string {
    return "git-fork";
  }

  async onOpen(): Promise<void> {
    this.registerEvent(this.app.workspace.on("file-open", () => void this.render()));
    this.registerEvent(this.app.metadataCache.on("resolved", () => void this.render()));
    await this.render();
  }

  async render(): Promise<void> {
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
    if (this.path !== file.path) return; // another note was opened meanwhile
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
}

class BridgeSettingTab extends PluginSettingTab {
  constructor(app: App, private plugin: ZoteroBridgePlugin) {
    super(app, plugin);
  }

  display(): void {
    const { containerEl } = this;
    containerEl.empty();
    new Setting(containerEl)
      .setName("Citation format")
      .setDesc("[[citekey|Author Year]] links to the paper note; [@citekey] is Pandoc's.")
      .addDropdown((d) => d
        .addOptions({ wikilink: "[[citekey|Author Year]]", pandoc: "[@citekey]" })
        .setValue(this.plugin.settings.citationFormat)
        .onChange(async (value) => {
          this.plugin.settings.citationFormat = value as Settings["citationFormat"];
          await this.plugin.saveSettings();
        }));
    new Setting(containerEl)
      .setName("zob command")
      .setDesc("Used when `zob watch` is not running: the path of the zob program.")
      .addText((t) => t.setValue(this.plugin.settings.zobPath).onChange(async (value) => {
        this.plugin.settings.zobPath = value.trim() || "zob";
        await this.plugin.saveSettings();
      }));
  }
}
