/**
 * The report panel (webview), after microsoft/vscode-extension-samples' webview-sample: one panel per set of
 * reports (one report, or several compared), created or revealed beside the editor, restored after a reload by a
 * WebviewPanelSerializer from the state the webview keeps (which report files it shows).
 *
 * Messages wait for the webview's {type: 'ready'}: until then (and whenever the webview is reloaded, e.g. after
 * being hidden) the latest panel state, content and layer selection are held and sent in that order on 'ready'.
 *
 * Compare Checkpoints panels (a CheckpointsView, every source with its epoch) send 'compareEpochs' instead of
 * 'compare', keep the view in the panel state and are restored with it.
 *
 * Object boxes: the webview sends {type: 'setRegion', source, image, bbox} when the user draws (or clears) the
 * object box of an image. The panel re-reads that report file, sets images[image].region {bbox, source: 'panel'}
 * and its regionMask, recomputes every layer's concentration from the stored SID maps (the same pure code the
 * webview previewed with), writes the file atomically and shows the result in every panel. It refuses (and the
 * webview reverts) while an analysis is writing that file.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import type { Report } from '../engine/report';
import { parseReport, writeReport } from '../engine/reportFile';
import { setRegion as applyRegion } from '../../webview/report/regionEdit';
import type { CheckpointsView, FromWebview, PanelState, ReportSource, ToWebview, WebviewSavedState } from '../protocol';
import { makeNonce, reportHtmlDocument } from '../report-html/render';
import type { Ctx } from './ctx';
import { plainMessage } from './messages';
import type { Freshness } from './reportStore';

export const VIEW_TYPE = 'infodiscard.report';
/** Largest export the panel will write (a PNG of the chart is well under this). */
const MAX_SAVE_BYTES = 64 * 1024 * 1024;
/**
 * A report whose file still says 'running' but that no analysis of this window writes: another process (the CLI)
 * may be writing it, so boxes wait until it has not changed for this long (a crashed run's report stays editable).
 */
const FOREIGN_RUN_QUIET_MS = 120_000;
/** Most reports a restored panel reopens: a compare panel, and a Compare Checkpoints panel (a whole training run). */
const MAX_SOURCES = 32;
const MAX_CHECKPOINT_SOURCES = 512;

export interface PanelHooks {
  /** Whether a report still matches its model file (for the title). */
  freshness?(report: Report): Promise<Freshness>;
  /**
   * What sets a report apart from the other saved reports of its model ("α 2 · K 16"), for the title of a panel
   * showing one report; '' when nothing does (its model's only report).
   */
  detail?(file: string, report: Report): Promise<string>;
  /** Where the save dialog starts. */
  defaultSaveFolder?(): vscode.Uri | undefined;
}

function keyOf(sources: ReportSource[], checkpoints?: CheckpointsView): string {
  return `${checkpoints ? `checkpoints:${checkpoints.folder}\n` : ''}${sources.map((s) => s.path).sort().join('\n')}`;
}

/** The Compare Checkpoints view from the webview's saved state (untrusted), if it is one. */
export function checkpointsFromState(state: unknown): CheckpointsView | undefined {
  const view = (state as WebviewSavedState | undefined)?.panel?.checkpoints;
  if (!view || typeof view !== 'object' || typeof view.folder !== 'string' || (view.axis !== 'epoch' && view.axis !== 'order')) return undefined;
  return { folder: view.folder, axis: view.axis };
}

/** Panel state from the webview's saved state (untrusted: it round-trips through the webview). */
export function sourcesFromState(state: unknown): ReportSource[] {
  const sources = (state as WebviewSavedState | undefined)?.panel?.sources;
  if (!Array.isArray(sources)) return [];
  const checkpoints = checkpointsFromState(state);
  return sources
    .filter((s): s is ReportSource => !!s && typeof s.path === 'string' && path.isAbsolute(s.path) && s.path.endsWith('.json'))
    .filter((s) => !checkpoints || (typeof s.epoch === 'number' && Number.isFinite(s.epoch)))
    .map((s) => ({
      path: s.path,
      label: typeof s.label === 'string' ? s.label : path.basename(s.path),
      ...(checkpoints ? { epoch: s.epoch } : {}),
      ...(typeof s.group === 'string' ? { group: s.group } : {}),
      ...(typeof s.seed === 'number' && Number.isInteger(s.seed) ? { seed: s.seed } : {}),
    }))
    .slice(0, checkpoints ? MAX_CHECKPOINT_SOURCES : MAX_SOURCES);
}

