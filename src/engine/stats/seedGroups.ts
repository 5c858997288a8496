/**
 * Models of one variant trained with different seeds, drawn as ONE series (issue 17). Pure (no I/O, no DOM): the
 * compare view, the epoch chart and `npm run repro -- --seeds N` use it.
 *
 *  - seedOf(label): a seed read from a name that differs from its variant's only by a seed suffix
 *    ("resnet8-seed2.onnx", "resnet8_seed3", "ResNet-8 (seed 2)", "seed2/resnet8.onnx") and the variant's name.
 *  - groupRuns(items): items → groups (by an explicit group, else the name without its seed suffix).
 *  - meanReport(reports): one report whose per-layer mean is the mean over runs of each run's mean over images and
 *    whose std is the SD ACROSS RUNS (not across images), so the existing charts draw mean ± run spread.
 *  - groupComparison(a, b, layer): the across-run test (acrossRuns.ts) of B − A at a layer, with images paired
 *    within a run, and its sentence.
 */
import type { LayerResult, Report } from '../report';
import { acrossRuns, mean, spreadStatement, variance, type AcrossRuns } from './acrossRuns';

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** A seed suffix at the end of a name (extension dropped first) or a seed<N> folder in its path. */
// Only the word "seed": a bare "s2" suffix too often means something else (a stride, a size).
const SUFFIX = /(?:[-_. ]+seed[-_ ]?(\d+)|\s*\(seed\s*(\d+)\))$/i;
const FOLDER = /(?:^|[\\/])seed[-_]?(\d+)[\\/]/i;

/** The variant name and seed of a model name or path: "resnet8-seed2.onnx" → { base: "resnet8", seed: 2 }. */
export function seedOf(label: string): { base: string; seed: number | null } {
  const file = label.split(/[\\/]/).pop() ?? label;
  const stem = file.replace(/\.(onnx|h5|hdf5|keras|pt|pth|json)$/i, '');
  const m = SUFFIX.exec(stem);
  if (m) return { base: stem.slice(0, m.index), seed: Number(m[1] ?? m[2]) };
  const f = FOLDER.exec(label);
  if (f) return { base: stem, seed: Number(f[1]) };
  return { base: stem, seed: null };
}

export interface RunItem<T = Report> {
  label: string;
  report: T;
  /** Explicit variant group (e.g. the families manifest's `group`); else the label without its seed suffix. */
  group?: string;
  seed?: number | null;
}

export interface RunGroup<T = Report> {
  /** The group's key and display name (the variant's name). */
  key: string;
  label: string;
  runs: (RunItem<T> & { seed: number | null })[];
}

/**
 * Items grouped by variant, groups in order of first appearance. Only names that carry a seed (or an explicit
 * group) are grouped: two files that merely share a stem without a seed suffix stay apart. A name without a seed
 * whose stem is a seeded group's name ("resnet8" beside "resnet8-seed2") joins that group, as seed 1 when no other
 * run of the group is seed 1 (train_families.py's layout: seed 1 at the top, seed<N>/ beside it).
 */
export function groupRuns<T>(items: RunItem<T>[]): RunGroup<T>[] {
  const parsed = items.map((item) => seedOf(item.label));
  const seededBases = new Set(parsed.filter((p, i) => p.seed !== null && items[i].group === undefined).map((p) => p.base));
  const groups = new Map<string, RunGroup<T>>();
  items.forEach((item, i) => {
    const p = parsed[i];
    const seed = item.seed ?? p.seed;
    const seeded = p.seed !== null || seededBases.has(p.base);
    const key = item.group ?? (seeded ? `seed-group:${p.base}` : `single:${i}:${item.label}`);
    const label = item.group ? itemName(item, p) : seeded ? p.base : item.label;
    const g = groups.get(key) ?? { key, label, runs: [] };
    g.runs.push({ ...item, seed });
    groups.set(key, g);
  });
  for (const g of groups.values()) {
    const unseeded = g.runs.filter((r) => r.seed === null);
    if (g.key.startsWith('seed-group:') && g.runs.length > 1 && unseeded.length === 1 && !g.runs.some((r) => r.seed === 1)) unseeded[0].seed = 1;
  }
  return [...groups.values()];
}

/** A group's display name: the item's label without a "(seed N)" / seed suffix. */
function itemName<T>(item: RunItem<T>, p: { base: string; seed: number | null }): string {
  const m = /^(.*?)\s*\(seed\s*\d+\)$/i.exec(item.label);
  if (m) return m[1];
  return p.seed !== null ? p.base : item.label;
}

/** True when some group has two or more runs (worth drawing grouped). */
export function hasSeedGroups<T>(groups: RunGroup<T>[]): boolean {
  return groups.some((g) => g.runs.length > 1);
}

