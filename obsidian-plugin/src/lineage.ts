/** The lineage side panel's model: sections of clickable entries, from the bridge's answer
 * (`GET /lineage`) or, without the daemon, from the notes' own properties. */
import type { LineageData, LineageMethod, LineagePaper } from "./types";

export interface Entry {
  label: string;
  path: string | null; // the note it opens; null: no note yet
  detail: string;
  indent: number;
}

export interface Section {
  title: string;
  entries: Entry[];
}

function paperEntry(paper: LineagePaper, indent: number): Entry {
  const bits = [paper.year ? String(paper.year) : "", passLabel(paper.pass), paper.status ?? ""];
  return {
    label: paper.title || paper.path.split("/").pop()!.replace(/\.md$/, ""),
    path: paper.path,
    detail: bits.filter(Boolean).join(" · "),
    indent,
  };
}

function passLabel(pass: unknown): string {
  const n = Number(pass);
  return Number.isInteger(n) && n > 0 ? `pass ${n}` : "";
}

function methodEntries(methods: LineageMethod[], base: number): Entry[] {
  const entries: Entry[] = [];
  for (const method of methods) {
    const indent = base + Math.max(0, (method.depth ?? 1) - 1);
    entries.push({ label: method.name, path: method.path, detail: "method", indent });
    for (const paper of method.proposed_in ?? []) entries.push(paperEntry(paper, indent + 1));
  }
  return entries;
}

export function lineageModel(data: LineageData | null): Section[] {
  if (!data || data.kind === "none") return [];
  const sections: Section[] = [];
  const add = (title: string, entries: Entry[]): void => {
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

/** One note's facts, as the plugin reads them from Obsidian's metadata cache. */
export interface NoteFacts {
  path: string;
  kind: "paper" | "method" | "other";
  title: string;
  year: number | null;
  pass?: unknown;
  status?: string;
  proposes: string[];
  extends: string[];
}

/** `[[Methods/NMS|x]]` or `NMS` → `NMS`. */
export function methodName(value: unknown): string | null {
  if (typeof value !== "string" && typeof value !== "number") return null;
  let text = String(value).trim();
  const link = /^\[\[([^\]|#]+)(?:#[^\]|]*)?(?:\|[^\]]*)?\]\]$/.exec(text);
  if (link) text = link[1].trim().split("/").pop()!.replace(/\.md$/i, "");
  return text || null;
}

export function methodNames(value: unknown): string[] {
  const values = Array.isArray(value) ? value : value == null ? [] : [value];
  return values.map(methodName).filter((n): n is string => n !== null);
}

interface Node {
  name: string;
  proposedIn: NoteFacts[];
  extendedBy: NoteFacts[];
  parents: Set<string>;
  children: Set<string>;
}

interface Graph {
  nodes: Map<string, Node>;
  methodPaths: Map<string, string>; // casefolded method name → its method note
}

/** The method graph of the paper notes' proposes/extends, as `bridge/lineage.py` builds it. */
export function buildGraph(notes: NoteFacts[]): Graph {
  const nodes = new Map<string, Node>();
  const node = (name: string): Node => {
    const key = name.toLocaleLowerCase();
    if (!nodes.has(key)) {
      nodes.set(key, { name, proposedIn: [], extendedBy: [], parents: new Set(), children: new Set() });
    }
    return nodes.get(key)!;
  };
  const methodPaths = new Map<string, string>();
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

function stem(path: string): string {
  return path.split("/").pop()!.replace(/\.md$/i, "");
}

function paperOf(n: NoteFacts): LineagePaper {
  return { path: n.path, title: n.title, year: n.year, pass: n.pass as string, status: n.status };
}

function methodOf(graph: Graph, key: string, depth: number): LineageMethod {
  const found = graph.nodes.get(key);
  return { name: found?.name ?? key, path: graph.methodPaths.get(key) ?? null, depth,
    proposed_in: (found?.proposedIn ?? []).map(paperOf) };
}

/** Breadth first from `start`, each method once, nearest generation first. */
function walk(graph: Graph, start: string, up: boolean, depth: number): LineageMethod[] {
  const found: LineageMethod[] = [];
  const seen = new Set([start]);
  let frontier = [start];
  for (let generation = 1; generation <= depth; generation++) {
    const next: string[] = [];
    for (const key of frontier) {
      const around = graph.nodes.get(key);
      for (const other of [...(up ? around?.parents ?? [] : around?.children ?? [])].sort()) {
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

/** The same answer as the bridge's `/lineage`, built from the notes (no daemon running). */
export function lineageFromNotes(notes: NoteFacts[], path: string, depth = 3): LineageData {
  const self = notes.find((n) => n.path === path);
  if (!self || self.kind === "other") return { kind: "none", path };
  const graph = buildGraph(notes);
  if (self.kind === "method") {
    const key = stem(path).toLocaleLowerCase();
    const found = graph.nodes.get(key);
    return {
      kind: "method", path, name: found?.name ?? self.title,
      proposed_in: (found?.proposedIn ?? []).map(paperOf),
      extended_by: (found?.extendedBy ?? []).map(paperOf),
      ancestors: walk(graph, key, true, depth), descendants: walk(graph, key, false, depth),
    };
  }
  const named = (names: string[]): LineageMethod[] =>
    names.map((n) => methodOf(graph, n.toLocaleLowerCase(), 1));
  return { kind: "paper", path, title: self.title, proposes: named(self.proposes),
    extends: named(self.extends) };
}