export class ReportPanel {
  private static readonly panels = new Set<ReportPanel>();
  /** Object-box writes per report file, one at a time and in order. */
  private static readonly regionWrites = new Map<string, Promise<void>>();

  private readonly disposables: vscode.Disposable[] = [];
  private readonly reports = new Map<string, Report>();
  private ready = false;
  /** Latest of each kind, sent on 'ready' in this order. */
  private pendingContent: ToWebview | undefined;
  private pendingSelect: ToWebview | undefined;
  private stale = new Map<string, Freshness>();
  /** Per report file: what sets it apart from its model's other reports, and the report status it was asked at. */
  private readonly details = new Map<string, string>();
  private readonly detailAsked = new Map<string, string>();
  private disposed = false;

  /**
   * Shows `sources` (one report, or several to compare): reveals the panel that already shows exactly them.
   * `checkpoints`: a Compare Checkpoints panel (each source has its `epoch`), charted against epoch as well.
   */
  static createOrShow(ctx: Ctx, sources: ReportSource[], hooks: PanelHooks = {}, reports?: Map<string, Report>, checkpoints?: CheckpointsView): ReportPanel {
    const key = keyOf(sources, checkpoints);
    for (const p of ReportPanel.panels) {
      if (keyOf(p.sources, p.checkpoints) === key) {
        // Where it is (undefined: its own group), not Beside: Beside from a focused panel would open yet another group.
        p.panel.reveal(undefined, true);
        if (reports) for (const [file, r] of reports) p.update(file, r);
        return p;
      }
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, 'infodiscard', { viewColumn: ReportPanel.column(), preserveFocus: true }, ReportPanel.options(ctx));
    return new ReportPanel(ctx, panel, sources, hooks, reports, checkpoints);
  }

  /** Restores a panel after a window reload (the serializer hands over the webview's saved state). */
  static revive(ctx: Ctx, panel: vscode.WebviewPanel, state: unknown, hooks: PanelHooks = {}): ReportPanel {
    panel.webview.options = ReportPanel.options(ctx);
    return new ReportPanel(ctx, panel, sourcesFromState(state), hooks, undefined, checkpointsFromState(state));
  }

  /** A report file changed (a layer finished, an analysis ended): every panel showing it updates. */
  static reportChanged(file: string, report: Report): void {
    for (const p of ReportPanel.panels) if (p.sources.some((s) => s.path === file)) p.update(file, report);
  }

  /**
   * Where a new panel opens: the group that already holds a report panel (the most recently created one still
   * open), so panels gather in one group beside the code; Beside the active editor for the first one.
   */
  static column(): vscode.ViewColumn {
    const open = [...ReportPanel.panels].reverse().map((p) => p.panel.viewColumn).find((c) => typeof c === 'number' && c > 0);
    return open ?? vscode.ViewColumn.Beside;
  }

  /** The open panels (for tests and the hover command). */
  static all(): readonly ReportPanel[] {
    return [...ReportPanel.panels];
  }

