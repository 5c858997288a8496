/**
 * Saved reports: the engine's JSON in `<workspace folder>/<infodiscard.reportsFolder>/`, one file per model
 * version and run settings:
 *
 *   <model name>-<model sha256, 12 hex>-<settings hash, 10 hex>.json
 *
 * The settings hash covers the analysis settings, the images (path, size, mtime), the layers and the tool version,
 * so analysing an unchanged model with unchanged settings finds its complete report and reuses it. A report whose
 * model file no longer hashes to report.model.sha256 is stale. Plain Node (no vscode) apart from the folder lookup.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { manifestShardPaths, modelSha256 } from '../engine/modelHash';
import type { Report, ReportStatus } from '../engine/report';
import { parseReport } from '../engine/reportFile';
import type { SettingsInput } from '../engine/settings';
import { VERSION } from '../engine/version';

export interface ImageFile {
  path: string;
  size: number;
  mtimeMs: number;
}

export interface RunInputs {
  settings: SettingsInput;
  images: ImageFile[];
  layers?: string[];
  inputSize?: [number, number];
}

/** What lists, quick picks and the hover index need from a report (no maps, no pixels). */
export interface ReportSummary {
  path: string;
  mtimeMs: number;
  modelPath: string;
  modelSha: string;
  createdAt: string;
  status: ReportStatus;
  layers: { name: string; kind: string; mean: number; std: number }[];
  requestedLayers: number;
}

export type Freshness = 'current' | 'stale' | 'missing';

/** Hash of everything but the model that decides a run's result. Stable key order; 10 hex digits. */
export function settingsHash(inputs: RunInputs): string {
  const s = inputs.settings;
  const canonical = {
    tool: VERSION,
    settings: [s.alpha, s.tau, s.samples, s.maxSteps, s.seed, s.backend, s.inputRange, s.normalize, s.sigmaGrid, s.sigmaMax, s.learningRate],
    images: inputs.images.map((i) => [i.path, i.size, Math.round(i.mtimeMs)]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    layers: inputs.layers ?? null,
    inputSize: inputs.inputSize ?? null,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 10);
}

/** A model's display name: its folder for a model.json, else the file name without extension. */
export function modelName(modelPath: string): string {
  const parts = modelPath.split(/[\\/]/).filter(Boolean);
  const last = parts[parts.length - 1] ?? 'model';
  if (parts.length > 1 && /^model\.json$/i.test(last)) return parts[parts.length - 2];
  return last.replace(/\.[^.]+$/, '') || 'model';
}

export function reportFileName(modelPath: string, modelSha: string, settingsKey: string): string {
  const name = modelName(modelPath).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 40) || 'model';
  return `${name}-${modelSha.slice(0, 12)}-${settingsKey}.json`;
}

export function summarize(report: Report, file: string, mtimeMs: number): ReportSummary {
  return {
    path: file,
    mtimeMs,
    modelPath: String(report.model?.path ?? ''),
    modelSha: String(report.model?.sha256 ?? ''),
    createdAt: String(report.createdAt ?? ''),
    status: report.status,
    layers: report.layers.map((l) => ({ name: String(l.name), kind: String(l.kind ?? ''), mean: Number(l.sid?.mean), std: Number(l.sid?.std) })),
    requestedLayers: Array.isArray(report.requestedLayers) ? report.requestedLayers.length : report.layers.length,
  };
}

async function statOrUndefined(file: string) {
  try {
    return await stat(file);
  } catch {
    return undefined;
  }
}

export class ReportStore {
  private readonly summaries = new Map<string, { key: string; summary: ReportSummary | null }>();
  private readonly hashes = new Map<string, { key: string; sha: Promise<string> }>();
  private readonly shardLists = new Map<string, { key: string; shards: string[] }>();

  constructor(private readonly hashModel: (modelJsonPath: string) => Promise<string> = modelSha256) {}

