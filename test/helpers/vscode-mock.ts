/**
 * A small in-memory `vscode` module for the extension tests. Importing this file installs it: afterwards
 * `require('vscode')` (from src/extension under tsx, or from dist/extension.js) returns `vscode` below.
 * Import it before anything from src/extension. It records what the extension does (registered commands,
 * messages shown, webview posts) and lets tests answer prompts (quick picks, dialogs) through `mock`.
 */
import Module from 'node:module';
import { rmSync } from 'node:fs';
import path from 'node:path';

type Listener<T> = (e: T) => unknown;

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>): Disposable => {
    this.listeners.add(listener);
    return new Disposable(() => this.listeners.delete(listener));
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Disposable {
  constructor(private readonly fn: () => unknown = () => {}) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class Uri {
  readonly authority = '';
  readonly query = '';
  readonly fragment = '';
  private constructor(readonly scheme: string, readonly path: string) {}
  static file(p: string): Uri {
    return new Uri('file', path.resolve(p));
  }
  static parse(s: string): Uri {
    const m = /^([a-z-]+):(?:\/\/)?(.*)$/i.exec(s);
    return m ? new Uri(m[1], m[2]) : Uri.file(s);
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return new Uri(base.scheme, path.join(base.path, ...parts));
  }
  get fsPath(): string {
    return this.path;
  }
  with(change: { scheme?: string; path?: string }): Uri {
    return new Uri(change.scheme ?? this.scheme, change.path ?? this.path);
  }
  toString(): string {
    return `${this.scheme}://${this.path}`;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path };
  }
}

export class Position {
  constructor(readonly line: number, readonly character: number) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: number | Position, b: number | Position, c?: number, d?: number) {
    if (typeof a === 'number') {
      this.start = new Position(a, b as number);
      this.end = new Position(c!, d!);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
}

export class MarkdownString {
  isTrusted?: boolean | { enabledCommands: readonly string[] };
  supportHtml?: boolean;
  constructor(public value = '', public supportThemeIcons = false) {}
  appendMarkdown(s: string): this {
    this.value += s;
    return this;
  }
  appendText(s: string): this {
    this.value += s.replace(/[\\`*_{}[\]()#+\-!~]/g, '\\$&');
    return this;
  }
}

export class Hover {
  readonly contents: MarkdownString[];
  constructor(contents: MarkdownString | MarkdownString[], readonly range?: Range) {
    this.contents = Array.isArray(contents) ? contents : [contents];
  }
}

export class RelativePattern {
  readonly baseUri: Uri;
  constructor(base: Uri | { uri: Uri } | string, readonly pattern: string) {
    this.baseUri = typeof base === 'string' ? Uri.file(base) : base instanceof Uri ? base : base.uri;
  }
}

export class CancellationTokenSource {
  private emitter = new EventEmitter<void>();
  token = { isCancellationRequested: false, onCancellationRequested: this.emitter.event };
  cancel(): void {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose(): void {}
}

export enum ViewColumn { Active = -1, Beside = -2, One = 1, Two = 2, Three = 3 }
export enum TreeItemCollapsibleState { None = 0, Collapsed = 1, Expanded = 2 }

export class ThemeIcon {
  constructor(readonly id: string) {}
}

export class TreeItem {
  id?: string;
  description?: string | boolean;
  tooltip?: string;
  iconPath?: ThemeIcon;
  contextValue?: string;
  resourceUri?: Uri;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(readonly label: string, public collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None) {}
}

export interface MockTreeDataProvider {
  getChildren(node?: unknown): unknown[] | Promise<unknown[]> | undefined;
  getTreeItem(node: unknown): TreeItem | Promise<TreeItem>;
  onDidChangeTreeData?: (listener: (e: unknown) => unknown) => Disposable;
}
export enum ProgressLocation { SourceControl = 1, Window = 10, Notification = 15 }
export enum StatusBarAlignment { Left = 1, Right = 2 }
export enum QuickPickItemKind { Separator = -1, Default = 0 }

// ---------------------------------------------------------------------------------------------------------------
// Recorded state and test answers

export interface MockWebviewPanel {
  viewType: string;
  title: string;
  visible: boolean;
  options: unknown;
  webview: MockWebview;
  reveal(column?: ViewColumn, preserveFocus?: boolean): void;
  revealed: number;
  /** The column it was created in (as asked: Beside, or a number), and each column reveal() was given. */
  createdIn: unknown;
  revealedIn: unknown[];
  /** Where it is: Beside opens the group after the active editor's (the mock: column 2). */
  viewColumn: number | undefined;
  dispose(): void;
  disposed: boolean;
  onDidDispose: EventEmitter<void>['event'];
  onDidChangeViewState: EventEmitter<unknown>['event'];
  /** Test side: the webview sends a message to the extension. */
  receive(message: unknown): void;
  setVisible(visible: boolean): void;
}

export interface MockWebview {
  html: string;
  options: unknown;
  cspSource: string;
  posted: unknown[];
  postMessage(m: unknown): Promise<boolean>;
  asWebviewUri(u: Uri): Uri;
  onDidReceiveMessage: EventEmitter<unknown>['event'];
}

function makePanel(viewType: string, title: string, options: unknown, column?: unknown): MockWebviewPanel {
  const received = new EventEmitter<unknown>();
  const disposed = new EventEmitter<void>();
  const viewState = new EventEmitter<unknown>();
  const webview: MockWebview = {
    html: '',
    options,
    cspSource: 'https://mock.vscode-cdn.net',
    posted: [],
    async postMessage(m) {
      webview.posted.push(JSON.parse(JSON.stringify(m)));
      return true;
    },
    asWebviewUri: (u) => Uri.parse(`https://file+.vscode-resource.vscode-cdn.net${u.path}`),
    onDidReceiveMessage: received.event,
  };
  const panel: MockWebviewPanel = {
    viewType,
    title,
    visible: true,
    options,
    webview,
    revealed: 0,
    createdIn: column,
    revealedIn: [],
    viewColumn: column === ViewColumn.Beside ? 2 : typeof column === 'number' ? column : undefined,
    disposed: false,
    reveal(col?: ViewColumn) {
      panel.revealed++;
      panel.revealedIn.push(col);
      if (typeof col === 'number' && col > 0) panel.viewColumn = col;
    },
    dispose() {
      if (panel.disposed) return;
      panel.disposed = true;
      disposed.fire();
    },
    onDidDispose: disposed.event,
    onDidChangeViewState: viewState.event,
    receive: (m) => received.fire(m),
    setVisible(v) {
      panel.visible = v;
      viewState.fire({ webviewPanel: panel });
    },
  };
  mock.panels.push(panel);
  return panel;
}

type Answer<T> = (items: T, options: unknown) => unknown;

export const mock = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  contextKeys: new Map<string, unknown>(),
  executed: [] as { command: string; args: unknown[] }[],
  messages: [] as { level: 'error' | 'warning' | 'info'; message: string; items: unknown[] }[],
  log: [] as string[],
  panels: [] as MockWebviewPanel[],
  serializers: new Map<string, { deserializeWebviewPanel(panel: unknown, state: unknown): Thenable<void> | Promise<void> }>(),
  hoverProviders: [] as { selector: unknown; provider: { provideHover(doc: unknown, pos: Position, token: unknown): unknown } }[],
  treeViews: new Map<string, { provider: MockTreeDataProvider; options: unknown }>(),
  /** Files deleted through workspace.fs.delete, with its options. */
  deleted: [] as { path: string; options: unknown }[],
  watchers: [] as { pattern: RelativePattern; create: EventEmitter<Uri>; change: EventEmitter<Uri>; delete: EventEmitter<Uri> }[],
  written: new Map<string, Uint8Array>(),
  /** Documents opened (untitled ones with their content) and documents shown in an editor. */
  documents: [] as { uri?: Uri; content?: string; language?: string }[],
  shownDocuments: [] as { uri?: Uri; content?: string }[],
  /** What window.activeTextEditor returns (a test sets it). */
  activeTextEditor: undefined as { document: { uri: Uri } } | undefined,
  progress: [] as { options: { title?: string; cancellable?: boolean; location?: unknown }; reports: { message?: string; increment?: number }[]; cancel(): void; done: boolean }[],
  config: new Map<string, unknown>(),
  workspaceFolders: [] as { uri: Uri; name: string; index: number }[],
  /** Answers for prompts; default: dismissed. */
  answer: {
    quickPick: undefined as Answer<unknown[]> | undefined,
    openDialog: undefined as ((options: unknown) => Uri[] | undefined) | undefined,
    saveDialog: undefined as ((options: unknown) => Uri | undefined) | undefined,
    message: undefined as ((message: string, items: unknown[]) => unknown) | undefined,
    inputBox: undefined as ((options: unknown) => string | undefined) | undefined,
  },
  /** Installed extensions that extensions.getExtension finds (id -> the extension object). */
  extensions: new Map<string, { isActive: boolean; exports: unknown; activate(): Promise<unknown> }>(),
  reset(): void {
    this.contextKeys.clear();
    this.executed.length = 0;
    this.messages.length = 0;
    this.log.length = 0;
    this.panels.length = 0;
    this.watchers.length = 0;
    this.deleted.length = 0;
    this.written.clear();
    this.documents.length = 0;
    this.shownDocuments.length = 0;
    this.activeTextEditor = undefined;
    this.progress.length = 0;
    this.config.clear();
    this.answer.quickPick = this.answer.openDialog = this.answer.saveDialog = this.answer.message = undefined;
    this.answer.inputBox = undefined;
    this.extensions.clear();
  },
};

function showMessage(level: 'error' | 'warning' | 'info') {
  return async (message: string, ...items: unknown[]): Promise<unknown> => {
    const buttons = items.filter((i) => typeof i === 'string' || (i && typeof i === 'object' && 'title' in (i as object)));
    mock.messages.push({ level, message, items: buttons });
    return mock.answer.message?.(message, buttons);
  };
}

function logger(prefix: string) {
  return (...parts: unknown[]) => mock.log.push(`${prefix} ${parts.map(String).join(' ')}`);
}

export const commands = {
  registerCommand(id: string, fn: (...args: unknown[]) => unknown): Disposable {
    if (mock.commands.has(id)) throw new Error(`command ${id} already registered`);
    mock.commands.set(id, fn);
    return new Disposable(() => mock.commands.delete(id));
  },
  async executeCommand(id: string, ...args: unknown[]): Promise<unknown> {
    mock.executed.push({ command: id, args });
    if (id === 'setContext') {
      mock.contextKeys.set(String(args[0]), args[1]);
      return undefined;
    }
    return mock.commands.get(id)?.(...args);
  },
  async getCommands(): Promise<string[]> {
    return [...mock.commands.keys()];
  },
};

export const window = {
  createOutputChannel(name: string, _opts?: unknown) {
    return {
      name,
      info: logger('info'), warn: logger('warn'), error: logger('error'), debug: logger('debug'), trace: logger('trace'),
      appendLine: logger('line'), append: logger('line'), show() {}, hide() {}, clear() {}, dispose() {},
    };
  },
  createStatusBarItem(id?: string, _align?: StatusBarAlignment, _priority?: number) {
    return { id, text: '', tooltip: '', name: '', command: undefined as unknown, visible: false, show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
  },
  get activeTextEditor() {
    return mock.activeTextEditor;
  },
  async showTextDocument(doc: Uri | { uri?: Uri; content?: string }, _options?: unknown): Promise<unknown> {
    const entry = doc instanceof Uri ? { uri: doc } : { uri: doc.uri, content: doc.content };
    mock.shownDocuments.push(entry);
    return { document: entry };
  },
  showErrorMessage: showMessage('error'),
  showWarningMessage: showMessage('warning'),
  showInformationMessage: showMessage('info'),
  async showQuickPick(items: unknown, options?: unknown): Promise<unknown> {
    const list = await items;
    return mock.answer.quickPick?.(list as unknown[], options);
  },
  async showInputBox(options?: unknown): Promise<string | undefined> {
    return mock.answer.inputBox?.(options);
  },
  async showOpenDialog(options?: unknown): Promise<Uri[] | undefined> {
    return mock.answer.openDialog?.(options);
  },
  async showSaveDialog(options?: unknown): Promise<Uri | undefined> {
    return mock.answer.saveDialog?.(options);
  },
  async withProgress<T>(options: { title?: string; cancellable?: boolean; location?: unknown }, task: (progress: { report(v: { message?: string; increment?: number }): void }, token: CancellationTokenSource['token']) => Promise<T>): Promise<T> {
    const source = new CancellationTokenSource();
    const entry = { options, reports: [] as { message?: string; increment?: number }[], cancel: () => source.cancel(), done: false };
    mock.progress.push(entry);
    try {
      return await task({ report: (v) => entry.reports.push(v) }, source.token);
    } finally {
      entry.done = true;
    }
  },
  createWebviewPanel(viewType: string, title: string, column: unknown, options?: unknown) {
    const col = column && typeof column === 'object' ? (column as { viewColumn?: unknown }).viewColumn : column;
    return makePanel(viewType, title, options, col);
  },
  createTreeView(id: string, options: { treeDataProvider: MockTreeDataProvider }) {
    mock.treeViews.set(id, { provider: options.treeDataProvider, options });
    return { visible: true, reveal: async () => {}, dispose: () => mock.treeViews.delete(id) };
  },
  registerTreeDataProvider(id: string, provider: MockTreeDataProvider): Disposable {
    mock.treeViews.set(id, { provider, options: undefined });
    return new Disposable(() => mock.treeViews.delete(id));
  },
  registerWebviewPanelSerializer(viewType: string, serializer: { deserializeWebviewPanel(panel: unknown, state: unknown): Promise<void> }): Disposable {
    mock.serializers.set(viewType, serializer);
    return new Disposable(() => mock.serializers.delete(viewType));
  },
  /** Test helper (not in the real API): a restored panel as VS Code would hand it to the serializer. */
  makeRestoredPanel(viewType: string, title: string) {
    return makePanel(viewType, title, undefined);
  },
};

export const extensions = {
  getExtension(id: string) {
    return mock.extensions.get(id);
  },
};

export const workspace = {
  get workspaceFolders() {
    return mock.workspaceFolders.length ? mock.workspaceFolders : undefined;
  },
  getWorkspaceFolder(uri: Uri) {
    return mock.workspaceFolders.find((f) => uri.fsPath === f.uri.fsPath || uri.fsPath.startsWith(f.uri.fsPath + path.sep));
  },
  getConfiguration(section?: string, _scope?: unknown) {
    return {
      get<T>(key: string, fallback?: T): T | undefined {
        const full = section ? `${section}.${key}` : key;
        return mock.config.has(full) ? (mock.config.get(full) as T) : fallback;
      },
    };
  },
  onDidChangeConfiguration: new EventEmitter<unknown>().event,
  asRelativePath(p: string | Uri): string {
    const s = typeof p === 'string' ? p : p.fsPath;
    const f = mock.workspaceFolders.find((w) => s.startsWith(w.uri.fsPath + path.sep));
    return f ? path.relative(f.uri.fsPath, s) : s;
  },
  async findFiles(): Promise<Uri[]> {
    return [];
  },
  createFileSystemWatcher(pattern: RelativePattern) {
    const w = { pattern, create: new EventEmitter<Uri>(), change: new EventEmitter<Uri>(), delete: new EventEmitter<Uri>() };
    mock.watchers.push(w);
    return { onDidCreate: w.create.event, onDidChange: w.change.event, onDidDelete: w.delete.event, dispose() {} };
  },
  async openTextDocument(arg: Uri | { content?: string; language?: string }): Promise<{ uri?: Uri; content?: string; language?: string }> {
    const doc = arg instanceof Uri ? { uri: arg } : { content: arg.content ?? '', language: arg.language };
    mock.documents.push(doc);
    return doc;
  },
  fs: {
    async writeFile(uri: Uri, data: Uint8Array): Promise<void> {
      mock.written.set(uri.fsPath, data);
    },
    /** Deletes for real (tests use temporary folders) and records the call. */
    async delete(uri: Uri, options?: unknown): Promise<void> {
      mock.deleted.push({ path: uri.fsPath, options });
      rmSync(uri.fsPath, { force: false });
    },
  },
};

export const languages = {
  registerHoverProvider(selector: unknown, provider: { provideHover(doc: unknown, pos: Position, token: unknown): unknown }): Disposable {
    const entry = { selector, provider };
    mock.hoverProviders.push(entry);
    return new Disposable(() => mock.hoverProviders.splice(mock.hoverProviders.indexOf(entry), 1));
  },
};

export const env = { language: 'en' };
export const version = '1.90.0';

export const vscode = {
  EventEmitter, Disposable, Uri, Position, Range, MarkdownString, Hover, RelativePattern, CancellationTokenSource,
  ViewColumn, ProgressLocation, StatusBarAlignment, QuickPickItemKind, TreeItem, TreeItemCollapsibleState, ThemeIcon,
  commands, window, workspace, languages, env, version, extensions,
};

/** A minimal ExtensionContext rooted at `extensionPath` (default: the repository, so dist/ and media/ exist). */
export function makeExtensionContext(extensionPath = path.resolve(__dirname, '..', '..'), storage = path.join(extensionPath, 'out', 'test-storage')) {
  const memento = () => {
    const m = new Map<string, unknown>();
    return { get: <T>(k: string, d?: T) => (m.has(k) ? (m.get(k) as T) : d), update: async (k: string, v: unknown) => void m.set(k, v), keys: () => [...m.keys()] };
  };
  return {
    subscriptions: [] as { dispose(): unknown }[],
    extensionPath,
    extensionUri: Uri.file(extensionPath),
    globalStorageUri: Uri.file(storage),
    storageUri: Uri.file(storage),
    workspaceState: memento(),
    globalState: memento(),
  };
}

/** A TextDocument over `text` (for hovers). */
export function makeDocument(text: string, languageId: string) {
  const lines = text.split('\n');
  return { languageId, lineCount: lines.length, lineAt: (line: number) => ({ text: lines[line] ?? '' }), getText: () => text, uri: Uri.file('/tmp/doc') };
}

// Install: resolve 'vscode' to this module's exports wherever it is required from.
const MOCK_ID = path.join(__dirname, '__vscode_mock__.js');
const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string; _cache: Record<string, unknown> };
const original = M._resolveFilename;
M._resolveFilename = function resolve(this: unknown, request: string, ...rest: unknown[]): string {
  if (request === 'vscode') return MOCK_ID;
  return original.call(this, request, ...rest);
};
const cached = new Module(MOCK_ID);
cached.filename = MOCK_ID;
cached.loaded = true;
cached.exports = vscode;
require.cache[MOCK_ID] = cached;
