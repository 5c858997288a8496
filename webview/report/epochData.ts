/**
 * Compare Checkpoints: the reports of a run's checkpoints turned into one line per layer against epoch (SID, and RU
 * where a checkpoint measured it). Pure (no DOM, no chart.js): the webview draws it, the extension logs which layers
 * it left out, the tests check it with plain Node.
 *
 * Only the layers every checkpoint has are charted (checkpoints of one run share layer names); a layer one of them
 * lacks is listed in `omitted`. A checkpoint whose layer has not finished yet (a running or cancelled analysis) has
 * no point there yet.
 */
import type { LayerResult, Report } from '../../src/engine/report';
import { layerOrder, poorDecoderText } from './data';
import { isBound, isFlagged, qualityNote } from '../../src/engine/quality';
import { seedOf } from '../../src/engine/stats/seedGroups';

export interface EpochInput {
  /** x: the epoch (or place in name order). */
  epoch: number;
  /** The checkpoint's label (tooltips). */
  label: string;
  report: Report;
  /** The training seed, when known (else read from a seed suffix of the label: "epoch-03-seed2"). */
  seed?: number | null;
}

export interface EpochPoint {
  x: number;
  /** Mean over the images (nats/pixel). */
  y: number;
  /** Std across images, when known. */
  std: number | null;
  /** The checkpoint's label. */
  checkpoint: string;
  /** A flagged value: the quality verdict's reason (schema 3), or for RU the poor-decoder text. Drawn hollow. */
  warning?: string;
  /** The value is a lower bound (saturated / at-bound): printed with "≥". */
  bound?: boolean;
  /** Seeded trajectories: the point is the mean over this many runs at its epoch, `std` the SD across them. */
  runs?: number;
}

/** The warning and bound flag of a layer value with quality `q` (absent in older reports: nothing). */
function flag(q: unknown, extra: string | null = null): Pick<EpochPoint, 'warning' | 'bound'> {
  const quality = q && typeof q === 'object' && typeof (q as { verdict?: unknown }).verdict === 'string' ? (q as LayerResult['quality']) : undefined;
  const warning = [isFlagged(quality) ? `⚠ ${qualityNote(quality)}` : '', extra ?? ''].filter((w) => w).join('\n');
  return { ...(warning ? { warning } : {}), ...(isBound(quality) ? { bound: true } : {}) };
}

export interface EpochLine {
  layer: string;
  metric: 'sid' | 'ru';
  /** In epoch order; checkpoints without a finished value for the layer are left out. */
  points: EpochPoint[];
}

export interface EpochChartData {
  /** The charted layers (those every checkpoint has), in model order. */
  layers: string[];
  /** Layers some checkpoint lacks, not charted. */
  omitted: string[];
  /** Per layer its SID line, then its RU line when any checkpoint has RU there. */
  lines: EpochLine[];
  withRu: boolean;
  /** The checkpoints' x values, in epoch order (each once when runs share an epoch). */
  epochs: number[];
  /** Seeded trajectories (checkpoints of several training runs, told apart by their seed): the most runs at one epoch (absent: one run). */
  runs?: number;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The layers every report has (in the first report's order), and the rest (in order of appearance). */
export function commonLayers(reports: Report[]): { layers: string[]; omitted: string[] } {
  if (reports.length === 0) return { layers: [], omitted: [] };
  const orders = reports.map((r) => layerOrder(r));
  const sets = orders.map((o) => new Set(o));
  const layers = orders[0].filter((name) => sets.every((s) => s.has(name)));
  const omitted: string[] = [];
  for (const order of orders) for (const name of order) if (!layers.includes(name) && !omitted.includes(name)) omitted.push(name);
  return { layers, omitted };
}

/** One line per common layer (and metric) against epoch. Checkpoints are taken in epoch order (stable for ties). */
export function epochChartData(checkpoints: EpochInput[]): EpochChartData {
  const sorted = checkpoints.map((c, i) => ({ c, i })).sort((a, b) => a.c.epoch - b.c.epoch || a.i - b.i).map((x) => x.c);
  const { layers, omitted } = commonLayers(sorted.map((c) => c.report));
  const byName = sorted.map((c) => new Map<string, LayerResult>(c.report.layers.map((l) => [l.name, l])));
  const lines: EpochLine[] = [];
  for (const layer of layers) {
    const sid: EpochPoint[] = [];
    const ru: EpochPoint[] = [];
    sorted.forEach((c, k) => {
      const l = byName[k].get(layer);
      const mean = num(l?.sid?.mean);
      if (mean !== null) sid.push({ x: c.epoch, y: mean, std: num(l?.sid?.std), checkpoint: c.label, ...flag(l?.quality) });
      const ruMean = num(l?.ru?.mean);
      if (ruMean !== null) {
        ru.push({ x: c.epoch, y: ruMean, std: num(l?.ru?.std), checkpoint: c.label, ...flag(l?.ruQuality, poorDecoderText(l)) });
      }
    });
    lines.push({ layer, metric: 'sid', points: sid });
    if (ru.length) lines.push({ layer, metric: 'ru', points: ru });
  }
  // Seeded trajectories: checkpoints that carry a seed and share an epoch are runs of one schedule: one point each.
  const seeded = sorted.some((c) => (c.seed ?? seedOf(c.label).seed) !== null);
  const perEpoch = new Map<number, number>();
  for (const c of sorted) perEpoch.set(c.epoch, (perEpoch.get(c.epoch) ?? 0) + 1);
  const runs = seeded ? Math.max(...perEpoch.values()) : 1;
  if (runs > 1) {
    for (const line of lines) line.points = meanOverRuns(line.points);
    return { layers, omitted, lines, withRu: lines.some((l) => l.metric === 'ru'), epochs: [...perEpoch.keys()], runs };
  }
  return { layers, omitted, lines, withRu: lines.some((l) => l.metric === 'ru'), epochs: sorted.map((c) => c.epoch) };
}

/** Points at one x merged: mean of the runs' values, std = SD across runs (n > 1), flags kept (any run's). */
export function meanOverRuns(points: EpochPoint[]): EpochPoint[] {
  const byX = new Map<number, EpochPoint[]>();
  for (const p of points) byX.set(p.x, [...(byX.get(p.x) ?? []), p]);
  return [...byX.entries()].map(([x, ps]) => {
    if (ps.length === 1) return ps[0];
    const y = ps.reduce((a, p) => a + p.y, 0) / ps.length;
    const sd = Math.sqrt(ps.reduce((a, p) => a + (p.y - y) ** 2, 0) / (ps.length - 1));
    const warning = ps.map((p) => p.warning).filter(Boolean).join('\n');
    const base = seedOf(ps[0].checkpoint).base;
    return { x, y, std: sd, checkpoint: `${base} (${ps.length} runs)`, runs: ps.length, ...(warning ? { warning } : {}), ...(ps.some((p) => p.bound) ? { bound: true } : {}) };
  });
}
