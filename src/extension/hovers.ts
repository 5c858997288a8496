/**
 * Hovers in Python, TypeScript and JavaScript: a string literal that is the name of a layer in a saved report
 * (`name="block2_conv"`, `model.get_layer('conv2d_3')`) shows that layer's SID mean ± std, its rank among the
 * model's layers, the other metrics the report measured (RU with its decoder's PSNR, concentration, gradient
 * magnitude), which report it comes from, and a link that opens the panel at that layer.
 *
 * The layer index is lazy: nothing is read until the first hover over a string literal; then the reports folders
 * are read once and kept current by a FileSystemWatcher (and by the extension's own report writes), so a hover is
 * a map lookup, never a file scan.
 */
import * as vscode from 'vscode';
import type { Ctx, ReportChange } from './ctx';
import { layerNameAt, modelsMentioned, type Syntax } from './hoverMatch';
import { POOR_DECODER_PSNR } from '../engine/report';
import { commandUri, escapeMarkdown } from './messages';
import { modelName, summarize, type ReportStore, type ReportSummary } from './reportStore';

export const HOVER_LANGUAGES = ['python', 'typescript', 'javascript', 'typescriptreact', 'javascriptreact'];
export const SHOW_LAYER_COMMAND = 'infodiscard.showLayer';
const MAX_REPORTS_PER_HOVER = 6;

export interface IndexEntry {
  reportPath: string;
  model: string;
  modelPath: string;
  createdAt: string;
  status: string;
  kind: string;
  mean: number;
  std: number;
  /** 1 = the layer of this report with the highest SID (discards most). */
  rank: number;
  count: number;
  /** Opt-in metrics, when the report measured them (schema 2). */
  ru?: { mean: number; std: number; psnr: number };
  concentration?: { mean: number; std: number; images: number } | null;
  gradNorm?: number;
  /** Schema 3: flagged SID / RU values (the verdict, its reason, and whether the value is a lower bound). */
  quality?: { verdict: string; reason?: string; bound: boolean };
  ruQuality?: { verdict: string; reason?: string; bound: boolean };
}

/** Arguments of the hover's command link. */
export interface ShowLayerArgs {
  report: string;
  layer: string;
}

export class LayerIndex implements vscode.Disposable {
  private readonly byLayer = new Map<string, IndexEntry[]>();
  private readonly byReport = new Map<string, string[]>();
  private building: Promise<void> | undefined;
  private watchers: vscode.Disposable[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly store: ReportStore,
    private readonly folders: () => string[],
    onReportChanged?: vscode.Event<ReportChange>,
  ) {
    if (onReportChanged) {
      this.subscriptions.push(onReportChanged((c) => {
        if (!this.building) return; // not built: the first hover reads it anyway
        if (c.report) this.set(c.path, summarize(c.report, c.path, Date.now()));
        else this.scheduleRefresh(c.path);
      }));
    }
  }

  get isBuilt(): boolean {
    return this.building !== undefined;
  }

  /** Builds the index on first use; later calls return at once. */
  ensure(): Promise<void> {
    this.building ??= this.build();
    return this.building;
  }

  /** Forget everything (the reports folder setting changed); the next hover rebuilds. */
  invalidate(): void {
    for (const w of this.watchers.splice(0)) w.dispose();
    this.byLayer.clear();
    this.byReport.clear();
    this.building = undefined;
  }

  has(layer: string): boolean {
    return this.byLayer.has(layer);
  }

  entries(layer: string): IndexEntry[] {
    return this.byLayer.get(layer) ?? [];
  }

  /** Every model with a report in the index, most recently analysed first. */
  models(): string[] {
    const latest = new Map<string, string>();
    for (const list of this.byLayer.values()) {
      for (const e of list) if ((latest.get(e.modelPath) ?? '') < e.createdAt) latest.set(e.modelPath, e.createdAt);
    }
    return [...latest].sort((a, b) => b[1].localeCompare(a[1])).map(([m]) => m);
  }

