/**
 * Resume: which layers of an earlier report at the same output can stand in this run, unchanged. Only when the
 * model file (sha256), every setting and the images as the model saw them (path, size, pixels, object region) are
 * exactly the same; otherwise nothing is reused and `reason` says in one line why. Seeds derive from a layer's
 * place in the model and an image's place in the list (analyze.ts), not from the request, so a reused layer is the
 * layer an uninterrupted run computes. Pure: no tfjs, no file access.
 */
import type { AnalysisSettings, ImageInfo, LayerResult, Report } from './report';

export interface ResumeTarget {
  sha256: string;
  settings: AnalysisSettings;
  images: ImageInfo[];
  /** The layers this run analyses. */
  layers: readonly string[];
  /** The images this run analyses (indices into `images`). */
  imageIndices: readonly number[];
}

export interface ResumePlan {
  /** Layers taken over, by name (marked reused, restricted to this run's images). */
  reuse: Map<string, LayerResult>;
  /** Why nothing could be reused, when the earlier report had layers of this request: one line. */
  reason?: string;
}

/** JSON with object keys in sorted order, so two equal settings objects compare equal whatever their key order. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${stable(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function settingsDiff(a: AnalysisSettings, b: AnalysisSettings): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof AnalysisSettings>;
  return [...keys].filter((k) => stable(a[k]) !== stable(b[k])).sort();
}

function imageKey(im: ImageInfo): string {
  return stable({ path: im.path, width: im.width, height: im.height, channels: im.channels, pixels: im.pixels, region: im.region ?? null, geometry: im.geometry ?? null });
}

export function planResume(previous: Report | undefined, target: ResumeTarget): ResumePlan {
  const reuse = new Map<string, LayerResult>();
  if (!previous || !Array.isArray(previous.layers)) return { reuse };
  const wanted = new Set(target.layers);
  const overlap = previous.layers.filter((l) => wanted.has(l.name));
  if (overlap.length === 0) return { reuse };
  const no = (why: string): ResumePlan => ({ reuse, reason: `recomputing every layer, not resuming the earlier report: ${why}` });
  if (previous.model?.sha256 !== target.sha256) return no('the model file changed since');
  const diff = settingsDiff(previous.settings ?? ({} as AnalysisSettings), target.settings);
  if (diff.length > 0) return no(`its settings differ (${diff.join(', ')})`);
  const before = previous.images ?? [];
  if (before.length !== target.images.length) return no(`it analysed ${before.length} image(s), this run ${target.images.length}`);
  const changed = target.images.findIndex((im, i) => imageKey(im) !== imageKey(before[i]));
  if (changed >= 0) return no(`image ${changed + 1} (${target.images[changed].path}) differs`);
  for (const layer of overlap) {
    const byImage = new Map(layer.perImage.map((p) => [p.image, p]));
    if (!target.imageIndices.every((i) => byImage.has(i))) continue;
    const perImage = target.imageIndices.map((i) => byImage.get(i)!);
    reuse.set(layer.name, { ...layer, perImage, reused: true });
  }
  return { reuse };
}
