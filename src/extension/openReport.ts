/**
 * "Open Report…": a quick pick of the saved reports (model, date, status, stale) or any report file, shown in
 * the panel; a folder of shard parts (infodiscard analyze --shard I/N), merged on open when complete, its missing
 * shards named when not; and the hover link's "open the panel at this layer".
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { UserError } from '../engine/errors';
import { parseReport, writeReport } from '../engine/reportFile';
import { readParts } from '../engine/shardFiles';
import { mergeShardParts, missingShardsText, PART_NAME } from '../engine/shards';
import { asSeriesFile, isSeriesPartsFolder, mergeSeries, type SeriesFile } from '../engine/series';
import type { Report } from '../engine/report';
import type { Ctx } from './ctx';
import type { ShowLayerArgs } from './hovers';
import { showError } from './notify';
import { ReportPanel, type PanelHooks } from './panel';
import { allReportsFolders, modelName, type Freshness, type ReportSummary } from './reportStore';
import { groupReports } from './views/reportsTree';

/** What sets the report at `file` apart from the other saved reports of its model (reports view naming); '' if nothing. */
export async function reportDetail(ctx: Ctx, file: string): Promise<string> {
  const summaries = await ctx.store.list(reportsFolders(ctx));
  const base = (f: string): string | undefined => vscode.workspace.getWorkspaceFolder(vscode.Uri.file(f))?.uri.fsPath;
  for (const model of groupReports(summaries, base)) {
    const own = model.reports.find((r) => r.summary.path === file);
    if (own) return own.name;
  }
  return '';
}

export function panelHooks(ctx: Ctx): PanelHooks {
  return {
    freshness: (report) => ctx.store.freshness({ modelPath: String(report.model?.path ?? ''), modelSha: String(report.model?.sha256 ?? '') }),
    detail: (file) => reportDetail(ctx, file),
    defaultSaveFolder: () => vscode.workspace.workspaceFolders?.[0]?.uri,
  };
}

export function reportsFolders(ctx: Ctx): string[] {
  const setting = (scope: vscode.Uri | undefined): string => String(vscode.workspace.getConfiguration('infodiscard', scope).get('reportsFolder') ?? '.infodiscard');
  return allReportsFolders(setting, ctx.extension.globalStorageUri);
}