function meanSd(xs: number[]): { mean: number; sd: number } {
  return { mean: mean(xs), sd: xs.length > 1 ? Math.sqrt(variance(xs)) : 0 };
}

/**
 * One report from several runs of a variant: the layers every run has, in the first run's order; each layer's
 * sid / ru / concentration mean = mean over runs of the run's mean over images, std = SD across runs (0 for one
 * run). Per-image results are dropped (images differ in meaning across runs only by the model; the maps would mix).
 * `runs` (not a schema field) says how many runs each value averages.
 */
export function meanReport(reports: Report[]): Report & { runs: number } {
  const first = reports[0];
  const maps = reports.map((r) => new Map(r.layers.map((l) => [l.name, l])));
  const layers: LayerResult[] = [];
  for (const l0 of first.layers) {
    const all = maps.map((m) => m.get(l0.name)).filter((l): l is LayerResult => !!l);
    if (all.length !== reports.length) continue;
    const agg = (get: (l: LayerResult) => unknown): { mean: number; std: number } | null => {
      const xs = all.map(get).filter(isNum);
      if (xs.length !== all.length || !xs.length) return null;
      const { mean: m, sd } = meanSd(xs);
      return { mean: m, std: sd };
    };
    const sid = agg((l) => l.sid?.mean);
    if (!sid) continue;
    const ru = agg((l) => l.ru?.mean);
    const conc = agg((l) => l.concentration?.mean);
    const out: LayerResult = { ...l0, sid: { ...l0.sid, ...sid }, perImage: [] };
    if (ru && l0.ru) out.ru = { ...l0.ru, ...ru };
    else delete out.ru;
    if (conc && l0.concentration) out.concentration = { ...l0.concentration, ...conc };
    else delete out.concentration;
    delete out.baselines;
    layers.push(out);
  }
  return { ...first, layers, runs: reports.length };
}

/** Per-image values of one layer's metric, keyed by image file name (values flagged as not measurements left out). */
export function perImageValues(report: Report, layer: string, metric: 'sid' | 'ru' = 'sid'): Record<string, number> {
  const l = report.layers.find((x) => x.name === layer);
  const out: Record<string, number> = {};
  const bad = (q: unknown): boolean => !!q && typeof q === 'object' && ['ratio-off', 'saturated', 'at-bound'].includes(String((q as { verdict?: unknown }).verdict));
  for (const p of l?.perImage ?? []) {
    const v = metric === 'sid' ? p.sidMean : p.ruMean;
    const q = metric === 'sid' ? p.quality : p.ru?.quality;
    if (!isNum(v) || bad(q)) continue;
    const name = String(report.images?.[p.image]?.path ?? `image-${p.image}`).split(/[\\/]/).pop()!;
    out[name] = v;
  }
  return out;
}

/**
 * B − A across runs at one layer. Paired over runs when both groups have runs of the same seeds (known, ≥ 2 shared):
 * the families' variants share a seed's training subset and initial weights. Otherwise Welch's t on the runs'
 * means (seeds unknown or independent).
 */
export function groupComparison(a: RunGroup, b: RunGroup, layer: string, metric: 'sid' | 'ru' = 'sid'): AcrossRuns | null {
  const seedsA = new Map(a.runs.filter((r) => r.seed !== null).map((r) => [r.seed!, r]));
  const shared = b.runs.filter((r) => r.seed !== null && seedsA.has(r.seed));
  if (shared.length >= 2 && shared.length === b.runs.length && seedsA.size === a.runs.length) {
    return acrossRuns(shared.map((rb) => ({ a: perImageValues(seedsA.get(rb.seed!)!.report, layer, metric), b: perImageValues(rb.report, layer, metric), seed: rb.seed! })), true);
  }
  const n = Math.max(a.runs.length, b.runs.length);
  const runs = Array.from({ length: n }, (_, i) => ({
    ...(a.runs[i] ? { a: perImageValues(a.runs[i].report, layer, metric) } : {}),
    ...(b.runs[i] ? { b: perImageValues(b.runs[i].report, layer, metric) } : {}),
  }));
  return acrossRuns(runs, false);
}

/** The compare view's lines: every group against the first, at `layer`. */
export function groupStatements(groups: RunGroup[], layer: string, metric: 'sid' | 'ru' = 'sid'): string[] {
  if (groups.length < 2) return [];
  const [base, ...rest] = groups;
  const what = metric === 'sid' ? 'SID' : 'RU';
  return rest.map((g) => `${what} at ${layer}: ${spreadStatement(base.label, g.label, groupComparison(base, g, layer, metric), 'nats/pixel')}`);
}
