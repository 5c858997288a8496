/**
 * Report access for the UI: defensive normalisation (the report is untrusted input and may be partial), the
 * shared colour scale and per-image geometry.
 */
import { GAUSSIAN_ENTROPY_CONSTANT, POOR_DECODER_PSNR } from '../../src/engine/report';
import type { BaselineMaps, ImageInfo, LayerResult, PerImageResult, Report } from '../../src/engine/report';
import type { Scale } from './colormap';

const arr = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : v === undefined || v === null ? fallback : String(v));
/** H rows of numbers, or undefined when the value is not an array (a missing optional map stays missing). */
const rowsOrUndefined = (v: unknown): number[][] | undefined => (Array.isArray(v) ? v.map((row) => arr<number>(row)) : undefined);
/** Like rowsOrUndefined, but null stays null (baseline maps a layer does not have). */
const rowsOrNull = (v: unknown): number[][] | null => (Array.isArray(v) ? v.map((row) => arr<number>(row)) : null);

function normalizeBaselines(v: unknown): BaselineMaps | undefined {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const magnitude = obj(o.magnitude);
  return {
    ...(o as unknown as BaselineMaps),
    gradNorm: rowsOrNull(o.gradNorm) ?? [],
    gradCam: rowsOrNull(o.gradCam),
    cam: rowsOrNull(o.cam),
    magnitude: { gradNorm: NaN, gradCam: null, cam: null, ...magnitude } as BaselineMaps['magnitude'],
  };
}

/**
 * Make a possibly malformed or partial report safe to render: arrays are arrays, strings are strings.
 * Returns null when the value is not a report at all.
 */
export function normalizeReport(value: unknown): Report | null {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return null;
  const r = value as Record<string, unknown>;
  const model = obj(r.model);
  const layers = arr<unknown>(r.layers).map((l): LayerResult => {
    const o = obj(l);
    return {
      ...(o as unknown as LayerResult),
      name: str(o.name, '?'),
      kind: str(o.kind),
      outputShape: arr<number | null>(o.outputShape),
      sid: { mean: NaN, std: NaN, total: NaN, ...obj(o.sid) } as LayerResult['sid'],
      perImage: arr<unknown>(o.perImage).map((p) => {
        const q = obj(p);
        const out: PerImageResult = { ...(q as unknown as PerImageResult), map: arr<unknown>(q.map).map((row) => arr<number>(row)) };
        // Schema 2 (optional): keep absent fields absent, so a schema-1 report renders exactly as before.
        if ('ruMap' in q) out.ruMap = rowsOrUndefined(q.ruMap);
        if ('baselines' in q) out.baselines = normalizeBaselines(q.baselines);
        return out;
      }),
    };
  });
  const requested = arr<unknown>(r.requestedLayers).map((n) => str(n));
  return {
    ...(r as unknown as Report),
    status: str(r.status, 'running') as Report['status'],
    error: r.error === undefined ? undefined : str(r.error),
    model: { ...(model as unknown as Report['model']), path: str(model.path), format: str(model.format) as Report['model']['format'] },
    settings: obj(r.settings) as unknown as Report['settings'],
    images: arr<unknown>(r.images).map((i) => {
      const o = obj(i);
      const out: ImageInfo = { ...(o as unknown as ImageInfo), path: str(o.path), pixels: arr<number>(o.pixels) };
      if ('regionMask' in o) out.regionMask = rowsOrUndefined(o.regionMask);
      if ('region' in o && (!o.region || typeof o.region !== 'object')) delete out.region;
      return out;
    }),
    layers,
    requestedLayers: requested.length ? requested : layers.map((l) => l.name),
    // Schema 3 (optional): requested layers that were skipped, with the reason.
    ...('skippedLayers' in r
      ? { skippedLayers: arr<unknown>(r.skippedLayers).map((s) => ({ name: str(obj(s).name, '?'), reason: str(obj(s).reason) })) }
      : {}),
  };
}

