/**
 * One report from several partial ones over the same model, images and settings (parallel workers each analyse some
 * layers, or some images of a layer): the layers in requested order, a layer's images joined and its summaries
 * recomputed from them, the worst status, the first error, and every process's peak memory.
 */
import { meanStd, type LayerResult, type Report, type ReportStatus, type RunStats, type SkippedLayer } from './report';
import { summarizeConcentration } from './concentration';
import { layerQuality } from './quality';

const SEVERITY: Record<ReportStatus, number> = { complete: 0, partial: 1, running: 1, cancelled: 2, failed: 3 };

/**
 * One layer from parts that each hold some of its images (in any order): the images in order, and every summary
 * recomputed from them exactly as the engine computes it over all images at once. `units` = H*W*C of the input, or
 * [H, W, C]: then totals are mean*H*W*C multiplied in the engine's order, so they too are bitwise the engine's.
 */
export function mergeLayerParts(parts: readonly LayerResult[], units: number | readonly [number, number, number]): LayerResult {
  if (parts.length === 1) return parts[0];
  const times = (mean: number) => (typeof units === 'number' ? mean * units : mean * units[0] * units[1] * units[2]);
  const perImage = parts.flatMap((p) => p.perImage).sort((a, b) => a.image - b.image);
  const sid = meanStd(perImage.map((p) => p.sidMean));
  const merged: LayerResult = { ...parts[0], sid: { mean: sid.mean, std: sid.std, total: times(sid.mean) }, perImage };
  if (parts[0].quality) merged.quality = layerQuality(perImage.map((p) => p.quality));
  if (parts[0].ruQuality) merged.ruQuality = layerQuality(perImage.map((p) => p.ru?.quality));
  if (parts[0].concentration !== undefined) merged.concentration = summarizeConcentration(perImage.map((p) => p.concentration));
  if (parts[0].ru) {
    const ru = meanStd(perImage.map((p) => p.ruMean!));
    merged.ru = { ...parts[0].ru, mean: ru.mean, std: ru.std, total: times(ru.mean) };
  }
  if (parts[0].baselines) {
    const stat = (get: (p: (typeof perImage)[number]) => number | null | undefined) => {
      const values = perImage.map(get);
      return values.every((v): v is number => typeof v === 'number') ? meanStd(values) : null;
    };
    merged.baselines = {
      gradNorm: stat((p) => p.baselines?.magnitude.gradNorm)!,
      gradCam: stat((p) => p.baselines?.magnitude.gradCam),
      cam: stat((p) => p.baselines?.magnitude.cam),
    };
  }
  return merged;
}

/**
 * Every process's peak (the highest seen for each pid), with the backend (and WebGPU adapter) it ran on, the GPU
 * adapter if any process used one, and the earliest first finished layer, if known.
 */
function mergeRunStats(parts: readonly Report[], firstLayerSeconds: number | undefined): RunStats {
  const byPid = new Map<number, RunStats['processes'][number]>();
  for (const p of parts) {
    for (const proc of p.run?.processes ?? []) {
      const seen = byPid.get(proc.pid);
      byPid.set(proc.pid, { ...seen, ...proc, peakRssMB: Math.max(seen?.peakRssMB ?? 0, proc.peakRssMB) });
    }
  }
  const gpu = parts.find((p) => p.run?.gpu)?.run?.gpu;
  return {
    ...(firstLayerSeconds !== undefined ? { firstLayerSeconds } : {}),
    processes: [...byPid.values()],
    ...(gpu ? { gpu } : {}),
  };
}

/**
 * The merged settings: the first part's, except that a run in which some worker used WebGPU says webgpu (its other
 * workers ran wasm beside it; run.processes says which process ran what), whatever order the parts finished in.
 */
function mergedSettings(parts: readonly Report[]): Report['settings'] {
  const first = parts[0].settings;
  return parts.some((p) => p.settings.backend === 'webgpu') ? { ...first, backend: 'webgpu' } : first;
}

export interface MergeOptions {
  /** Seconds of the whole run so far. */
  seconds: number;
  /** When the first layer had all its images, measured by whoever ran the parts. */
  firstLayerSeconds?: number;
  /** Layers with some of their images still missing: left out of the merged report until complete. */
  incomplete?: ReadonlySet<string>;
}

export function mergeReports(parts: readonly Report[], requestedLayers: readonly string[], options: MergeOptions): Report {
  if (parts.length === 0) throw new Error('mergeReports: no reports');
  const first = parts[0];
  // Images are stored at the model's input size, so one image's size is the n of sid.total = mean * n.
  const im = first.images[0];
  const units: readonly [number, number, number] = im ? [im.height, im.width, im.channels] : [NaN, NaN, NaN];
  const byName = new Map<string, LayerResult[]>();
  for (const r of parts) for (const l of r.layers) byName.set(l.name, [...(byName.get(l.name) ?? []), l]);
  const status = parts.map((r) => r.status).reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), 'complete' as ReportStatus);
  const error = parts.find((r) => r.error)?.error;
  const createdAt = parts.map((r) => r.createdAt).sort()[0];
  return {
    ...first,
    createdAt,
    status,
    ...(error ? { error } : {}),
    layers: requestedLayers.flatMap((name) => (byName.has(name) && !options.incomplete?.has(name) ? [mergeLayerParts(byName.get(name)!, units)] : [])),
    requestedLayers: [...requestedLayers],
    seconds: options.seconds,
    settings: mergedSettings(parts),
    run: mergeRunStats(parts, options.firstLayerSeconds),
    ...mergeSkipped(parts, requestedLayers),
  };
}

/** The skipped layers of every part, once each, in requested order (absent when no part has the field). */
function mergeSkipped(parts: readonly Report[], requestedLayers: readonly string[]): Pick<Report, 'skippedLayers'> {
  if (!parts.some((p) => Array.isArray(p.skippedLayers))) return {};
  const byName = new Map<string, SkippedLayer>();
  for (const p of parts) for (const s of p.skippedLayers ?? []) if (!byName.has(s.name)) byName.set(s.name, s);
  return { skippedLayers: requestedLayers.flatMap((n) => (byName.has(n) ? [byName.get(n)!] : [])) };
}