  /** The report at `file`, or undefined when there is no such file. Throws a UserError for a file that is not a report. */
  async read(file: string): Promise<Report | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return parseReport(text, file);
  }

  /** The complete report at `file` if it was made from the model whose hash is `modelSha`; else undefined. */
  async findReusable(file: string, modelSha: string): Promise<Report | undefined> {
    let report: Report | undefined;
    try {
      report = await this.read(file);
    } catch {
      return undefined; // unreadable: recompute over it
    }
    return report && report.status === 'complete' && report.model?.sha256 === modelSha ? report : undefined;
  }

  /** Summary of one report file (cached by mtime and size); null when it is missing or not a report. */
  async summary(file: string): Promise<ReportSummary | null> {
    const st = await statOrUndefined(file);
    if (!st?.isFile()) {
      this.summaries.delete(file);
      return null;
    }
    const key = `${st.mtimeMs}:${st.size}`;
    const cached = this.summaries.get(file);
    if (cached?.key === key) return cached.summary;
    let summary: ReportSummary | null = null;
    try {
      const report = await this.read(file);
      summary = report ? summarize(report, file, st.mtimeMs) : null;
    } catch {
      summary = null;
    }
    this.summaries.set(file, { key, summary });
    return summary;
  }

  /** Every report in the given folders, newest first. Missing folders are skipped. */
  async list(folders: string[]): Promise<ReportSummary[]> {
    const files: string[] = [];
    for (const folder of folders) {
      try {
        for (const name of await readdir(folder)) if (name.endsWith('.json')) files.push(path.join(folder, name));
      } catch {
        // no reports folder yet
      }
    }
    const out = (await Promise.all(files.map((f) => this.summary(f)))).filter((s): s is ReportSummary => s !== null);
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Forget a file (deleted). */
  forget(file: string): void {
    this.summaries.delete(file);
  }

  /**
   * The current hash of a model, cached while model.json and its shards keep their size and mtime; null when the
   * model or a shard is missing or unreadable.
   */
  async modelHash(modelPath: string): Promise<string | null> {
    const key = await this.modelFilesKey(modelPath);
    if (key === null) return null;
    const cached = this.hashes.get(modelPath);
    if (cached?.key === key) return cached.sha.catch(() => null);
    const sha = this.hashModel(modelPath);
    this.hashes.set(modelPath, { key, sha });
    return sha.catch(() => null);
  }

  /** Whether the report's model file still has the hash the report was made from. */
  async freshness(summary: Pick<ReportSummary, 'modelPath' | 'modelSha'>, baseDir?: string): Promise<Freshness> {
    const modelPath = baseDir && !path.isAbsolute(summary.modelPath) ? path.resolve(baseDir, summary.modelPath) : summary.modelPath;
    const sha = await this.modelHash(modelPath);
    if (sha === null) return 'missing';
    return sha === summary.modelSha ? 'current' : 'stale';
  }

  /** size:mtime of model.json and of every shard it lists; null if any is missing. */
  private async modelFilesKey(modelPath: string): Promise<string | null> {
    const st = await statOrUndefined(modelPath);
    if (!st?.isFile()) return null;
    const jsonKey = `${st.size}:${st.mtimeMs}`;
    let shards = this.shardLists.get(modelPath);
    if (shards?.key !== jsonKey) {
      let list: string[] = [];
      try {
        list = manifestShardPaths(JSON.parse(await readFile(modelPath, 'utf8')));
      } catch {
        return null;
      }
      shards = { key: jsonKey, shards: list };
      this.shardLists.set(modelPath, shards);
    }
    const parts = [jsonKey];
    for (const shard of shards.shards) {
      const s = await statOrUndefined(path.join(path.dirname(modelPath), shard));
      if (!s) return null;
      parts.push(`${s.size}:${s.mtimeMs}`);
    }
    return parts.join('|');
  }
}

/**
 * Where reports about `resource` go: `<its workspace folder>/<reportsFolder>` (an absolute reportsFolder is used as
 * is); for a file outside every workspace folder, the first folder; with no folder open, the extension's global
 * storage.
 */
export function reportsFolderFor(reportsFolder: string, resource: vscode.Uri | undefined, globalStorage: vscode.Uri): string {
  if (path.isAbsolute(reportsFolder)) return reportsFolder;
  const folder = (resource && vscode.workspace.getWorkspaceFolder(resource)) ?? vscode.workspace.workspaceFolders?.[0];
  if (folder && folder.uri.scheme === 'file') return path.join(folder.uri.fsPath, reportsFolder);
  return path.join(globalStorage.fsPath, 'reports');
}

/**
 * Every folder reports may be in (for lists and the hover index): each workspace folder's reports folder, as that
 * folder's `infodiscard.reportsFolder` setting says (`setting(folderUri)`).
 */
export function allReportsFolders(setting: (scope: vscode.Uri | undefined) => string, globalStorage: vscode.Uri): string[] {
  const out = new Set<string>();
  for (const f of vscode.workspace.workspaceFolders ?? []) {
    if (f.uri.scheme !== 'file') continue;
    const value = setting(f.uri);
    out.add(path.isAbsolute(value) ? value : path.join(f.uri.fsPath, value));
  }
  if (out.size === 0) {
    const value = setting(undefined);
    out.add(path.isAbsolute(value) ? value : path.join(globalStorage.fsPath, 'reports'));
  }
  return [...out];
}
