/** The reading commands' changes to a paper note's properties. `main.ts` runs them inside
 * `app.fileManager.processFrontMatter`, so Obsidian itself writes the file. */

export const STATUSES = ["to-read", "reading", "done", "dropped"] as const;
export type ReadingStatus = (typeof STATUSES)[number];

/** Pass N finished: `pass` (passes finished, 0-3) becomes N, and the status follows:
 * reading after pass 1 or 2 (a dropped paper stays dropped), done after pass 3. */
export function markPass(fm: Record<string, unknown>, pass: 1 | 2 | 3): void {
  fm.pass = pass;
  if (pass === 3) fm.status = "done";
  else if (fm.status !== "dropped") fm.status = "reading";
}

export function setStatus(fm: Record<string, unknown>, status: ReadingStatus): void {
  fm.status = status;
}

/** The Zotero item a note belongs to, from its bridge-owned properties. */
export function zoteroLinks(fm: Record<string, unknown> | undefined | null): {
  select: string | null;
  pdf: string | null;
} {
  const pick = (value: unknown, prefix: string): string | null =>
    typeof value === "string" && value.startsWith(prefix) ? value : null;
  return {
    select: pick(fm?.zotero, "zotero://select/"),
    pdf: pick(fm?.pdf, "zotero://open-pdf/"),
  };
}

export function zoteroSelectUri(key: string): string {
  return `zotero://select/library/items/${encodeURIComponent(key)}`;
}

export function zoteroPdfUri(attachmentKey: string): string {
  return `zotero://open-pdf/library/items/${encodeURIComponent(attachmentKey)}`;
}
