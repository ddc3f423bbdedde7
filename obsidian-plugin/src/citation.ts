/** What "insert citation" writes: `[[citekey|Author Year]]` or Pandoc's `[@citekey]`. */
import type { CitationFormat, IndexItem } from "./types";

/** Characters that would end or split a link, or start something else, in a label. */
const UNSAFE = /[[\]|#^<>`$%*_{}\\]/g;

export function clean(text: string): string {
  return text.replace(UNSAFE, "").replace(/\s+/g, " ").trim();
}

/** `He 2016`, `He & Zhang 2016`, `He et al. 2016`; no author: the title's first words. */
export function authorLabel(item: IndexItem): string {
  const names = (item.surnames ?? []).map(clean).filter(Boolean);
  const count = Math.max(item.author_count ?? names.length, names.length);
  let who: string;
  if (names.length === 0) who = clean(item.title).split(" ").slice(0, 3).join(" ") || item.key;
  else if (count === 1) who = names[0];
  else if (count === 2 && names.length >= 2) who = `${names[0]} & ${names[1]}`;
  else who = `${names[0]} et al.`;
  return item.year ? `${who} ${item.year}` : who;
}

/** The key a citation names: the citation key, else the Zotero item key. */
export function citeKey(item: IndexItem): string {
  const key = item.citekey && /^[\w:.+\-/]+$/.test(item.citekey) ? item.citekey : item.key;
  return key;
}

/** The link target: the paper note's name when it has one (the bridge names notes by
 * citation key), else the citation key (the link resolves once the note is made). */
export function linkTarget(item: IndexItem): string {
  if (item.note) {
    const name = item.note.split("/").pop() ?? item.note;
    return name.replace(/\.md$/i, "");
  }
  return citeKey(item);
}

export function citation(item: IndexItem, format: CitationFormat): string {
  if (format === "pandoc") return `[@${citeKey(item)}]`;
  return `[[${linkTarget(item)}|${authorLabel(item)}]]`;
}

/** For the `[@` suggester: what the user typed after `[@`, when the cursor is in one. */
export function pandocQuery(lineBeforeCursor: string): { query: string; start: number } | null {
  const match = /\[@([^\]\s[]*)$/.exec(lineBeforeCursor);
  if (!match) return null;
  return { query: match[1], start: match.index };
}

/** The `[@` suggester's replacement from its `[@` to the cursor, in the chosen format. */
export function suggestionText(item: IndexItem, format: CitationFormat): string {
  return citation(item, format);
}
