/**
 * The `infodiscard.*` settings: read, turned into the engine's SettingsInput and checked with the engine's
 * validateSettings, with messages that name the setting (not the CLI option) and say what to do.
 */
import * as vscode from 'vscode';
import type { BackendChoice } from '../engine/backend';
import { isUserError, UserError } from '../engine/errors';
import type { DecoderSettings, MetricName } from '../engine/report';
import { DEFAULT_DECODER, DEFAULT_SETTINGS, LIGHT_DECODER, validateSettings, type SettingsInput } from '../engine/settings';
import { coreCount } from '../worker/client';
import { SPLIT_SAMPLES_CHOICES, type SplitSamples } from '../worker/parallel';
import { NATIVE_CHOICES, type NativeChoice } from '../engine/native/choice';
import type { ImageOptions } from '../engine/geometry';
import { parseResize, parseTransparency } from '../engine/imageOptions';

export const SECTION = 'infodiscard';
const BACKENDS: readonly BackendChoice[] = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'];
export const MAX_WORKERS = 8;
/** What `infodiscard.metrics` may list (SID always runs and need not be listed). */
export const EXTRA_METRICS: readonly MetricName[] = ['ru', 'concentration', 'baselines'];
export const DECODER_PRESETS: Readonly<Record<string, DecoderSettings>> = { default: DEFAULT_DECODER, light: LIGHT_DECODER };

export interface ExtensionSettings {
  analysis: SettingsInput;
  /** Folder or glob, workspace-relative; '' = ask. */
  images: string;
  reportsFolder: string;
  /** Analyze Model: show the first-order preview, then the search, charted together in one panel. */
  previewFirst: boolean;
  /** Ask for a model's preprocessing on its first analysis (else: detected, else the inputRange setting, else [0,1]). */
  preprocessingPrompt: boolean;
  /** Worker processes (the setting's 0 already resolved to one per core). */
  workers: number;
  /** Whether free workers split a layer's noise samples (`infodiscard.splitSamples`; see SplitSamples). */
  splitSamples: SplitSamples;
  /** `infodiscard.native`: ONNX models' SID passes on onnxruntime where it can (auto), or tfjs only (off). */
  native: NativeChoice;
  /** RU decoders' extra training images: folder or glob, workspace-relative; '' = the analysis images (see inputs.ts). */
  trainImages: string;
  /** Concentration's object regions: a sidecar JSON, workspace-relative; '' = boxes.json beside the images, if any. */
  boxesFile: string;
  /** `infodiscard.resize` and `infodiscard.transparency`: how image files fit the model input ({} = the engine's defaults). */
  imageOptions: ImageOptions;
  /** Which layers Analyze Model analyses: ask (a picker), the recommended set, or every layer. */
  layers: LayerChoiceSetting;
}

/** `infodiscard.resize` / `infodiscard.transparency`, parsed as the CLI's --resize / --transparency are. */
function imageOptionsSetting(get: (key: string) => unknown): ImageOptions {
  const out: ImageOptions = {};
  for (const key of ['resize', 'transparency'] as const) {
    const v = textSetting(get, key, key === 'resize' ? 'stretch, center-crop or letterbox[:r,g,b]' : 'composite[:r,g,b] or drop');
    if (v === '') continue;
    try {
      if (key === 'resize') Object.assign(out, parseResize(v, key));
      else out.alpha = parseTransparency(v, key);
    } catch (e) {
      if (!isUserError(e)) throw e;
      throw settingError(key, e.message.replace(new RegExp(`^${key}: `), ''));
    }
  }
  return out;
}

export const LAYER_SETTINGS = ['ask', 'recommended', 'all'] as const;
export type LayerChoiceSetting = (typeof LAYER_SETTINGS)[number];

/** CLI option (as validateSettings names it) -> setting. */
const SETTING_OF_OPTION: Record<string, string> = {
  '--alpha': 'alpha',
  '--tau': 'tau',
  '--samples': 'samplesPerStep',
  '--max-steps': 'maxSteps',
  '--sigma-max': 'sigmaMax',
  '--sigma-grid': 'sigmaGrid',
  '--backend': 'backend',
  '--input-range': 'inputRange',
  '--metrics': 'metrics',
  '--preview': 'search',
  '--decoder-blocks': 'decoder',
  '--decoder-width': 'decoder',
  '--decoder-epochs': 'decoder',
  '--decoder-patience': 'decoder',
  '--decoder-batch': 'decoder',
  '--decoder-learning-rate': 'decoder',
  '--decoder-holdout': 'decoder',
};