  private static options(ctx: Ctx): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableFindWidget: true,
      // The webview loads only the report UI bundle: dist/ and nothing else.
      localResourceRoots: [vscode.Uri.joinPath(ctx.extensionUri, 'dist')],
    };
  }

  private constructor(
    private readonly ctx: Ctx,
    readonly panel: vscode.WebviewPanel,
    readonly sources: ReportSource[],
    private readonly hooks: PanelHooks,
    reports?: Map<string, Report>,
    /** Set for a Compare Checkpoints panel. */
    readonly checkpoints?: CheckpointsView,
  ) {
    ReportPanel.panels.add(this);
    ctx.openPanels++;
    if (reports) for (const [file, r] of reports) this.reports.set(file, r);
    panel.webview.html = this.html();
    this.updateTitle();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m)),
      // A hidden webview is torn down; it says 'ready' again when shown.
      panel.onDidChangeViewState(() => {
        if (!panel.visible) this.ready = false;
      }),
    );
    this.pendingContent = this.content();
    void this.loadMissing();
  }

  /** Selects a layer (hover link), once the webview is ready. */
  selectLayer(layer: string): void {
    this.post({ type: 'selectLayer', layer });
  }

  reveal(): void {
    this.panel.reveal(undefined, false);
  }

  update(file: string, report: Report): void {
    // The same object again (a box this panel wrote, announced once more to every listener): nothing new.
    if (this.disposed || this.reports.get(file) === report) return;
    this.reports.set(file, report);
    this.stale.delete(file);
    this.updateTitle();
    const content = this.content();
    if (content) this.post(content);
  }

  private async loadMissing(): Promise<void> {
    await Promise.all(this.sources.map(async (s) => {
      if (this.reports.has(s.path)) return;
      try {
        const report = parseReport(await readFile(s.path, 'utf8'), s.path);
        if (!this.reports.has(s.path)) this.update(s.path, report);
      } catch (e) {
        // Not written yet (an analysis is starting) or gone: the panel shows the others.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.ctx.log.warn(`panel: ${plainMessage((e as Error).message)}`);
      }
    }));
    this.updateTitle();
  }

  /** The message that shows this panel's reports, or undefined while none is loaded. */
  private content(): ToWebview | undefined {
    // Each report goes with its file, which the webview names when it asks to save an object box.
    const series = this.sources.filter((s) => this.reports.has(s.path)).map((s) => ({
      label: s.label, report: this.reports.get(s.path)!, source: s.path,
      ...(s.group !== undefined ? { group: s.group } : {}), ...(s.seed !== undefined ? { seed: s.seed } : {}),
    }));
    if (series.length === 0) return undefined;
    if (this.checkpoints) {
      const epochs = this.sources.map((s) => s.epoch ?? NaN);
      const withEpochs = series.map((x) => ({ ...x, epoch: this.sources.find((s) => s.path === x.source)?.epoch ?? NaN }));
      return { type: 'compareEpochs', series: withEpochs, view: this.checkpoints, epochs };
    }
    if (this.sources.length === 1) return { type: 'report', report: series[0].report, source: series[0].source };
    return { type: 'compare', series };
  }

  private panelState(): ToWebview {
    const state: PanelState = { sources: this.sources, ...(this.checkpoints ? { checkpoints: this.checkpoints } : {}) };
    return { type: 'panelState', state };
  }

  private post(message: ToWebview): void {
    if (message.type === 'selectLayer') this.pendingSelect = message;
    else if (message.type === 'report' || message.type === 'compare' || message.type === 'compareEpochs') this.pendingContent = message;
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage(message);
    // Delivered: a later reload re-sends the content, but not an old selection.
    if (message.type === 'selectLayer') this.pendingSelect = undefined;
  }

  private flush(): void {
    const out: ToWebview[] = [this.panelState()];
    if (this.pendingContent) out.push(this.pendingContent);
    if (this.pendingSelect) out.push(this.pendingSelect);
    this.pendingSelect = undefined;
    for (const m of out) void this.panel.webview.postMessage(m);
  }

  private async onMessage(raw: unknown): Promise<void> {
    const m = raw as FromWebview | null;
    if (!m || typeof m !== 'object') return;
    if (m.type === 'ready') {
      this.ready = true;
      this.flush();
    } else if (m.type === 'save') {
      await this.save(m);
    } else if (m.type === 'setRegion') {
      await this.setRegion(m);
    } else if (m.type === 'editPreprocessing') {
      // The header chip's "Edit preprocessing…": the command asks again, for the report's model and images.
      const source = typeof m.source === 'string' && this.sources.some((s) => s.path === m.source) ? m.source : this.sources[0]?.path;
      await vscode.commands.executeCommand('infodiscard.editPreprocessing', source ? { reportPath: source } : undefined);
    }
  }

  /** The webview's object box (untrusted): checked, then written after any earlier box for the same file. */
  private async setRegion(m: Extract<FromWebview, { type: 'setRegion' }>): Promise<void> {
    const file = m.source;
    if (typeof file !== 'string' || !this.sources.some((s) => s.path === file)) return;
    if (typeof m.image !== 'number' || !Number.isInteger(m.image) || m.image < 0) return;
    const bbox = m.bbox;
    if (bbox !== null && !(Array.isArray(bbox) && bbox.length === 4 && bbox.every((v) => typeof v === 'number' && Number.isFinite(v)))) return;
    const previous = ReportPanel.regionWrites.get(file) ?? Promise.resolve();
    const next = previous.then(() => this.writeRegion(file, m.image, bbox ? [bbox[0], bbox[1], bbox[2], bbox[3]] : null));
    ReportPanel.regionWrites.set(file, next);
    try {
      await next;
    } finally {
      if (ReportPanel.regionWrites.get(file) === next) ReportPanel.regionWrites.delete(file);
    }
  }

  private async writeRegion(file: string, image: number, bbox: [number, number, number, number] | null): Promise<void> {
    const name = plainMessage(path.basename(file));
    // Whatever goes wrong, the webview shows the report as it is on record again (it previewed the box already).
    const refuse = (message: string, level: 'info' | 'error' = 'error'): void => {
      void (level === 'info' ? vscode.window.showInformationMessage(message) : vscode.window.showErrorMessage(message));
      const content = this.content();
      if (content) this.post(content);
    };
    const running = 'infodiscard: the analysis is still writing this report; draw the object box again when it has finished.';
    if (this.ctx.runs.isWriting(file)) return refuse(running, 'info');
    let report: Report;
    try {
      const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
      report = parseReport(text, file);
      if (report.status === 'running' && Date.now() - st.mtimeMs < FOREIGN_RUN_QUIET_MS) return refuse(running, 'info');
    } catch (e) {
      return refuse(`infodiscard: could not read ${name} to save the object box: ${plainMessage((e as Error).message)}`);
    }
    if (this.ctx.runs.isWriting(file)) return refuse(running, 'info');
    if ((Number(report.schemaVersion) || 1) < 2) {
      return refuse(`infodiscard: ${name} is a schema-1 report (SID only); analyse the model again to draw object boxes`);
    }
    const problem = applyRegion(report, image, bbox, 'panel');
    if (problem) return refuse(`infodiscard: object box not saved: ${plainMessage(problem)}`);
    try {
      writeReport(file, report);
    } catch (e) {
      return refuse(`infodiscard: could not save the object box in ${name}: ${plainMessage((e as Error).message)}`);
    }
    this.ctx.log.info(bbox
      ? `object box of image ${image + 1} set to [${bbox.map((v) => +v.toFixed(2)).join(', ')}] in ${file}`
      : `object box of image ${image + 1} cleared in ${file}`);
    // Every panel showing this file, and everyone else following report files (hovers).
    ReportPanel.reportChanged(file, report);
    this.ctx.fireReportChanged({ path: file, report });
  }

  private async save(m: Extract<FromWebview, { type: 'save' }>): Promise<void> {
    if (typeof m.filename !== 'string' || typeof m.data !== 'string' || typeof m.mime !== 'string') return;
    let bytes: Uint8Array;
    if (m.encoding === 'dataUrl') {
      const match = /^data:[\w.+/-]+;base64,([A-Za-z0-9+/=]*)$/.exec(m.data);
      if (!match) return;
      bytes = Buffer.from(match[1], 'base64');
    } else {
      bytes = Buffer.from(m.data, 'utf8');
    }
    if (bytes.length > MAX_SAVE_BYTES) {
      void vscode.window.showErrorMessage('infodiscard: that export is too large to save from the panel');
      return;
    }
    const name = path.basename(m.filename).replace(/[^A-Za-z0-9._ -]+/g, '_').slice(0, 120) || 'infodiscard-export';
    const ext = path.extname(name).slice(1).toLowerCase();
    const kinds: Record<string, string> = { json: 'JSON', csv: 'CSV', png: 'PNG image' };
    const folder = this.hooks.defaultSaveFolder?.() ?? vscode.workspace.workspaceFolders?.[0]?.uri;
    const target = await vscode.window.showSaveDialog({
      defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
      filters: kinds[ext] ? { [kinds[ext]]: [ext] } : undefined,
      saveLabel: 'Export',
    });
    if (!target) return;
    try {
      await vscode.workspace.fs.writeFile(target, bytes);
      this.ctx.log.info(`exported ${target.fsPath}`);
    } catch (e) {
      void vscode.window.showErrorMessage(`infodiscard: could not save ${plainMessage(target.fsPath)}: ${plainMessage((e as Error).message)}`);
    }
  }

  private updateTitle(): void {
    if (this.disposed) return;
    const labels = this.sources.map((s) => s.label);
    const fresh = this.sources.map((s) => this.stale.get(s.path));
    const mark = fresh.includes('stale') ? ' (stale)' : fresh.includes('missing') ? ' (model missing)' : '';
    const detail = labels.length === 1 ? this.details.get(this.sources[0].path) : undefined;
    const base = this.checkpoints
      ? `SID vs ${this.checkpoints.axis === 'epoch' ? 'epoch' : 'checkpoint'}: ${path.basename(this.checkpoints.folder) || this.checkpoints.folder} (${labels.length})`
      : labels.length === 1 ? `SID: ${labels[0]}${detail ? ` · ${detail}` : ''}` : `Compare: ${labels.slice(0, 3).join(' vs ')}${labels.length > 3 ? ` +${labels.length - 3}` : ''}`;
    this.panel.title = plainMessage(`${base}${mark}`, 80);
    void this.checkFreshness();
    void this.checkDetail();
  }

  /** Asks what sets the report apart from its model's other reports (see detailAsked for when). */
  private async checkDetail(): Promise<void> {
    if (!this.hooks.detail || this.sources.length !== 1 || this.checkpoints) return;
    const file = this.sources[0].path;
    const report = this.reports.get(file);
    // Once when the report arrives and again when its status changes (not after every layer of a running analysis).
    if (!report || this.detailAsked.get(file) === report.status) return;
    this.detailAsked.set(file, report.status);
    let detail = '';
    try {
      detail = await this.hooks.detail(file, report);
    } catch {
      detail = '';
    }
    if (this.disposed || this.details.get(file) === detail) return;
    this.details.set(file, detail);
    this.updateTitle();
  }

  private async checkFreshness(): Promise<void> {
    if (!this.hooks.freshness) return;
    let changed = false;
    for (const s of this.sources) {
      const report = this.reports.get(s.path);
      if (!report || this.stale.has(s.path)) continue;
      this.stale.set(s.path, 'current');
      const f = await this.hooks.freshness(report);
      this.stale.set(s.path, f);
      if (f !== 'current') changed = true;
    }
    if (changed) this.updateTitle();
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = makeNonce();
    const script = webview.asWebviewUri(vscode.Uri.joinPath(this.ctx.extensionUri, 'dist', 'webview.js'));
    return reportHtmlDocument({
      title: 'infodiscard report',
      nonce,
      csp: `default-src 'none'; img-src ${webview.cspSource} data: blob:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'`,
      script: { src: script.toString() },
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    ReportPanel.panels.delete(this);
    this.ctx.openPanels--;
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
    // Closing the panel stops the analyses filling it; with no panel left, the workers exit too.
    this.ctx.runs.cancelWriting(this.sources.map((s) => s.path));
    this.ctx.releaseWorkersIfUnused();
  }
}
