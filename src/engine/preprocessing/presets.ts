/**
 * Preprocessing presets by name and the profile <-> settings conversions. A profile says how the engine's [0,1]
 * RGB pixels become what the model was trained on: a range (model = lo + (hi - lo) * pixel) or a per-channel
 * normalisation (model = (pixel - mean) / std, mean and std in [0,1]-pixel units and in the MODEL's channel order),
 * and the channel order. Pure data: no tfjs, no vscode (the extension bundle imports it).
 */
import { UserError } from '../errors';
import type { AlphaHandling, AnalysisSettings, PreprocessingProfile, ResizeMode } from '../report';

export type PresetName = '[0,1]' | '[0,255]' | '[-1,1]' | 'imagenet' | 'caffe-bgr';

export interface Preset {
  name: PresetName;
  /** What people read in a quick pick or a --help line. */
  label: string;
  detail: string;
  inputRange: [number, number] | null;
  normalize: { mean: number[]; std: number[] } | null;
  channelOrder: 'rgb' | 'bgr';
}

/** ImageNet statistics of torchvision (RGB, [0,1] pixels). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
/** Caffe / keras.applications "caffe" mode: BGR, mean subtracted on 0-255 pixels, no scaling (B, G, R order). */
export const CAFFE_BGR_MEAN_255 = [103.939, 116.779, 123.68];

export const PRESETS: readonly Preset[] = [
  { name: '[0,1]', label: '[0, 1]', detail: 'pixels / 255', inputRange: [0, 1], normalize: null, channelOrder: 'rgb' },
  { name: '[0,255]', label: '0–255', detail: 'raw 8-bit pixels', inputRange: [0, 255], normalize: null, channelOrder: 'rgb' },
  { name: '[-1,1]', label: '[−1, 1]', detail: 'pixels / 127.5 − 1 (Inception, MobileNet)', inputRange: [-1, 1], normalize: null, channelOrder: 'rgb' },
  {
    name: 'imagenet',
    label: 'ImageNet mean/std',
    detail: '(pixel − 0.485,0.456,0.406) / 0.229,0.224,0.225 (torchvision)',
    inputRange: null,
    normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
    channelOrder: 'rgb',
  },
  {
    name: 'caffe-bgr',
    label: 'Caffe BGR mean',
    detail: 'BGR, 0–255 minus 103.939,116.779,123.68 (Caffe, keras.applications "caffe")',
    inputRange: null,
    normalize: { mean: CAFFE_BGR_MEAN_255.map((m) => m / 255), std: [1 / 255, 1 / 255, 1 / 255] },
    channelOrder: 'bgr',
  },
];

export const PRESET_NAMES: readonly string[] = PRESETS.map((p) => p.name);

const DEFAULT_ALPHA: AlphaHandling = { mode: 'composite', background: [0, 0, 0] };

export function findPreset(name: string): Preset | undefined {
  const n = name.trim().toLowerCase();
  const alias: Record<string, PresetName> = { '0,1': '[0,1]', '0,255': '[0,255]', '-1,1': '[-1,1]', caffe: 'caffe-bgr', torchvision: 'imagenet' };
  return PRESETS.find((p) => p.name === n) ?? (alias[n.replace(/[[\]\s]/g, '')] ? PRESETS.find((p) => p.name === alias[n.replace(/[[\]\s]/g, '')]) : undefined);
}

/** A preset as a profile; throws a UserError naming the presets for an unknown name. */
export function presetProfile(name: string, source: string, extra: { resize?: ResizeMode; alpha?: AlphaHandling } = {}): PreprocessingProfile {
  const p = findPreset(name);
  if (!p) throw new UserError(`unknown preset "${name}"; choose one of ${PRESET_NAMES.join(', ')}`, '--preset');
  return {
    preset: p.name,
    inputRange: p.inputRange ? [...p.inputRange] : null,
    normalize: p.normalize ? { mean: [...p.normalize.mean], std: [...p.normalize.std] } : null,
    channelOrder: p.channelOrder,
    resize: extra.resize ?? 'stretch',
    alpha: extra.alpha ?? DEFAULT_ALPHA,
    source,
  };
}

/** The default when nothing is known: [0,1], source 'default'. */
export function defaultProfile(): PreprocessingProfile {
  return presetProfile('[0,1]', 'default');
}

const close = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= 1e-6 * Math.max(1, Math.abs(b[i])));

/** The preset a range/normalisation/order equals, else 'custom'. */
export function presetNameOf(p: Pick<PreprocessingProfile, 'inputRange' | 'normalize' | 'channelOrder'>): string {
  for (const q of PRESETS) {
    if (q.channelOrder !== p.channelOrder) continue;
    if (q.inputRange && p.inputRange && !p.normalize && close(q.inputRange, p.inputRange)) return q.name;
    if (q.normalize && p.normalize && !p.inputRange) {
      const expand = (v: number[]) => (v.length === 1 ? [v[0], v[0], v[0]] : v);
      if (close(expand(p.normalize.mean), q.normalize.mean) && close(expand(p.normalize.std), q.normalize.std)) return q.name;
    }
  }
  // A missing range and normalisation is [0,1].
  if (!p.inputRange && !p.normalize && p.channelOrder === 'rgb') return '[0,1]';
  return 'custom';
}

