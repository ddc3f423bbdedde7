// A stand-in for the `obsidian` module under Node: the npm package holds only typings. Just
// enough of each class for the plugin to load, register its parts and run its commands; the
// tests read back what was registered.
/* eslint-disable @typescript-eslint/no-explicit-any */
(globalThis as any).window = globalThis;

export class El {
  text = "";
  cls: string[] = [];
  attrs: Record<string, string> = {};
  children: El[] = [];
  style: Record<string, string> = {};
  listeners: Record<string, () => void> = {};
  constructor(public tag = "div") {}
  createEl(tag: string, options: { text?: string; cls?: string } = {}): El {
    const el = new El(tag);
    el.text = options.text ?? "";
    if (options.cls) el.cls.push(options.cls);
    this.children.push(el);
    return el;
  }
  createDiv(options: { text?: string; cls?: string } = {}): El {
    return this.createEl("div", options);
  }
  setText(text: string): void {
    this.text = text;
  }
  addClass(cls: string): void {
    this.cls.push(cls);
  }
  setAttr(name: string, value: string): void {
    this.attrs[name] = value;
  }
  empty(): void {
    this.children = [];
  }
  addEventListener(type: string, fn: () => void): void {
    this.listeners[type] = fn;
  }
  /** Every text below this element, depth first. */
  texts(): string[] {
    return [this.text, ...this.children.flatMap((c) => c.texts())].filter(Boolean);
  }
}

export class Notice {
  static messages: string[] = [];
  constructor(public message: string) {
    Notice.messages.push(message);
  }
}

export class FileSystemAdapter {
  constructor(private base: string) {}
  getBasePath(): string {
    return this.base;
  }
}

export class TFile {
  basename: string;
  extension: string;
  constructor(public path: string) {
    const name = path.split("/").pop()!;
    this.extension = name.includes(".") ? name.split(".").pop()! : "";
    this.basename = name.replace(/\.[^.]*$/, "");
  }
}

export class Component {
  registerEvent(_: unknown): void {}
  registerDomEvent(_el: unknown, _type: string, _fn: unknown): void {}
  registerInterval(id: number): number {
    clearInterval(id as any);
    return id;
  }
}

export class Plugin extends Component {
  commands: any[] = [];
  views: Record<string, unknown> = {};
  suggests: unknown[] = [];
  settingTabs: unknown[] = [];
  statusBar: El[] = [];
  stored: any = null;
  constructor(public app: any, public manifest: any = {}) {
    super();
  }
  addCommand(command: any): any {
    this.commands.push(command);
    return command;
  }
  registerView(type: string, factory: unknown): void {
    this.views[type] = factory;
  }
  registerEditorSuggest(suggest: unknown): void {
    this.suggests.push(suggest);
  }
  addSettingTab(tab: unknown): void {
    this.settingTabs.push(tab);
  }
  addStatusBarItem(): El {
    const el = new El();
    this.statusBar.push(el);
    return el;
  }
  async loadData(): Promise<any> {
    return this.stored;
  }
  async saveData(data: any): Promise<void> {
    this.stored = data;
  }
}

export class Modal {
  opened = false;
  constructor(public app: any) {}
  open(): void {
    this.opened = true;
  }
  close(): void {
    this.opened = false;
  }
}

export class SuggestModal<T> extends Modal {
  placeholder = "";
  setPlaceholder(text: string): void {
    this.placeholder = text;
  }
  declare _t?: T;
}

export class EditorSuggest<T> {
  context: any = null;
  constructor(public app: any) {}
  close(): void {}
  declare _t?: T;
}

export class ItemView extends Component {
  app: any;
  contentEl = new El();
  constructor(public leaf: any) {
    super();
    this.app = leaf.app;
  }
}

export class WorkspaceLeaf {}

export class PluginSettingTab {
  containerEl = new El();
  constructor(public app: any, public plugin: any) {}
}

export class Setting {
  constructor(_el: unknown) {}
  setName(): this {
    return this;
  }
  setDesc(): this {
    return this;
  }
  addDropdown(): this {
    return this;
  }
  addText(): this {
    return this;
  }
}