/** A bad setting: the message names it; `setting` ("infodiscard.alpha") lets the UI offer to open it. */
export class SettingError extends UserError {
  constructor(readonly setting: string, message: string) {
    super(`setting "${setting}" ${message}`);
  }
}

function settingError(setting: string, message: string): SettingError {
  return new SettingError(`${SECTION}.${setting}`, message);
}

/** "lo,hi" -> [lo, hi]; '' or "0,1" as given. */
export function parseInputRange(value: unknown): [number, number] | null {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return null;
  const parts = typeof value === 'string' ? value.split(',').map((v) => v.trim()) : [];
  const nums = parts.map((p) => (p === '' ? NaN : Number(p)));
  if (nums.length !== 2 || !nums.every(Number.isFinite) || !(nums[0] < nums[1])) {
    throw settingError('inputRange', `must be two numbers "lo,hi" with lo < hi (e.g. "0,1", "-1,1" or "0,255"), got "${String(value)}"`);
  }
  return [nums[0], nums[1]];
}

function numberSetting(get: (key: string) => unknown, key: string, fallback: number): number {
  const v = get(key);
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number') throw settingError(key, `must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** `infodiscard.metrics`: the opt-in metrics, each once; SID first (it always runs), in the engine's order. */
function metricsSetting(value: unknown): MetricName[] {
  if (value === undefined || value === null) return ['sid'];
  if (!Array.isArray(value)) throw settingError('metrics', `must be a list of ${EXTRA_METRICS.map((m) => `"${m}"`).join(', ')}, got ${JSON.stringify(value)}`);
  for (const m of value) {
    if (m !== 'sid' && !EXTRA_METRICS.includes(m as MetricName)) {
      throw settingError('metrics', `lists unknown metric ${JSON.stringify(m)}; choose from ${EXTRA_METRICS.join(', ')} (SID always runs)`);
    }
  }
  return (['sid', ...EXTRA_METRICS] as MetricName[]).filter((m) => m === 'sid' || value.includes(m));
}

function textSetting(get: (key: string) => unknown, key: string, what: string): string {
  const v = get(key) ?? '';
  if (typeof v !== 'string') throw settingError(key, `must be ${what} (text), got ${JSON.stringify(v)}`);
  return v.trim();
}

/** A setting that takes one of `choices` (`fallback` when unset). */
function choiceSetting<T extends string>(get: (key: string) => unknown, key: string, choices: readonly T[], fallback: T): T {
  const v = get(key) ?? fallback;
  if (!(choices as readonly unknown[]).includes(v)) throw settingError(key, `must be one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/** `infodiscard.search`: the optimised search (the paper's), the same search warm-started, or the first-order preview. */
export const SEARCH_MODES = ['optimised', 'warmStart', 'preview'] as const;

/** `infodiscard.outputSoftmax`: only recorded when on, so the settings (and report keys) of other runs stay as they were. */
function outputSoftmaxSetting(value: unknown): Pick<SettingsInput, 'outputSoftmax'> {
  if (value === undefined || value === null || value === false) return {};
  if (value !== true) throw settingError('outputSoftmax', `must be true or false, got ${JSON.stringify(value)}`);
  return { outputSoftmax: true };
}

function searchSetting(get: (key: string) => unknown): Pick<SettingsInput, 'preview' | 'warmStart'> {
  const mode = choiceSetting(get, 'search', SEARCH_MODES, 'optimised');
  return { preview: mode === 'preview', warmStart: mode === 'warmStart' };
}

/**
 * Reads and validates every setting. `get` is `getConfiguration('infodiscard').get` (a parameter so tests can
 * feed values). Throws a UserError naming the setting.
 */
export function settingsFrom(get: (key: string) => unknown): ExtensionSettings {
  const backend = (get('backend') ?? DEFAULT_SETTINGS.backend) as BackendChoice;
  if (!BACKENDS.includes(backend)) throw settingError('backend', `must be one of ${BACKENDS.join(', ')}, got "${String(backend)}"`);
  const grid = numberSetting(get, 'sigmaGrid', 0);
  const metrics = metricsSetting(get('metrics'));
  const preset = get('decoder') ?? 'default';
  const decoder = typeof preset === 'string' ? DECODER_PRESETS[preset] : undefined;
  if (!decoder) throw settingError('decoder', `must be one of ${Object.keys(DECODER_PRESETS).join(', ')}, got ${JSON.stringify(preset)}`);
  const analysis: SettingsInput = {
    ...DEFAULT_SETTINGS,
    backend,
    alpha: numberSetting(get, 'alpha', DEFAULT_SETTINGS.alpha),
    tau: numberSetting(get, 'tau', DEFAULT_SETTINGS.tau),
    samples: numberSetting(get, 'samplesPerStep', DEFAULT_SETTINGS.samples),
    maxSteps: numberSetting(get, 'maxSteps', DEFAULT_SETTINGS.maxSteps),
    sigmaMax: numberSetting(get, 'sigmaMax', DEFAULT_SETTINGS.sigmaMax),
    // 0 = one sigma per pixel (the engine's null).
    sigmaGrid: grid === 0 ? null : grid,
    inputRange: parseInputRange(get('inputRange')),
    metrics,
    ...searchSetting(get),
    ...outputSoftmaxSetting(get('outputSoftmax')),
    // The decoder only matters to RU; null otherwise, as the engine records it.
    decoder: metrics.includes('ru') ? { ...decoder } : null,
  };
  try {
    validateSettings(analysis);
  } catch (e) {
    if (!isUserError(e) || !e.file) throw e;
    const setting = SETTING_OF_OPTION[e.file] ?? e.file;
    let message = e.message.slice(e.file.length + 2);
    if (setting === 'sigmaGrid') message = message.replace(/^must be/, 'must be 0 (one sigma per pixel) or');
    throw settingError(setting, message);
  }
  const workersSetting = numberSetting(get, 'workers', 0);
  if (!Number.isInteger(workersSetting) || workersSetting < 0 || workersSetting > MAX_WORKERS) {
    throw settingError('workers', `must be 0 (one per CPU core) or a whole number up to ${MAX_WORKERS}, got ${workersSetting}`);
  }
  const workers = workersSetting === 0 ? Math.min(MAX_WORKERS, coreCount()) : workersSetting;
  const splitSamples = choiceSetting(get, 'splitSamples', SPLIT_SAMPLES_CHOICES, 'auto');
  const native = choiceSetting(get, 'native', NATIVE_CHOICES, 'auto');
  const images = get('images') ?? '';
  if (typeof images !== 'string') throw settingError('images', 'must be a folder or glob pattern (text)');
  const reportsFolder = String(get('reportsFolder') ?? '.infodiscard').trim();
  if (reportsFolder === '') throw settingError('reportsFolder', 'must name a folder (default ".infodiscard")');
  const trainImages = textSetting(get, 'trainImages', 'a folder or glob pattern');
  const boxesFile = textSetting(get, 'boxesFile', 'the path of a JSON file');
  const preprocessingPrompt = get('preprocessingPrompt') ?? true;
  if (typeof preprocessingPrompt !== 'boolean') throw settingError('preprocessingPrompt', `must be true or false, got ${JSON.stringify(preprocessingPrompt)}`);
  const previewFirst = get('previewFirst') ?? false;
  if (typeof previewFirst !== 'boolean') throw settingError('previewFirst', `must be true or false, got ${JSON.stringify(previewFirst)}`);
  const imageOptions = imageOptionsSetting(get);
  const layers = choiceSetting(get, 'layers', LAYER_SETTINGS, 'ask');
  return { analysis, images: images.trim(), reportsFolder, workers, splitSamples, native, previewFirst, preprocessingPrompt, trainImages, boxesFile, imageOptions, layers };
}

export function readSettings(scope?: vscode.Uri): ExtensionSettings {
  const config = vscode.workspace.getConfiguration(SECTION, scope);
  return settingsFrom((key) => config.get(key));
}
