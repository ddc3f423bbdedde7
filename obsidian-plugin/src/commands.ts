/** Every command the plugin adds (the README's "In Obsidian" section lists the same). */

export interface CommandSpec {
  id: string;
  name: string;
  /** needs a note open (reading commands, lineage) */
  needsNote?: boolean;
}

export const COMMANDS: CommandSpec[] = [
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
  { id: "open-pdf", name: "Zotero: open PDF", needsNote: true },
];

export const LINEAGE_VIEW = "zotero-bridge-lineage";
