/**
 * The "infodiscard" activity-bar view: the workspace's models that have saved reports, each with its reports
 * (status, date, and — where a model has several — named by the settings in which they differ), and under a
 * report its layers with their mean SID (and RU when measured). Inline actions: open, re-run, compare, delete.
 *
 * Reads through the ReportStore (summaries cached by mtime/size); the list is read when the view is first shown
 * and again after a report file changes (FileSystemWatcher on each reports folder, and the extension's own writes),
 * debounced so an analysis rewriting its report after each layer does not rebuild the tree each time.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { modelName, type LayerSummary, type ReportSummary } from '../reportStore';
import { differingNames, shortDate } from './settingsDiff';

export const VIEW_ID = 'infodiscard.reports';

export type TreeNode = ModelNode | ReportNode | LayerNode;

export interface ModelNode {
  kind: 'model';
  /** Absolute model path (a relative one in a report is resolved against the report's workspace folder). */
  modelPath: string;
  name: string;
  reports: ReportNode[];
}

export interface ReportNode {
  kind: 'report';
  summary: ReportSummary;
  modelPath: string;
  /** The settings in which this report differs from the model's other reports ('' for a lone report). */
  name: string;
}

export interface LayerNode {
  kind: 'layer';
  report: ReportNode;
  layer: LayerSummary;
}

/** A report's model path, absolute: CLI reports may hold one relative to where the CLI ran (the workspace folder). */
export function resolveModelPath(summary: Pick<ReportSummary, 'modelPath' | 'path'>, baseDir: string | undefined): string {
  const p = summary.modelPath;
  if (!p) return '';
  if (path.isAbsolute(p)) return path.normalize(p);
  return path.resolve(baseDir ?? path.dirname(path.dirname(summary.path)), p);
}

/** Models (newest report first) with their reports (newest first), each report named by what sets it apart. */
export function groupReports(summaries: ReportSummary[], baseDir: (reportFile: string) => string | undefined): ModelNode[] {
  const byModel = new Map<string, ReportSummary[]>();
  for (const s of summaries) {
    const key = resolveModelPath(s, baseDir(s.path)) || s.path;
    const list = byModel.get(key) ?? [];
    list.push(s);
    byModel.set(key, list);
  }
  const models: ModelNode[] = [];
  for (const [modelPath, list] of byModel) {
    list.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    const names = differingNames(list.map((s) => ({ settings: s.settings, modelSha: s.modelSha, images: s.images, requestedLayers: s.requestedLayers, createdAt: s.createdAt })));
    const node: ModelNode = { kind: 'model', modelPath, name: modelName(modelPath), reports: [] };
    node.reports = list.map((summary, i) => ({ kind: 'report', summary, modelPath, name: names[i] }));
    models.push(node);
  }
  models.sort((a, b) => b.reports[0].summary.createdAt.localeCompare(a.reports[0].summary.createdAt) || a.name.localeCompare(b.name));
  return models;
}

const fmt = (v: number, digits = 3): string => (Number.isFinite(v) ? v.toFixed(digits) : '—');

const STATUS_ICONS: Record<string, string> = { complete: 'pass', running: 'sync~spin', failed: 'error', cancelled: 'circle-slash', partial: 'warning' };

/** "complete · 2026-12-06 21:48 · 4 layers" (or "3 of 4 layers"). */
export function reportDescription(s: ReportSummary): string {
  const done = s.layers.length === s.requestedLayers ? `${s.layers.length} layer${s.layers.length === 1 ? '' : 's'}` : `${s.layers.length} of ${s.requestedLayers} layers`;
  return [s.status, shortDate(s.createdAt), done].filter(Boolean).join(' · ');
}

/** "SID 0.123 ± 0.010 · RU 1.234" for a layer row. */
export function layerDescription(l: LayerSummary): string {
  const parts = [`SID ${fmt(l.mean)} ± ${fmt(l.std)}`];
  if (l.ru && Number.isFinite(l.ru.mean)) parts.push(`RU ${fmt(l.ru.mean)}`);
  return parts.join(' · ');
}