/** A profile from explicit parts (a CLI flag, a custom entry): its preset name is worked out. */
export function customProfile(
  parts: { inputRange?: [number, number] | null; normalize?: { mean: number[]; std: number[] } | null; channelOrder?: 'rgb' | 'bgr' },
  source: string,
  extra: { resize?: ResizeMode; alpha?: AlphaHandling } = {},
): PreprocessingProfile {
  if (parts.inputRange && parts.normalize) throw new UserError('give either --input-range or --normalize, not both', '--normalize');
  const base = {
    inputRange: parts.normalize ? null : (parts.inputRange ?? [0, 1]) as [number, number],
    normalize: parts.normalize ?? null,
    channelOrder: parts.channelOrder ?? 'rgb',
  };
  return { preset: presetNameOf(base), ...base, resize: extra.resize ?? 'stretch', alpha: extra.alpha ?? DEFAULT_ALPHA, source };
}

/** What a run's settings hold for a profile: the mapping fields the engine reads, and the profile itself. */
export function profileSettings(p: PreprocessingProfile): Pick<AnalysisSettings, 'inputRange' | 'normalize' | 'preprocessing'> {
  // [0,1] is the engine's default range: null keeps the report keys of runs from before profiles existed.
  const plain = !p.normalize && p.inputRange?.[0] === 0 && p.inputRange?.[1] === 1;
  return {
    inputRange: p.normalize || plain ? null : p.inputRange,
    normalize: p.normalize,
    preprocessing: p,
  };
}

/** A short label for chips, status lines and quick picks: "0–255", "ImageNet mean/std", "custom range 0,2 · BGR". */
export function profileLabel(p: Pick<PreprocessingProfile, 'preset' | 'inputRange' | 'normalize' | 'channelOrder'>): string {
  const preset = findPreset(p.preset);
  if (preset && p.preset !== 'custom') return preset.label;
  const fmt = (v: number[]) => v.map((x) => Number(x.toPrecision(4))).join(',');
  const body = p.normalize ? `mean ${fmt(p.normalize.mean)} std ${fmt(p.normalize.std)}` : `range ${fmt(p.inputRange ?? [0, 1])}`;
  return `custom ${body}${p.channelOrder === 'bgr' ? ' · BGR' : ''}`;
}

/** The profile a report's settings describe (schema 3 has it; older reports only the range or normalisation). */
export function profileOfSettings(s: Pick<AnalysisSettings, 'inputRange' | 'normalize' | 'preprocessing'>): PreprocessingProfile {
  if (s.preprocessing) return s.preprocessing;
  return customProfile({ inputRange: s.inputRange, normalize: s.normalize }, 'settings');
}

/** Checks a profile read from a file or a message; returns it or throws a UserError naming what is wrong. */
export function validateProfile(v: unknown, where: string): PreprocessingProfile {
  const bad = (what: string) => new UserError(`the preprocessing profile ${what}; fix or delete the file`, where);
  if (!v || typeof v !== 'object') throw bad('is not an object');
  const p = v as Record<string, unknown>;
  const nums = (a: unknown) => Array.isArray(a) && a.length > 0 && a.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (p.inputRange !== null && !(nums(p.inputRange) && (p.inputRange as number[]).length === 2 && (p.inputRange as number[])[0] < (p.inputRange as number[])[1])) {
    throw bad('has an inputRange that is not [lo, hi] with lo < hi');
  }
  if (p.normalize !== null) {
    const n = p.normalize as { mean?: unknown; std?: unknown } | undefined;
    if (!n || !nums(n.mean) || !nums(n.std) || (n.std as number[]).some((s) => s <= 0)) throw bad('has a normalize that is not {mean: [...], std: [positive ...]}');
  }
  if (p.inputRange === null && p.normalize === null) throw bad('has neither inputRange nor normalize');
  if (p.channelOrder !== 'rgb' && p.channelOrder !== 'bgr') throw bad('has a channelOrder other than "rgb" or "bgr"');
  if (typeof p.preset !== 'string' || typeof p.source !== 'string') throw bad('lacks its preset or source');
  const resize = (['stretch', 'center-crop', 'letterbox'] as const).find((r) => r === p.resize) ?? 'stretch';
  const alpha = p.alpha && typeof p.alpha === 'object' && ((p.alpha as AlphaHandling).mode === 'composite' || (p.alpha as AlphaHandling).mode === 'drop') ? (p.alpha as AlphaHandling) : DEFAULT_ALPHA;
  return {
    preset: p.preset,
    inputRange: (p.inputRange as [number, number] | null) ?? null,
    normalize: (p.normalize as PreprocessingProfile['normalize']) ?? null,
    channelOrder: p.channelOrder,
    resize,
    alpha,
    source: p.source,
  };
}