/** Why a requested layer was skipped (schema 3), or undefined when it was not. */
export function skippedReason(report: Report, name: string): string | undefined {
  return report.skippedLayers?.find((s) => s.name === name)?.reason;
}

/** All layer names to show, in order: requested ones first, then any finished layer not in that list. */
export function layerOrder(report: Report): string[] {
  const names = [...report.requestedLayers];
  for (const l of report.layers) if (!names.includes(l.name)) names.push(l.name);
  return names;
}

export function findLayer(report: Report, name: string | null): LayerResult | undefined {
  return name === null ? undefined : report.layers.find((l) => l.name === name);
}

export function perImage(layer: LayerResult | undefined, image: number): PerImageResult | undefined {
  if (!layer) return undefined;
  return layer.perImage.find((p) => p.image === image) ?? layer.perImage[image];
}

/** One colour scale for the whole report: min and max over every finished map of every layer and image. */
export function globalScale(report: Report): Scale {
  let min = Infinity;
  let max = -Infinity;
  for (const l of report.layers) {
    for (const p of l.perImage) {
      for (const row of p.map) {
        for (const v of row) {
          if (typeof v !== 'number' || !Number.isFinite(v)) continue;
          if (v < min) min = v;
          if (v > max) max = v;
        }
      }
    }
  }
  if (!Number.isFinite(min)) return { min: 0, max: 1 };
  if (max - min < 1e-9) return { min: min - 0.5, max: max + 0.5 };
  return { min, max };
}

