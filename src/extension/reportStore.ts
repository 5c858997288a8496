/**
 * Saved reports: the engine's JSON in `<workspace folder>/<infodiscard.reportsFolder>/`, one file per model
 * version and run settings:
 *
 *   <model name>-<model sha256, 12 hex>-<settings hash, 10 hex>[-ru<6 hex>][-conc<6 hex>][-base<6 hex>].json
 *
 * The settings hash covers the SID settings, the images (path, size, mtime) and the tool version, so analysing an
 * unchanged model with unchanged settings finds its report: reused when it has the chosen layers, else resumed (the
 * layers are not in the key, so one file gathers the layers of every run; see analyzeCommands.ts). Each opt-in metric
 * adds a tag with a hash of what decides its own results (RU: the decoder and its training images; concentration:
 * the boxes file; baselines: the explained class). A report answers a run when it has the run's settings hash and
 * every tag the run asks for, so a report that measured MORE metrics (with the same settings) is reused, one that
 * measured fewer is not. A report whose model file no longer hashes to report.model.sha256 is stale. Plain Node (no
 * vscode) apart from the folder lookup.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { manifestShardPaths, modelSha256 } from '../engine/modelHash';
import { kerasPairFiles } from '../engine/kerasFiles';
import type { AnalysisSettings, DecoderSettings, LayerResult, MetricName, Report, ReportStatus } from '../engine/report';
import { parseReport } from '../engine/reportFile';
import type { SettingsInput } from '../engine/settings';
import type { ImageOptions } from '../engine/geometry';
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
  /** How image files fit the model input (resize mode, alpha); absent or {} = the engine's defaults. */
  imageOptions?: ImageOptions;
  /** RU: the decoders' training images beyond `images`. */
  trainImages?: ImageFile[];
  /** Concentration: the sidecar JSON of object regions. */
  boxesFile?: ImageFile;
  /** Baselines: the explained output unit (undefined: each image's top prediction). */
  targetClass?: number;
}

/** The opt-in metrics a run measures, each with the hash of its own inputs (see metricKeys). */
export type MetricKeys = Partial<Record<MetricName, string>>;

/** File-name tag of each opt-in metric, in file-name order. */
const METRIC_TAGS: readonly [MetricName, string][] = [['ru', 'ru'], ['concentration', 'conc'], ['baselines', 'base']];

/** What lists, quick picks and the hover index need from a report (no maps, no pixels). */
export interface ReportSummary {
  path: string;
  mtimeMs: number;
  modelPath: string;
  modelSha: string;
  createdAt: string;
  status: ReportStatus;
  layers: LayerSummary[];
  requestedLayers: number;
  /** The run's settings (for naming reports by the settings in which they differ) and how many images it used. */
  settings: Partial<AnalysisSettings>;
  images: number;
}

/** One finished layer of a report: SID mean ± std, and the opt-in metrics it has (schema 2). */
export interface LayerSummary {
  name: string;
  kind: string;
  mean: number;
  std: number;
  /** RU mean ± std (nats/pixel) and its decoder's held-out PSNR (dB). */
  ru?: { mean: number; std: number; psnr: number };
  /** Mean concentration over the images with an object region (null: none had one). */
  concentration?: { mean: number; std: number; images: number } | null;
  /** Mean gradient magnitude |dy/df| (baselines). */
  gradNorm?: number;
  /** Schema 3: the SID and RU quality roll-ups, when flagged (absent: ok, or an older report). */
  quality?: { verdict: string; reason?: string; bound: boolean };
  ruQuality?: { verdict: string; reason?: string; bound: boolean };
}

/** A flagged roll-up from an untrusted report, or undefined (ok, absent, malformed). */
function flaggedQuality(q: unknown): LayerSummary['quality'] {
  if (!q || typeof q !== 'object') return undefined;
  const { verdict, reason } = q as { verdict?: unknown; reason?: unknown };
  if (typeof verdict !== 'string' || verdict === 'ok') return undefined;
  return { verdict, ...(typeof reason === 'string' ? { reason } : {}), bound: verdict === 'saturated' || verdict === 'at-bound' };
}