/** Opens one report file in its panel (created or revealed), optionally at a layer. */
export async function openReportFile(ctx: Ctx, file: string, layer?: string): Promise<ReportPanel> {
  let report;
  try {
    report = parseReport(await readFile(file, 'utf8'), file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError('no such report file', file);
    throw e;
  }
  const existing = ReportPanel.all().find((p) => p.sources.some((s) => s.path === file));
  const panel = existing ?? ReportPanel.createOrShow(ctx, [{ path: file, label: modelName(String(report.model?.path ?? file)) }], panelHooks(ctx), new Map([[file, report]]));
  if (existing) {
    existing.update(file, report);
    existing.reveal();
  }
  if (layer) panel.selectLayer(layer);
  return panel;
}

export function freshnessText(f: Freshness): string {
  return f === 'stale' ? '$(warning) stale: the model changed' : f === 'missing' ? '$(warning) model file missing' : '';
}

interface ReportItem extends vscode.QuickPickItem {
  file?: string;
  browse?: boolean;
  browseParts?: boolean;
}

/** The merged report written into a parts folder when it is opened (the merge's names; not a part). */
export const MERGED_NAME = 'merged-report.json';
export const PARTIAL_NAME = 'partial-report.json';

/**
 * Opens a folder of shard parts: complete, they are merged into <folder>/merged-report.json and it opens; with
 * shards missing, a warning names them and offers the partial report (<folder>/partial-report.json). Refuses
 * a mixture of analyses with the merge's one line.
 */
export async function openPartsFolder(ctx: Ctx, folder: string): Promise<ReportPanel | undefined> {
  const merged = mergeShardParts(readParts([folder]));
  if (merged.missing.length === 0) {
    const file = path.join(folder, MERGED_NAME);
    writeReport(file, merged.report);
    ctx.log.info(`${folder}: merged ${merged.count} shard parts into ${file}`);
    return openReportFile(ctx, file);
  }
  const text = missingShardsText(merged.count, merged.missing);
  ctx.log.warn(`${folder}: ${text}`);
  const open = 'Open Partial Report';
  const choice = await vscode.window.showWarningMessage(
    `infodiscard: ${path.basename(folder)}: ${text}. ${merged.report.layers.length} of ${merged.report.requestedLayers.length} layers are complete.`,
    open,
  );
  if (choice !== open) return undefined;
  const file = path.join(folder, PARTIAL_NAME);
  writeReport(file, merged.report);
  return openReportFile(ctx, file);
}

/**
 * A checkpoint series (infodiscard compare-checkpoints; src/engine/series.ts) as the Compare Checkpoints panel: SID
 * per layer against epoch, one source per checkpoint that has a report. Checkpoints without one are named.
 */
export async function openSeriesFile(ctx: Ctx, file: string, series: SeriesFile): Promise<ReportPanel | undefined> {
  const base = path.dirname(file);
  const sources = series.checkpoints.flatMap((c) => (c.report ? [{ path: path.resolve(base, c.report), label: c.label, epoch: c.epoch }] : []));
  const absent = series.checkpoints.filter((c) => c.status !== 'complete').map((c) => `${c.label} (${c.status === 'missing' ? 'no shard finished' : missingShardsText(c.shards, c.missingShards)})`);
  if (absent.length > 0) {
    ctx.log.warn(`${file}: incomplete checkpoints: ${absent.join('; ')}`);
    void vscode.window.showWarningMessage(`infodiscard: ${path.basename(file)}: ${absent.length} of ${series.checkpoints.length} checkpoints are incomplete: ${absent.join('; ')}`);
  }
  if (sources.length === 0) return undefined;
  const known = new Map<string, Report>();
  for (const s of sources) known.set(s.path, parseReport(await readFile(s.path, 'utf8'), s.path));
  return ReportPanel.createOrShow(ctx, sources, panelHooks(ctx), known, { folder: series.folder, axis: series.axis });
}

/** A report file, a series file, a parts folder (of one analysis or a checkpoint series), or a part file (its folder). */
export async function openReportPath(ctx: Ctx, file: string): Promise<void> {
  let dir = false;
  try {
    dir = statSync(file).isDirectory();
  } catch {
    // openReportFile says it is missing.
  }
  if (dir && isSeriesPartsFolder(file)) {
    const out = path.join(file, 'series.json');
    await openSeriesFile(ctx, out, mergeSeries(file, out));
  } else if (dir) await openPartsFolder(ctx, file);
  else if (PART_NAME.test(path.basename(file))) await openPartsFolder(ctx, path.dirname(file));
  else {
    let series: SeriesFile | undefined;
    try {
      series = asSeriesFile(JSON.parse(await readFile(file, 'utf8')));
    } catch {
      // Not JSON or unreadable: openReportFile says so.
    }
    if (series) await openSeriesFile(ctx, file, series);
    else await openReportFile(ctx, file);
  }
}

async function reportItems(ctx: Ctx, summaries: ReportSummary[]): Promise<ReportItem[]> {
  // Reports written by the CLI may hold a model path relative to where it ran: try the workspace folder.
  const base = (file: string): string | undefined => vscode.workspace.getWorkspaceFolder(vscode.Uri.file(file))?.uri.fsPath;
  const fresh = await Promise.all(summaries.map((s) => ctx.store.freshness(s, base(s.path))));
  const items: ReportItem[] = summaries.map((s, i) => {
    const done = s.layers.length === s.requestedLayers ? `${s.layers.length} layers` : `${s.layers.length} of ${s.requestedLayers} layers`;
    const stale = freshnessText(fresh[i]);
    return {
      label: modelName(s.modelPath),
      description: `${s.createdAt.slice(0, 16).replace('T', ' ')} · ${s.status} · ${done}${stale ? ` · ${stale}` : ''}`,
      detail: vscode.workspace.asRelativePath(s.path),
      file: s.path,
    };
  });
  items.push({ label: '$(folder-opened) Browse…', description: 'any infodiscard report file', browse: true, alwaysShow: true });
  items.push({ label: '$(files) Open Shard Parts…', description: 'a folder of parts of a sharded analysis (analyze --shard I/N), merged on open', browseParts: true, alwaysShow: true });
  return items;
}

export async function openReportCommand(ctx: Ctx, uri?: vscode.Uri): Promise<void> {
  try {
    if (uri instanceof vscode.Uri) {
      await openReportPath(ctx, uri.fsPath);
      return;
    }
    const items: Promise<ReportItem[]> = ctx.store.list(reportsFolders(ctx)).then((s) => reportItems(ctx, s));
    const picked = await vscode.window.showQuickPick<ReportItem>(items, {
      title: 'infodiscard: open report',
      placeHolder: 'Saved reports, newest first',
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (!picked) return;
    let file = picked.file;
    if (picked.browse) {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Open Report', filters: { 'infodiscard report': ['json'] } });
      file = uris?.[0]?.fsPath;
    }
    if (picked.browseParts) {
      const uris = await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFiles: false, canSelectFolders: true, openLabel: 'Open Shard Parts' });
      file = uris?.[0]?.fsPath;
    }
    if (file) await openReportPath(ctx, file);
  } catch (e) {
    showError(ctx, e);
  }
}

/** The hover link: open the report's panel and select the layer. Arguments are untrusted (they come from a URI). */
export async function showLayerCommand(ctx: Ctx, args?: ShowLayerArgs): Promise<void> {
  try {
    if (!args || typeof args.report !== 'string' || typeof args.layer !== 'string' || !path.isAbsolute(args.report) || !args.report.endsWith('.json')) return;
    await openReportFile(ctx, args.report, args.layer);
  } catch (e) {
    showError(ctx, e);
  }
}
