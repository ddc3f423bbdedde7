/** Shapes shared by the client, the views and the bridge's JSON (`bridge/library_index.py`,
 * `bridge/api_server.py`, `bridge/api_lineage.py`). */

export interface IndexItem {
  key: string;
  citekey: string;
  title: string;
  authors: string[];
  surnames: string[];
  author_count: number;
  year: number | null;
  venue: string;
  item_type?: string;
  pdf?: string | null;
  note: string | null;
  pass: number | string | null;
  status: string;
}

export interface LibraryIndex {
  complete: boolean;
  items: IndexItem[];
}

export interface Conflict {
  key: string;
  path: string;
  field: string;
  since: string;
}

export interface StatusInfo {
  via: "api" | "cli" | "index" | "none";
  running: boolean;
  lastSync: string | null;
  conflicts: Conflict[];
  lastError: string | null;
}

export interface LineagePaper {
  path: string;
  title: string;
  year: number | null;
  pass?: string | number;
  status?: string;
}

export interface LineageMethod {
  name: string;
  path: string | null;
  depth: number;
  proposed_in: LineagePaper[];
}

export interface LineageData {
  kind: "method" | "paper" | "none";
  path: string;
  name?: string;
  title?: string;
  proposed_in?: LineagePaper[];
  extended_by?: LineagePaper[];
  ancestors?: LineageMethod[];
  descendants?: LineageMethod[];
  proposes?: LineageMethod[];
  extends?: LineageMethod[];
}

export type CitationFormat = "wikilink" | "pandoc";

export interface Settings {
  citationFormat: CitationFormat;
  zobPath: string;
}

export const DEFAULT_SETTINGS: Settings = { citationFormat: "wikilink", zobPath: "zob" };
