/** How the plugin talks to the bridge: the local API of a running `zob watch` when there is
 * one (`.zotero-bridge/api.json`: port and token), else the files the bridge writes
 * (`.zotero-bridge/library.json`) and the `zob` command. No `obsidian` import: the plugin
 * bundles this module, and the end-to-end test runs the very same module under Node. */
import { execFile } from "child_process";
import { constants, promises as fs } from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import type { Conflict, IndexItem, LibraryIndex, LineageData, StatusInfo } from "./types";

export const STATE_DIR = ".zotero-bridge";

export interface Endpoint {
  port: number;
  token: string;
}

export interface HttpRequest extends Endpoint {
  method: "GET" | "POST";
  path: string;
  body?: unknown;
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  json: any;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type Transport = (request: HttpRequest) => Promise<HttpAnswer>;
export type Runner = (command: string, args: string[], cwd: string) => Promise<RunResult>;

/** A refusal or failure worth showing the user as it is. */
export class ClientError extends Error {}

/** Node's own http: no browser Origin, no CORS, loopback only. */
export const nodeTransport: Transport = (request) =>
  new Promise((resolve, reject) => {
    const data = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
    const headers: Record<string, string> = { Authorization: `Bearer ${request.token}` };
    if (data) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = String(data.length);
    }
    const req = http.request(
      { host: "127.0.0.1", port: request.port, method: request.method, path: request.path,
        headers, timeout: request.timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: any = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = { error: text.slice(0, 200) };
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("the bridge did not answer in time")));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });

/** Runs `zob` without a shell (arguments are never parsed by one). */
export const runProcess: Runner = (command, args, cwd) =>
  new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: 10 * 60_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof (error as any).code === "number" ? (error as any).code : 127) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr || (error?.message ?? "")) });
      });
  });

/** A file of the bridge's state folder, as Python's `StateFolder` reads it: never through a
 * link, and nothing but a plain file — a FIFO would block one of Node's few file threads
 * until a writer came, and Obsidian's own file reads queue behind them. */