function layerSummary(l: LayerResult): LayerSummary {
  const out: LayerSummary = { name: String(l.name), kind: String(l.kind ?? ''), mean: Number(l.sid?.mean), std: Number(l.sid?.std) };
  if (l.ru && typeof l.ru === 'object') out.ru = { mean: Number(l.ru.mean), std: Number(l.ru.std), psnr: Number(l.ru.decoder?.psnr) };
  if (l.concentration === null) out.concentration = null;
  else if (l.concentration && typeof l.concentration === 'object') {
    out.concentration = { mean: Number(l.concentration.mean), std: Number(l.concentration.std), images: Number(l.concentration.images) };
  }
  if (l.baselines?.gradNorm) out.gradNorm = Number(l.baselines.gradNorm.mean);
  const quality = flaggedQuality(l.quality);
  if (quality) out.quality = quality;
  const ruQuality = flaggedQuality(l.ruQuality);
  if (ruQuality && out.ru) out.ruQuality = ruQuality;
  return out;
}

export type Freshness = 'current' | 'stale' | 'missing';

/**
 * Hash of everything but the model that decides a run's SID (and so every metric's) result. Stable key order;
 * 10 hex digits. The opt-in metrics and their own inputs are not in it: see metricKeys.
 */
export function settingsHash(inputs: RunInputs): string {
  const s = inputs.settings;
  const canonical = {
    tool: VERSION,
    settings: [s.alpha, s.tau, s.samples, s.maxSteps, s.seed, s.backend, s.inputRange, s.normalize, s.sigmaGrid, s.sigmaMax, s.learningRate],
    images: inputs.images.map((i) => [i.path, i.size, Math.round(i.mtimeMs)]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    inputSize: inputs.inputSize ?? null,
    // Only when not the default, so the keys of optimised runs stay as they were: a preview or a warm-started
    // search is another result, never reused for the other.
    search: s.preview ? 'preview' : s.warmStart ? 'warmStart' : undefined,
    minSteps: s.minSteps,
    // Only when set, so the keys of runs with the default stretch and black composite stay as they were.
    imageFit: inputs.imageOptions && Object.keys(inputs.imageOptions).length > 0 ? inputs.imageOptions : undefined,
    // Only when on: an output layer's probabilities instead of its logits are another result.
    outputSoftmax: s.outputSoftmax || undefined,
    // Only when BGR (the range and normalisation are in `settings` above), so RGB keys stay as they were.
    channelOrder: s.preprocessing?.channelOrder === 'bgr' ? 'bgr' : undefined,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 10);
}

const fileKey = (f: ImageFile): (string | number)[] => [f.path, f.size, Math.round(f.mtimeMs)];
const shortHash = (v: unknown): string => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 6);

/** The run's opt-in metrics (settings.metrics beyond SID), each with a 6-hex hash of what decides its results. */
export function metricKeys(inputs: RunInputs): MetricKeys {
  const metrics = inputs.settings.metrics ?? ['sid'];
  const out: MetricKeys = {};
  if (metrics.includes('ru')) {
    const d: Partial<DecoderSettings> = inputs.settings.decoder ?? {};
    out.ru = shortHash([
      [d.blocks, d.width, d.maxEpochs, d.patience, d.batchSize, d.learningRate, d.holdout],
      (inputs.trainImages ?? []).map(fileKey).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    ]);
  }
  if (metrics.includes('concentration')) out.concentration = shortHash(inputs.boxesFile ? fileKey(inputs.boxesFile) : null);
  if (metrics.includes('baselines')) out.baselines = shortHash([inputs.targetClass ?? null]);
  return out;
}

/** "-ru1a2b3c-conc4d5e6f" for the metrics in `keys`, in a fixed order; '' for SID alone. */
function metricSuffix(keys: MetricKeys): string {
  return METRIC_TAGS.filter(([m]) => keys[m] !== undefined).map(([m, tag]) => `-${tag}${keys[m]}`).join('');
}

/** The metric keys in a report file name's suffix ("-ru1a2b3c-conc4d5e6f.json"); undefined when it is not one. */
function parseMetricSuffix(rest: string): MetricKeys | undefined {
  const m = /^((?:-[a-z]+[0-9a-f]{6})*)\.json$/.exec(rest);
  if (!m) return undefined;
  const out: MetricKeys = {};
  for (const [, tag, key] of m[1].matchAll(/-([a-z]+)([0-9a-f]{6})(?=-|$)/g)) {
    const metric = METRIC_TAGS.find(([, t]) => t === tag)?.[0];
    if (!metric) return undefined;
    out[metric] = key;
  }
  return out;
}

