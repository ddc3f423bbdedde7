/** The modal's order, the same as `bridge.library_index.rank`: the exact title first, then
 * the citation key, then an author, then the year, then every word anywhere. */
import type { IndexItem } from "./types";

export function fold(text: unknown): string {
  return String(text ?? "").toLocaleLowerCase().split(/\s+/).filter(Boolean).join(" ");
}

/** The item's tier for `query` (lower is better), or null when it does not match. */
export function rank(item: IndexItem, query: string): number | null {
  const q = fold(query);
  if (!q) return null;
  const title = fold(item.title);
  if (title === q) return 0;
  const citekey = fold(item.citekey);
  if (citekey && citekey.startsWith(q)) return 1;
  const names = [...(item.authors ?? []), ...(item.surnames ?? [])].map(fold);
  if (names.some((n) => n === q || n.startsWith(q) || n.split(" ").pop() === q)) return 2;
  if (String(item.year ?? "") === q) return 3;
  const hay = [title, citekey, names.join(" "), fold(item.venue), String(item.year ?? ""),
    fold(item.key)].join(" ");
  if (q.split(" ").every((word) => hay.includes(word))) return title.includes(q) ? 4 : 5;
  return null;
}

/** Matching items, best first; an empty query lists noted papers first, newest first. */
export function rankItems(items: IndexItem[], query: string, limit = 50): IndexItem[] {
  if (!fold(query)) {
    return [...items]
      .sort((a, b) => Number(b.note !== null) - Number(a.note !== null) ||
        (b.year ?? 0) - (a.year ?? 0) || fold(a.title).localeCompare(fold(b.title)))
      .slice(0, limit);
  }
  const scored: [number, IndexItem][] = [];
  for (const item of items) {
    const tier = rank(item, query);
    if (tier !== null) scored.push([tier, item]);
  }
  scored.sort((a, b) => a[0] - b[0] || compare(fold(a[1].title), fold(b[1].title)) ||
    compare(a[1].key, b[1].key));
  return scored.slice(0, limit).map(([, item]) => item);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