/** A colour scale spanning every finite value of the given maps; null when they hold none. */
export function scaleOf(maps: Iterable<number[][] | null | undefined>): Scale | null {
  let min = Infinity;
  let max = -Infinity;
  for (const map of maps) {
    if (!map) continue;
    for (const row of map) {
      for (const v of row) {
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
  }
  if (!Number.isFinite(min)) return null;
  if (max - min < 1e-12 * Math.max(1, Math.abs(max))) {
    const pad = Math.abs(max) > 0 ? Math.abs(max) * 0.5 : 0.5;
    return { min: min - pad, max: max + pad };
  }
  return { min, max };
}

/** One colour scale for every RU map of the report (RU maps compare across layers and images, like SID). */
export function ruScale(report: Report): Scale | null {
  return scaleOf(report.layers.flatMap((l) => l.perImage.map((p) => p.ruMap)));
}

/** Schema 2 content the UI shows beyond SID (every check tolerates partial or malformed reports). */
export function hasRu(report: Report): boolean {
  return report.layers.some((l) => isFiniteNum(l.ru?.mean) || l.perImage.some((p) => Array.isArray(p.ruMap) && p.ruMap.length > 0));
}

export function hasConcentration(report: Report): boolean {
  return report.layers.some((l) => isFiniteNum(l.concentration?.mean) || l.perImage.some((p) => isFiniteNum(p.concentration)))
    || report.images.some((i) => !!i.region || Array.isArray(i.regionMask));
}

export function hasBaselines(report: Report): boolean {
  return report.layers.some((l) => !!l.baselines || l.perImage.some((p) => !!p.baselines));
}

function isFiniteNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}


/** The decoder PSNR of a layer (its summary, else the mean of the per-image copies); null when not recorded. */
export function decoderPsnr(layer: LayerResult | undefined): number | null {
  if (!layer) return null;
  const psnr = layer.ru?.decoder?.psnr;
  if (isFiniteNum(psnr)) return psnr;
  const values = layer.perImage.map((p) => p.decoderPsnr).filter(isFiniteNum);
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

/** The warning for a layer whose decoder is poor, or null. */
export function poorDecoderText(layer: LayerResult | undefined): string | null {
  const psnr = decoderPsnr(layer);
  if (psnr === null || psnr >= POOR_DECODER_PSNR) return null;
  return `decoder reconstructs poorly (PSNR ${psnr.toFixed(1)} dB < ${POOR_DECODER_PSNR} dB): RU is not trustworthy here`;
}

/** sigma (noise std in [0,1]-pixel units) for a pixel SID H = log(sigma) + 0.5*log(2*pi*e). */
export function sigmaOf(h: number): number {
  return Math.exp(h - GAUSSIAN_ENTROPY_CONSTANT);
}

export interface Grid {
  width: number;
  height: number;
}

/** Map size: H rows of W values (W = longest row, in case of ragged input). */
export function mapGrid(map: number[][]): Grid {
  let width = 0;
  for (const row of map) width = Math.max(width, row.length);
  return { width, height: map.length };
}

/**
 * The grid of an image's pixel array. The pixels are the model's input (H x W x C), which usually equals the map
 * grid; the recorded width/height are the original file's size, so they are only a last resort.
 */
export function imageGrid(image: ImageInfo, hint: Grid): Grid | null {
  const c = Math.max(1, Math.round(image.channels) || 1);
  const n = image.pixels.length / c;
  if (!Number.isInteger(n) || n === 0) return null;
  if (hint.width * hint.height === n) return hint;
  const side = Math.round(Math.sqrt(n));
  if (side * side === n) return { width: side, height: side };
  if (image.width * image.height === n) return { width: image.width, height: image.height };
  return null;
}

/** A sharded report's shard count and missing shards (infodiscard merge), when well-formed. */
export function missingShards(report: Report): { count: number; missing: number[] } | null {
  const s = (report as { shards?: unknown }).shards as { count?: unknown; missing?: unknown } | undefined;
  if (!s || typeof s !== 'object' || typeof s.count !== 'number' || !Array.isArray(s.missing)) return null;
  return { count: s.count, missing: s.missing.filter((m): m is number => typeof m === 'number') };
}

export function statusLabel(report: Report): string {
  const done = report.layers.length;
  const total = layerOrder(report).length;
  switch (report.status) {
    case 'running': return `running: ${done} of ${total} layers done`;
    case 'complete': return 'complete';
    case 'failed': return 'failed';
    case 'cancelled': return `cancelled after ${done} of ${total} layers`;
    case 'partial': {
      const m = missingShards(report);
      return `partial: ${done} of ${total} layers${m && m.missing.length > 0 ? `; shards ${m.missing.join(', ')} of ${m.count} missing` : ''}`;
    }
    default: return String(report.status);
  }
}

export function basename(p: string): string {
  const parts = p.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

/**
 * How a comparison lays out its x axis. `names`: one shared axis of layer names (one model, or models whose layer
 * lists agree: the same names, or one list holding every other as a subsequence, as when one report analysed
 * fewer layers of the same network). `depth`: models of different architectures, whose layer names do not line
 * up; each model's layers are placed at their relative depth, 0 for its first analysed layer and 1 for its last,
 * so each line joins only its own model's layers and no line runs across a name another model lacks.
 */
export type LayerAlignment =
  | { mode: 'names'; labels: string[] }
  | { mode: 'depth'; series: { names: string[]; depth: number[] }[] };

/** Whether `sub` is `list` with some entries left out (same order). */
function isSubsequence(sub: string[], list: string[]): boolean {
  let i = 0;
  for (const name of list) if (i < sub.length && sub[i] === name) i++;
  return i === sub.length;
}

/** Relative depth of each of n layers in order: evenly from 0 to 1 (a single layer: 1, the only depth it has). */
export function relativeDepths(n: number): number[] {
  return Array.from({ length: n }, (_, i) => (n > 1 ? i / (n - 1) : 1));
}

/** The x axis for series whose layers (in model order) are `orders`. */
export function alignLayers(orders: string[][]): LayerAlignment {
  const nonEmpty = orders.filter((o) => o.length > 0);
  if (nonEmpty.length <= 1) return { mode: 'names', labels: nonEmpty[0] ? [...nonEmpty[0]] : [] };
  const longest = nonEmpty.reduce((a, b) => (b.length > a.length ? b : a));
  if (nonEmpty.every((o) => isSubsequence(o, longest))) return { mode: 'names', labels: [...longest] };
  return { mode: 'depth', series: orders.map((names) => ({ names: [...names], depth: relativeDepths(names.length) })) };
}