export async function readStateFile(file: string): Promise<string> {
  const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0);
  const handle = await fs.open(file, flags);
  try {
    if (!(await handle.stat()).isFile()) throw new ClientError(`${file} is not a plain file`);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

const QUICK_MS = 30_000;
const SLOW_MS = 10 * 60_000;

export class BridgeClient {
  constructor(
    public vaultPath: string,
    public zobPath = "zob",
    private transport: Transport = nodeTransport,
    private run: Runner = runProcess,
  ) {}

  private stateFile(name: string): string {
    return path.join(this.vaultPath, STATE_DIR, name);
  }

  /** The running daemon's port and token, or null when none wrote them. */
  async endpoint(): Promise<Endpoint | null> {
    try {
      const data = JSON.parse(await readStateFile(this.stateFile("api.json")));
      // a vault synced from another machine brings that machine's api.json: its port is
      // not a zob here, and its token must not go to whatever listens there
      const here = typeof data.host !== "string" || data.host.toLowerCase() === os.hostname().toLowerCase();
      if (here && Number.isInteger(data.port) && data.port > 0 && data.port < 65536 && typeof data.token === "string") {
        return { port: data.port, token: data.token };
      }
    } catch {
      /* no daemon, or it is starting */
    }
    return null;
  }

  /** The API's answer; `undefined` when no daemon answers (then the caller falls back). */
  async call(method: "GET" | "POST", route: string, body?: unknown, timeoutMs = QUICK_MS): Promise<any> {
    const endpoint = await this.endpoint();
    if (!endpoint) return undefined;
    let answer: HttpAnswer;
    try {
      answer = await this.transport({ ...endpoint, method, path: route, body, timeoutMs });
    } catch (error: any) {
      if (error?.code === "ECONNREFUSED") return undefined; // a daemon killed without cleanup
      throw new ClientError(`the bridge did not answer: ${error?.message ?? error}`);
    }
    if (answer.status !== 200) {
      const hint = answer.json?.hint ? ` (${answer.json.hint})` : "";
      throw new ClientError(`${answer.json?.error ?? `HTTP ${answer.status}`}${hint}`);
    }
    return answer.json;
  }

  private async zob(args: string[]): Promise<RunResult> {
    // Not the vault as working folder: Windows looks a bare `zob` up there before PATH, so a
    // `zob.exe` in a shared or synced vault would run. `--vault` says which vault.
    const result = await this.run(this.zobPath, [...args, "--vault", this.vaultPath], os.homedir() || os.tmpdir());
    if (result.code === 127) {
      throw new ClientError(`cannot run ${this.zobPath}: install the bridge (pip install) or set its path in the settings`);
    }
    return result;
  }

  /** The daemon's state. Without a daemon: `full` runs `zob status` (open conflicts too);
   * else only the item index's time is read — the status bar asks every few seconds and
   * must not start a Python process each time. */
  async status(full = false): Promise<StatusInfo> {
    const fromApi = await this.call("GET", "/status");
    if (fromApi !== undefined) return summarise(fromApi, "api");
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
  async items(): Promise<LibraryIndex> {
    const fromApi = await this.call("GET", "/items");
    if (fromApi !== undefined) return { complete: !!fromApi.complete, items: fromApi.items as IndexItem[] };
    let index = await this.readIndex();
    if (index === null) {
      await this.sync(); // never synced here: the first sync writes the index
      index = await this.readIndex();
    }
    if (index === null) throw new ClientError("no item index yet: run `zob sync` once");
    return index;
  }

  private async readIndex(): Promise<LibraryIndex | null> {
    try {
      const index = JSON.parse(await readStateFile(this.stateFile("library.json")));
      return { complete: !!index.complete, items: Array.isArray(index.items) ? index.items : [] };
    } catch {
      return null;
    }
  }

  async sync(): Promise<{ via: "api" | "cli"; summary: string }> {
    const fromApi = await this.call("POST", "/sync", {}, SLOW_MS);
    if (fromApi !== undefined) return { via: "api", summary: describeCounts(fromApi.counts) };
    const result = await this.zob(["sync", "--json"]);
    if (result.code !== 0 && result.code !== 1) throw new ClientError(lastLine(result.stderr));
    return { via: "cli", summary: describeCounts(JSON.parse(lastLine(result.stdout))) };
  }

  /** The note of item KEY, made by `zob new`'s pipeline when it has none; its vault path. */
  async createNote(key: string): Promise<{ via: "api" | "cli"; path: string }> {
    if (!/^[A-Z0-9]{8}$/.test(key)) throw new ClientError(`${key} is not a Zotero item key`);
    const fromApi = await this.call("POST", "/notes", { key }, SLOW_MS);
    if (fromApi !== undefined) return { via: "api", path: fromApi.path };
    const result = await this.zob(["new", key, "--first"]);
    if (result.code !== 0 && result.code !== 1) throw new ClientError(lastLine(result.stderr));
    return { via: "cli", path: lastLine(result.stdout) };
  }

  /** The bridge's lineage of the note at PATH; null without a daemon (the plugin then
   * builds it from the notes' properties, `lineageFromNotes`). */
  async lineage(notePath: string): Promise<LineageData | null> {
    const fromApi = await this.call("GET", `/lineage?path=${encodeURIComponent(notePath)}`);
    return fromApi === undefined ? null : (fromApi as LineageData);
  }
}

function lastLine(text: string): string {
  const lines = text.trim().split("\n");
  return lines[lines.length - 1] ?? "";
}

export function describeCounts(counts: Record<string, number> | undefined): string {
  if (!counts) return "synced";
  const parts = ["created", "updated", "conflicts", "skipped"]
    .filter((k) => counts[k])
    .map((k) => `${k} ${counts[k]}`);
  return parts.length ? parts.join(", ") : "nothing to change";
}

export function summarise(info: any, via: "api" | "cli"): StatusInfo {
  const daemon = info?.daemon ?? {};
  return {
    via,
    running: !!daemon.running,
    lastSync: info?.last_sync?.finished_at ?? daemon.last_sync_at ?? null,
    conflicts: (info?.conflicts ?? []) as Conflict[],
    lastError: daemon.running ? daemon.last_error ?? null : null,
  };
}