/** Whether a report made with `have` answers a run that asks for `want`: every wanted metric, with the same inputs. */
export function coversMetrics(have: MetricKeys, want: MetricKeys): boolean {
  return (Object.keys(want) as MetricName[]).every((m) => have[m] === want[m]);
}

/** A model's display name: its folder for a model.json, else the file name without extension. */
export function modelName(modelPath: string): string {
  const parts = modelPath.split(/[\\/]/).filter(Boolean);
  const last = parts[parts.length - 1] ?? 'model';
  if (parts.length > 1 && /^model\.json$/i.test(last)) return parts[parts.length - 2];
  return last.replace(/\.[^.]+$/, '') || 'model';
}

function reportFilePrefix(modelPath: string, modelSha: string, settingsKey: string): string {
  const name = modelName(modelPath).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 40) || 'model';
  return `${name}-${modelSha.slice(0, 12)}-${settingsKey}`;
}

export function reportFileName(modelPath: string, modelSha: string, settingsKey: string, metrics: MetricKeys = {}): string {
  return `${reportFilePrefix(modelPath, modelSha, settingsKey)}${metricSuffix(metrics)}.json`;
}

export function summarize(report: Report, file: string, mtimeMs: number): ReportSummary {
  return {
    path: file,
    mtimeMs,
    modelPath: String(report.model?.path ?? ''),
    modelSha: String(report.model?.sha256 ?? ''),
    createdAt: String(report.createdAt ?? ''),
    status: report.status,
    layers: report.layers.map(layerSummary),
    requestedLayers: Array.isArray(report.requestedLayers) ? report.requestedLayers.length : report.layers.length,
    settings: report.settings && typeof report.settings === 'object' ? report.settings : {},
    images: Array.isArray(report.images) ? report.images.length : 0,
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

  /**
   * A complete report in `folder` that answers a run of this model version with these settings (`settingsKey`)
   * and metrics (`metrics`): the run's own file first, else the newest one with the same settings that measured
   * more metrics. Undefined when there is none.
   */
  async findReusableRun(
    folder: string,
    modelPath: string,
    modelSha: string,
    settingsKey: string,
    metrics: MetricKeys,
  ): Promise<{ path: string; report: Report } | undefined> {
    const wanted = Object.keys(metrics) as MetricName[];
    const answers = (report: Report | undefined): report is Report => {
      const measured = report?.settings?.metrics ?? ['sid'];
      return !!report && wanted.every((m) => measured.includes(m));
    };
    const own = path.join(folder, reportFileName(modelPath, modelSha, settingsKey, metrics));
    const exact = await this.findReusable(own, modelSha);
    if (answers(exact)) return { path: own, report: exact };
    const prefix = reportFilePrefix(modelPath, modelSha, settingsKey);
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      return undefined;
    }
    const candidates: { file: string; mtimeMs: number }[] = [];
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const have = parseMetricSuffix(name.slice(prefix.length));
      const file = path.join(folder, name);
      if (!have || file === own || !coversMetrics(have, metrics)) continue;
      const st = await statOrUndefined(file);
      if (st?.isFile()) candidates.push({ file, mtimeMs: st.mtimeMs });
    }
    candidates.sort((a, b) => b.mtimeMs - a.mtimeMs);
    for (const c of candidates) {
      const report = await this.findReusable(c.file, modelSha);
      if (answers(report)) return { path: c.file, report };
    }
    return undefined;
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
      if (modelPath.toLowerCase().endsWith('.json')) {
        try {
          const json: unknown = JSON.parse(await readFile(modelPath, 'utf8'));
          // A Keras to_json file: its weights file beside it is part of the model.
          list = kerasPairFiles(modelPath, json)?.slice(1).map((f) => path.basename(f)) ?? manifestShardPaths(json);
        } catch {
          return null;
        }
      } else if (/\.(h5|hdf5)$/i.test(modelPath)) {
        // Weights saved with save_weights, read with their to_json file beside them.
        list = kerasPairFiles(modelPath)?.slice(1).map((f) => path.basename(f)) ?? [];
      } else if (path.basename(modelPath) === 'saved_model.pb') {
        // A SavedModel's weights live in variables/ beside it.
        const vars = path.join(path.dirname(modelPath), 'variables');
        list = (await readdir(vars).catch(() => [] as string[])).sort().map((f) => path.join('variables', f));
      }
      // .h5 / .keras / .onnx: one self-contained file.
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