export class ReportsTreeProvider implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private models: Promise<ModelNode[]> | undefined;
  private watchers: vscode.Disposable[] = [];
  private watched = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(
    private readonly ctx: Ctx,
    private readonly folders: () => string[],
    private readonly debounceMs = 200,
  ) {
    this.subscriptions.push(ctx.onReportChanged(() => this.scheduleRefresh()));
  }

  /** Re-reads the reports folders now (the Refresh button, a changed setting). */
  refresh(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.models = undefined;
    this.changed.fire(undefined);
  }

  scheduleRefresh(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), this.debounceMs);
  }

  /** The models, read on first use and after each change. */
  modelNodes(): Promise<ModelNode[]> {
    this.models ??= this.read();
    return this.models;
  }

  private async read(): Promise<ModelNode[]> {
    const folders = this.folders();
    this.watch(folders);
    const summaries = await this.ctx.store.list(folders);
    const base = (file: string): string | undefined => vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file))?.uri.fsPath;
    return groupReports(summaries, base);
  }

  /** One watcher per reports folder (re-made when the folders change). */
  private watch(folders: string[]): void {
    const key = folders.join('\n');
    if (key === this.watched) return;
    for (const w of this.watchers.splice(0)) w.dispose();
    this.watched = key;
    for (const folder of folders) {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '*.json'));
      const onChange = (u: vscode.Uri): void => {
        if (!u.fsPath.endsWith('.json')) return;
        this.ctx.store.forget(u.fsPath);
        this.scheduleRefresh();
      };
      this.watchers.push(watcher, watcher.onDidCreate(onChange), watcher.onDidChange(onChange), watcher.onDidDelete(onChange));
    }
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    if (!node) return this.modelNodes();
    if (node.kind === 'model') return node.reports;
    if (node.kind === 'report') return node.summary.layers.map((layer) => ({ kind: 'layer', report: node, layer }));
    return [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    if (node.kind === 'model') {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `model:${node.modelPath}`;
      item.description = `${vscode.workspace.asRelativePath(node.modelPath)} · ${node.reports.length} report${node.reports.length === 1 ? '' : 's'}`;
      item.tooltip = node.modelPath;
      item.iconPath = new vscode.ThemeIcon('symbol-class');
      item.contextValue = 'infodiscard.model';
      item.resourceUri = vscode.Uri.file(node.modelPath);
      return item;
    }
    if (node.kind === 'report') {
      const s = node.summary;
      const label = node.name || shortDate(s.createdAt) || path.basename(s.path);
      const item = new vscode.TreeItem(label, s.layers.length ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
      item.id = `report:${s.path}`;
      item.description = reportDescription(s);
      item.tooltip = `${node.name ? `${node.name}\n` : ''}${reportDescription(s)}\n${s.path}`;
      item.iconPath = new vscode.ThemeIcon(STATUS_ICONS[s.status] ?? 'circle-outline');
      item.contextValue = `infodiscard.report.${s.status}`;
      item.command = { command: TREE_COMMANDS.open, title: 'Open Report', arguments: [node] };
      return item;
    }
    const item = new vscode.TreeItem(node.layer.name, vscode.TreeItemCollapsibleState.None);
    item.id = `layer:${node.report.summary.path}:${node.layer.name}`;
    item.description = layerDescription(node.layer);
    item.tooltip = `${node.layer.name}${node.layer.kind ? ` (${node.layer.kind})` : ''}: ${layerDescription(node.layer)} nats/pixel`;
    item.iconPath = new vscode.ThemeIcon('layers');
    item.contextValue = 'infodiscard.layer';
    item.command = { command: 'infodiscard.showLayer', title: 'Show Layer in Report', arguments: [{ report: node.report.summary.path, layer: node.layer.name }] };
    return item;
  }

  getParent(node: TreeNode): TreeNode | undefined {
    if (node.kind === 'layer') return node.report;
    return undefined;
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.dispose();
    for (const s of this.subscriptions.splice(0)) s.dispose();
    this.changed.dispose();
  }
}

/** The view's commands (declared in package.json, hidden from the palette except Refresh). */
export const TREE_COMMANDS = {
  open: 'infodiscard.reports.open',
  rerun: 'infodiscard.reports.rerun',
  compare: 'infodiscard.reports.compare',
  delete: 'infodiscard.reports.delete',
  refresh: 'infodiscard.reports.refresh',
} as const;