  private async build(): Promise<void> {
    const folders = this.folders();
    for (const folder of folders) {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '*.json'));
      watcher.onDidCreate((u) => this.scheduleRefresh(u.fsPath));
      watcher.onDidChange((u) => this.scheduleRefresh(u.fsPath));
      watcher.onDidDelete((u) => this.remove(u.fsPath));
      this.watchers.push(watcher);
    }
    for (const s of await this.store.list(folders)) this.set(s.path, s);
  }

  /** Re-reads one report file, a little later (a running analysis rewrites it after every layer). */
  private scheduleRefresh(file: string): void {
    clearTimeout(this.timers.get(file));
    this.timers.set(file, setTimeout(() => {
      this.timers.delete(file);
      void this.store.summary(file).then((s) => (s ? this.set(file, s) : this.remove(file)));
    }, 150));
  }

  /** Replaces what the index holds about one report. */
  set(file: string, s: ReportSummary): void {
    this.remove(file);
    const finished = s.layers.filter((l) => Number.isFinite(l.mean));
    const order = [...finished].sort((a, b) => b.mean - a.mean).map((l) => l.name);
    const names: string[] = [];
    for (const l of finished) {
      const entry: IndexEntry = {
        reportPath: file,
        model: modelName(s.modelPath),
        modelPath: s.modelPath,
        createdAt: s.createdAt,
        status: s.status,
        kind: l.kind,
        mean: l.mean,
        std: l.std,
        rank: order.indexOf(l.name) + 1,
        count: finished.length,
        ...(l.ru ? { ru: l.ru } : {}),
        ...(l.concentration !== undefined ? { concentration: l.concentration } : {}),
        ...(l.gradNorm !== undefined ? { gradNorm: l.gradNorm } : {}),
        ...(l.quality ? { quality: l.quality } : {}),
        ...(l.ruQuality ? { ruQuality: l.ruQuality } : {}),
      };
      const list = this.byLayer.get(l.name) ?? [];
      list.push(entry);
      list.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      this.byLayer.set(l.name, list);
      names.push(l.name);
    }
    this.byReport.set(file, names);
  }

  remove(file: string): void {
    this.store.forget(file);
    for (const name of this.byReport.get(file) ?? []) {
      const left = (this.byLayer.get(name) ?? []).filter((e) => e.reportPath !== file);
      if (left.length) this.byLayer.set(name, left);
      else this.byLayer.delete(name);
    }
    this.byReport.delete(file);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.invalidate();
    for (const s of this.subscriptions.splice(0)) s.dispose();
  }
}

function fmt(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}

function fmtDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "; RU 1.234 ± 0.050 (decoder 18.2 dB), concentration 0.120, |grad| 0.00123" for the metrics an entry has; '' for none. */
export function extraMetricsText(e: Pick<IndexEntry, 'ru' | 'concentration' | 'gradNorm' | 'ruQuality'>): string {
  const parts: string[] = [];
  if (e.ru) {
    const poor = Number.isFinite(e.ru.psnr) && e.ru.psnr < POOR_DECODER_PSNR ? ', poor' : '';
    const flag = e.ruQuality ? ` ⚠ ${e.ruQuality.verdict}` : '';
    parts.push(`RU ${e.ruQuality?.bound ? '≥' : ''}${fmt(e.ru.mean)} ± ${fmt(e.ru.std)} (decoder ${fmt(e.ru.psnr, 1)} dB${poor})${flag}`);
  }
  if (e.concentration && Number.isFinite(e.concentration.mean)) parts.push(`concentration ${fmt(e.concentration.mean)}`);
  if (e.gradNorm !== undefined && Number.isFinite(e.gradNorm)) parts.push(`\\|grad\\| ${e.gradNorm.toPrecision(3)}`);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

/**
 * The hover's Markdown. Every piece of report text is escaped; the only link is the command link, and the
 * MarkdownString trusts that one command and nothing else.
 */
export function layerHoverMarkdown(layer: string, entries: IndexEntry[], order?: { own: string[]; mentioned: boolean }): vscode.MarkdownString {
  const md = new vscode.MarkdownString('', false);
  md.supportHtml = false;
  md.isTrusted = { enabledCommands: [SHOW_LAYER_COMMAND] };
  md.appendMarkdown(`**infodiscard** · layer ${escapeMarkdown(layer)}\n\n`);
  const shown = entries.slice(0, MAX_REPORTS_PER_HOVER);
  const own = order?.own ?? [];
  const ownCount = own.length ? shown.filter((e) => own.includes(e.modelPath)).length : 0;
  shown.forEach((e, i) => {
    // With reports of other models too: say which reports are this file's model's, and where the others start.
    if (ownCount > 0 && ownCount < entries.length && i === 0) {
      md.appendMarkdown(`${order?.mentioned ? 'The model this file names' : 'The most recently analysed model'}:\n\n`);
    }
    if (ownCount > 0 && i === ownCount) md.appendMarkdown(`\nOther models:\n\n`);
    appendEntry(md, layer, e);
  });
  if (entries.length > shown.length) md.appendMarkdown(`- and ${entries.length - shown.length} more reports\n`);
  return md;
}

function appendEntry(md: vscode.MarkdownString, layer: string, e: IndexEntry): void {
  const args: ShowLayerArgs = { report: e.reportPath, layer };
  const status = e.status === 'complete' ? '' : ` · ${escapeMarkdown(e.status)}`;
  const when = fmtDate(e.createdAt);
  md.appendMarkdown(
    `- **${escapeMarkdown(e.model)}**${e.kind ? ` (${escapeMarkdown(e.kind)})` : ''}: SID ${e.quality?.bound ? '≥' : ''}${fmt(e.mean)} ± ${fmt(e.std)} nats/pixel, `
    + `rank ${e.rank} of ${e.count} (1 = discards most)${extraMetricsText(e)}${when ? ` · ${escapeMarkdown(when)}` : ''}${status} · `
    + `[Open in panel](${commandUri(SHOW_LAYER_COMMAND, [args])} "Open the report at this layer")\n`,
  );
  // Schema 3: a flagged value says so, with the reason (e.g. a lower bound at sigma_max).
  if (e.quality) md.appendMarkdown(`  ⚠ SID ${escapeMarkdown(e.quality.verdict)}: ${escapeMarkdown(e.quality.reason ?? '')}\n`);
  if (e.ruQuality) md.appendMarkdown(`  ⚠ RU ${escapeMarkdown(e.ruQuality.verdict)}: ${escapeMarkdown(e.ruQuality.reason ?? '')}\n`);
}

/**
 * The entries of a layer ordered for a hover in a document: reports of the model the document belongs to first
 * (a model whose path or file name the document mentions, see modelsMentioned; else the most recently analysed
 * model), newest first; the other models' reports after. `own` says which models came first.
 */
export function orderForDocument(entries: IndexEntry[], documentText: string, models: string[]): { entries: IndexEntry[]; own: string[]; mentioned: boolean } {
  const mentioned = modelsMentioned(documentText, models);
  const own = mentioned.length ? mentioned : models.slice(0, 1);
  const isOwn = (e: IndexEntry): boolean => own.includes(e.modelPath);
  const first = entries.filter(isOwn);
  const rest = entries.filter((e) => !isOwn(e));
  return { entries: [...first, ...rest], own: first.length ? own : [], mentioned: mentioned.length > 0 && first.length > 0 };
}

export class LayerHoverProvider implements vscode.HoverProvider {
  constructor(private readonly index: LayerIndex) {}

  async provideHover(document: vscode.TextDocument, position: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const line = document.lineAt(position.line).text;
    const syntax: Syntax = document.languageId === 'python' ? 'python' : 'js';
    // Cheap test first: is the cursor in a string literal at all? Only then touch the index.
    if (!layerNameAt(line, position.character, () => true, syntax)) return undefined;
    await this.index.ensure();
    if (token.isCancellationRequested) return undefined;
    const lit = layerNameAt(line, position.character, (name) => this.index.has(name), syntax);
    if (!lit) return undefined;
    const text = typeof document.getText === 'function' ? document.getText() : '';
    const ordered = orderForDocument(this.index.entries(lit.text), text, this.index.models());
    return new vscode.Hover(
      layerHoverMarkdown(lit.text, ordered.entries, ordered),
      new vscode.Range(position.line, lit.start, position.line, lit.end),
    );
  }
}

/** Registers the hover provider; the index it uses is built on the first hover over a string. */
export function registerHovers(ctx: Ctx, index: LayerIndex): void {
  const selector = HOVER_LANGUAGES.map((language) => ({ language }));
  ctx.own(vscode.languages.registerHoverProvider(selector, new LayerHoverProvider(index)));
  ctx.own(index);
}
