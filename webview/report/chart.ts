/**
 * The layer charts, one x position per layer (model order), one line per report (compare) and metric:
 *  - SID mean per layer (nats/pixel) with error bars of +- one std across images, and RU (schema 2) as its own
 *    dashed series on the same axis: both are per-pixel entropies in nats, so they compare directly (paper Fig. 1).
 *    Layers whose RU decoder reconstructs poorly (PSNR < 15 dB) get a hatched band, a hollow "!" point and a
 *    tooltip line saying their RU is not trustworthy.
 *  - Concentration (Eq. 7) per layer: mean +- std over the images with an object region, and the selected image.
 *  - Baseline magnitudes (gradient norm, Grad-CAM, CAM) on a LOG axis: they are not in fixed units and span
 *    decades across layers (and move by constant factors when weights are rescaled, paper Fig. 1), which a log
 *    axis shows as offsets instead of flattening all but the largest layer against zero.
 * The builders take several {label, report} series so model comparisons reuse them; the CLI page passes one.
 */
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  LogarithmicScale,
  PointElement,
  Tooltip,
  type ChartType,
  type Plugin,
  type PointStyle,
  type ScriptableContext,
} from 'chart.js';
import type { LayerResult, Report } from '../../src/engine/report';
import { alignLayers, layerOrder, perImage, poorDecoderText } from './data';
import { boundPrefix, isFlagged, qualityNote } from '../../src/engine/quality';
import { shortLayerLabels } from '../../src/engine/layerLabel';
import type { Theme } from './theme';
import { groupRuns, groupStatements, hasSeedGroups, meanReport } from '../../src/engine/stats/seedGroups';

Chart.register(LineController, LineElement, PointElement, CategoryScale, LinearScale, LogarithmicScale, Tooltip, Legend);

export interface ChartSeries {
  label: string;
  report: Report;
  /** The report file, when the host said (the VS Code panel); echoed back in 'setRegion'. */
  source?: string;
  /** Runs of one variant (protocol ReportSeries.group / seed): grouped by groupSeries. */
  group?: string;
  seed?: number;
  /** Set on a grouped series: how many runs its mean ± SD is over. */
  runs?: number;
}

/** Series grouped by variant: one per group, and the across-run statements (groupSeries). */
export interface GroupedSeries {
  /** One series per variant: a group of runs is its meanReport (mean over runs ± SD across runs), labelled "X (n runs)". */
  series: ChartSeries[];
  /** "SID at L: B − A: exceeds / does not exceed the run-to-run spread (test, n runs, Δ, 95 % CI …)", each group vs the first. */
  statements: string[];
  /** The layer of the statements: the deepest layer every run has SID at (null: none). */
  layer: string | null;
}

/**
 * Runs of one variant (the same `group`, or names differing only by a seed suffix: "resnet8", "resnet8-seed2",
 * "ResNet-8 (seed 3)") drawn as ONE series with mean ± SD across runs; null when no variant has two runs (then the
 * series are drawn as they are).
 */
export function groupSeries(series: ChartSeries[]): GroupedSeries | null {
  const groups = groupRuns(series.map((s) => ({ label: s.label, report: s.report, ...(s.group !== undefined ? { group: s.group } : {}), seed: s.seed ?? null })));
  if (!hasSeedGroups(groups)) return null;
  const grouped: ChartSeries[] = groups.map((g) => (g.runs.length > 1
    ? { label: `${g.label} (${g.runs.length} runs)`, report: meanReport(g.runs.map((r) => r.report)), runs: g.runs.length }
    : { label: g.runs[0].label, report: g.runs[0].report, ...(series.find((s) => s.report === g.runs[0].report)?.source ? { source: series.find((s) => s.report === g.runs[0].report)!.source } : {}) }));
  const all = groups.flatMap((g) => g.runs.map((r) => r.report));
  const common = layerOrder(all[0]).filter((name) => all.every((r) => r.layers.some((l) => l.name === name && typeof l.sid?.mean === 'number' && Number.isFinite(l.sid.mean))));
  const layer = common.length ? common[common.length - 1] : null;
  return { series: grouped, statements: layer ? groupStatements(groups, layer) : [], layer };
}

/** One line of a layer chart. */
export interface LineSpec {
  label: string;
  data: (number | null)[];
  /** Per point: the half-length of the error bar (std), or null for none. */
  std: (number | null)[];
  color: string;
  dash?: number[];
  pointStyle?: PointStyle;
  /** Per point: a warning for the tooltip; the point is drawn hollow with a "!" over a hatched band. */
  warnings?: (string | null)[];
  /** Per point: a note for the tooltip when there is no point to draw (0 on a log axis). */
  notes?: (string | null)[];
  /**
   * Depth axis (spec.xAxis === 'depth'): each point's relative depth and layer name; data, std and warnings are
   * then per point of this line, not per label.
   */
  x?: number[];
  names?: string[];
  /** Tooltip value text. */
  format(value: number, std: number | null, index: number): string;
}

export interface ChartSpec {
  /** The shared x axis of layer names ('names' axis); with a depth axis, every line's names in turn (for hooks). */
  labels: string[];
  /** 'depth': models of different architectures, each at its layers' relative depth (LineSpec.x); default 'names'. */
  xAxis?: 'names' | 'depth';
  lines: LineSpec[];
  yTitle: string;
  log?: boolean;
  legend: boolean;
  /** Draw y = 0 stronger (concentration: positive = more background than object discarded). */
  zeroLine?: boolean;
  /** Prefix tooltip values with the line's label. */
  labelTooltips: boolean;
}

export interface ErrorBarsOptions {
  /** Per dataset, per point: the half-length of the bar (std), or null for none. */
  std: (number | null)[][];
}

interface BackgroundOptions {
  color: string;
}

interface WarningsOptions {
  /** Per dataset, per point: a warning, or null. */
  warnings: (string | null)[][];
  color: string;
  /** Depth axis: per dataset, each point's x value (else a point's x value is its index). */
  xs?: (number[] | undefined)[];
}

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    errorBars?: ErrorBarsOptions;
    background?: BackgroundOptions;
    warnings?: WarningsOptions;
  }
}

/** Vertical error bars with caps, drawn in each dataset's line colour after the datasets. */
export const errorBarsPlugin: Plugin<'line', ErrorBarsOptions> = {
  id: 'errorBars',
  afterDatasetsDraw(chart, _args, options) {
    const std = options?.std ?? [];
    const { ctx } = chart;
    ctx.save();
    chart.data.datasets.forEach((dataset, i) => {
      if (!chart.isDatasetVisible(i)) return;
      const meta = chart.getDatasetMeta(i);
      const yScale = chart.scales[meta.yAxisID ?? 'y'];
      if (!yScale) return;
      ctx.strokeStyle = String(dataset.borderColor ?? '#888');
      ctx.lineWidth = 1.5;
      ctx.setLineDash([]);
      const log = yScale.type === 'logarithmic';
      meta.data.forEach((point, j) => {
        const s = std[i]?.[j];
        const raw = dataset.data[j] as unknown;
        // A depth axis plots {x, y} points.
        const mean = raw && typeof raw === 'object' ? (raw as { y: unknown }).y : raw;
        if (typeof s !== 'number' || !(s > 0) || typeof mean !== 'number' || !Number.isFinite(mean) || (point as unknown as { skip?: boolean }).skip) return;
        const x = point.x;
        const top = yScale.getPixelForValue(mean + s);
        // On a log axis a bar reaching 0 or below runs to the bottom of the plot.
        const bottom = log && mean - s <= 0 ? chart.chartArea.bottom : yScale.getPixelForValue(mean - s);
        const cap = 5;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.moveTo(x - cap, top);
        ctx.lineTo(x + cap, top);
        if (!(log && mean - s <= 0)) {
          ctx.moveTo(x - cap, bottom);
          ctx.lineTo(x + cap, bottom);
        }
        ctx.stroke();
      });
    });
    ctx.restore();
  },
};

/** Opaque background in the theme colour, so an exported PNG looks like the page. */
export const backgroundPlugin: Plugin<'line', BackgroundOptions> = {
  id: 'background',
  beforeDraw(chart, _args, options) {
    if (!options?.color) return;
    const { ctx } = chart;
    ctx.save();
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = options.color;
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

function hatch(ctx: CanvasRenderingContext2D, color: string): CanvasPattern | string {
  const tile = document.createElement('canvas');
  tile.width = tile.height = 8;
  const t = tile.getContext('2d');
  if (!t) return color;
  t.strokeStyle = color;
  t.globalAlpha = 0.35;
  t.lineWidth = 1.5;
  t.beginPath();
  t.moveTo(0, 8);
  t.lineTo(8, 0);
  t.moveTo(-2, 2);
  t.lineTo(2, -2);
  t.moveTo(6, 10);
  t.lineTo(10, 6);
  t.stroke();
  return ctx.createPattern(tile, 'repeat') ?? color;
}

/** Flagged points: a hatched band behind the layer, and a "!" above the (hollow) point. */
const warningsPlugin: Plugin<'line', WarningsOptions> = {
  id: 'warnings',
  beforeDatasetsDraw(chart, _args, options) {
    const warnings = options?.warnings ?? [];
    const flagged = new Set<number>();
    warnings.forEach((w, i) => {
      const xs = options?.xs?.[i];
      if (chart.isDatasetVisible(i)) w.forEach((text, j) => text && flagged.add(xs ? xs[j] : j));
    });
    if (flagged.size === 0) return;
    const { ctx, chartArea } = chart;
    const x = chart.scales.x;
    const n = options?.xs?.some((v) => v) ? 12 : Math.max(1, chart.data.labels?.length ?? 1);
    const width = Math.max(8, (x.width / n) * 0.6);
    ctx.save();
    ctx.fillStyle = hatch(ctx, options.color);
    for (const j of flagged) {
      const cx = x.getPixelForValue(j);
      ctx.fillRect(cx - width / 2, chartArea.top, width, chartArea.bottom - chartArea.top);
    }
    ctx.restore();
  },
  afterDatasetsDraw(chart, _args, options) {
    const warnings = options?.warnings ?? [];
    const { ctx } = chart;
    ctx.save();
    ctx.fillStyle = options.color;
    ctx.font = `bold 14px ${Chart.defaults.font.family ?? 'sans-serif'}`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    warnings.forEach((w, i) => {
      if (!chart.isDatasetVisible(i)) return;
      const meta = chart.getDatasetMeta(i);
      w.forEach((text, j) => {
        const point = meta.data[j] as unknown as { x: number; y: number; skip?: boolean } | undefined;
        if (!text || !point || point.skip || !Number.isFinite(point.y)) return;
        ctx.fillText('!', point.x + 10, point.y);
      });
    });
    ctx.restore();
  },
};

/** The tooltip warning of a flagged layer value (schema 3), or null (ok, or an older report without verdicts). */
export function qualityWarning(q: LayerResult['quality'] | null | undefined): string | null {
  return q && typeof q === 'object' && isFlagged(q) ? `⚠ ${qualityNote(q)}` : null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** x = union of the series' layer names in order (requested layers included, so gaps show what is missing). */
export function layerLabels(series: ChartSeries[]): string[] {
  const labels: string[] = [];
  for (const s of series) for (const name of layerOrder(s.report)) if (!labels.includes(name)) labels.push(name);
  return labels;
}

/**
 * The x axis of a layer chart: shared layer names, or (models of different architectures, see alignLayers) each
 * series at its own layers' relative depth. `cols(i)`: the layers series i is plotted at; `x(i)`: their depths.
 */
export interface LayerAxis {
  labels: string[];
  depth: boolean;
  cols(i: number): string[];
  x(i: number): number[] | undefined;
}

export function layerAxis(series: ChartSeries[]): LayerAxis {
  const orders = series.map((s) => layerOrder(s.report));
  const a = alignLayers(orders);
  if (a.mode === 'names') {
    const labels = layerLabels(series);
    return { labels, depth: false, cols: () => labels, x: () => undefined };
  }
  return { labels: layerLabels(series), depth: true, cols: (i) => a.series[i]?.names ?? [], x: (i) => a.series[i]?.depth };
}

/** The depth-axis fields of series i's lines (none on a names axis). */
function depthFields(axis: LayerAxis, i: number): Pick<LineSpec, 'x' | 'names'> {
  return axis.depth ? { x: axis.x(i), names: axis.cols(i) } : {};
}

function byName(report: Report): Map<string, LayerResult> {
  return new Map(report.layers.map((l) => [l.name, l]));
}

export interface LayerChartData {
  labels: string[];
  datasets: { label: string; mean: (number | null)[]; std: (number | null)[] }[];
}

/** SID mean and std per layer, one dataset per series. */
export function layerChartData(series: ChartSeries[]): LayerChartData {
  const labels = layerLabels(series);
  const datasets = series.map((s) => {
    const layers = byName(s.report);
    return {
      label: s.label,
      mean: labels.map((n) => num(layers.get(n)?.sid.mean)),
      std: labels.map((n) => num(layers.get(n)?.sid.std)),
    };
  });
  return { labels, datasets };
}

const DASHES: number[][] = [[], [7, 4], [2, 3], [10, 3, 2, 3]];

/** SID per layer and, for reports that have it, RU: the first chart. */
export function sidRuSpec(series: ChartSeries[], theme: Theme): ChartSpec {
  const axis = layerAxis(series);
  const withRu = series.some((s) => s.report.layers.some((l) => num(l.ru?.mean) !== null));
  const many = series.length > 1;
  const lines: LineSpec[] = [];
  series.forEach((s, i) => {
    const layers = byName(s.report);
    const cols = axis.cols(i);
    const color = theme.series[i % theme.series.length];
    const nats = (v: number, std: number | null): string => `${v.toFixed(3)}${std !== null ? ` ± ${std.toFixed(3)}` : ''} nats/pixel`;
    // Schema 3: flagged values (quality verdict not ok) are hollow points over a hatched band, "≥" before a bound.
    const sidWarnings = cols.map((n) => qualityWarning(layers.get(n)?.quality));
    lines.push({
      label: withRu ? (many ? `${s.label} · SID` : 'SID') : s.label,
      data: cols.map((n) => num(layers.get(n)?.sid.mean)),
      std: cols.map((n) => num(layers.get(n)?.sid.std)),
      color,
      ...(sidWarnings.some((w) => w) ? { warnings: sidWarnings } : {}),
      format: (v, std, j) => `${boundPrefix(layers.get(cols[j])?.quality)}${nats(v, std)}`,
      ...depthFields(axis, i),
    });
    if (s.report.layers.some((l) => num(l.ru?.mean) !== null)) {
      lines.push({
        label: many ? `${s.label} · RU` : 'RU',
        data: cols.map((n) => num(layers.get(n)?.ru?.mean)),
        std: cols.map((n) => num(layers.get(n)?.ru?.std)),
        color,
        dash: [7, 4],
        pointStyle: 'triangle',
        warnings: cols.map((n) => {
          if (num(layers.get(n)?.ru?.mean) === null) return null;
          const parts = [qualityWarning(layers.get(n)?.ruQuality), poorDecoderText(layers.get(n))].filter((w) => w);
          return parts.length ? parts.join('\n') : null;
        }),
        format: (v, std, j) => `${boundPrefix(layers.get(cols[j])?.ruQuality)}${nats(v, std)}`,
        ...depthFields(axis, i),
      });
    }
  });
  return {
    labels: axis.labels,
    ...(axis.depth ? { xAxis: 'depth' as const } : {}),
    lines,
    yTitle: withRu ? 'SID and RU (nats / pixel)' : 'SID (nats / pixel)',
    legend: many || withRu,
    labelTooltips: many || withRu,
  };
}

/**
 * Concentration per layer: for each series the mean +- std over the images with a region; with one series also
 * image `image` on its own (it follows a box being drawn).
 */
export function concentrationSpec(series: ChartSeries[], image: number, theme: Theme): ChartSpec {
  const axis = layerAxis(series);
  const many = series.length > 1;
  const lines: LineSpec[] = [];
  series.forEach((s, i) => {
    const layers = byName(s.report);
    const cols = axis.cols(i);
    lines.push({
      label: many ? s.label : 'mean over images with a box',
      data: cols.map((n) => num(layers.get(n)?.concentration?.mean)),
      std: cols.map((n) => num(layers.get(n)?.concentration?.std)),
      color: theme.series[i % theme.series.length],
      format: (v, std, j) => {
        const count = num(layers.get(cols[j])?.concentration?.images);
        return `${v.toFixed(3)}${std !== null ? ` ± ${std.toFixed(3)}` : ''} nats/pixel${count !== null ? ` (${count} image${count === 1 ? '' : 's'})` : ''}`;
      },
      ...depthFields(axis, i),
    });
  });
  if (!many && series[0]) {
    const layers = byName(series[0].report);
    const cols = axis.cols(0);
    lines.push({
      label: `image ${image + 1}`,
      data: cols.map((n) => num(perImage(layers.get(n), image)?.concentration)),
      std: cols.map(() => null),
      color: theme.series[4 % theme.series.length],
      dash: [6, 3],
      pointStyle: 'rectRot',
      format: (v) => `${v.toFixed(3)} nats/pixel`,
    });
  }
  return { labels: axis.labels, ...(axis.depth ? { xAxis: 'depth' as const } : {}), lines, yTitle: 'concentration (nats / pixel)', legend: true, labelTooltips: true, zeroLine: true };
}

export const BASELINE_METHODS = [
  { key: 'gradNorm', name: 'gradient norm' },
  { key: 'gradCam', name: 'Grad-CAM' },
  { key: 'cam', name: 'CAM' },
] as const;

/** Baseline map magnitudes per layer on a log axis: one line per method (colour) and report (dash). */
export function baselinesSpec(series: ChartSeries[], theme: Theme): ChartSpec {
  const axis = layerAxis(series);
  const many = series.length > 1;
  const lines: LineSpec[] = [];
  series.forEach((s, i) => {
    const layers = byName(s.report);
    const cols = axis.cols(i);
    BASELINE_METHODS.forEach((m, mi) => {
      const stat = (n: string): { mean?: unknown; std?: unknown } | null | undefined => {
        const b = layers.get(n)?.baselines as Record<string, { mean?: unknown; std?: unknown } | null> | undefined;
        return b && typeof b === 'object' ? b[m.key] : undefined;
      };
      const means = cols.map((n) => num(stat(n)?.mean));
      if (!means.some((v) => v !== null)) return;
      lines.push({
        label: many ? `${s.label} · ${m.name}` : m.name,
        data: means.map((v) => (v !== null && v > 0 ? v : null)),
        std: cols.map((n) => num(stat(n)?.std)),
        notes: means.map((v) => (v !== null && v <= 0 ? `${m.name}: ${v} (not drawn on the log axis)` : null)),
        color: theme.series[mi % theme.series.length],
        dash: DASHES[i % DASHES.length],
        pointStyle: (['circle', 'triangle', 'rect'] as const)[mi],
        format: (v, std) => `${v.toPrecision(3)}${std !== null ? ` ± ${std.toPrecision(2)}` : ''}`,
        ...depthFields(axis, i),
      });
    });
  });
  return { labels: axis.labels, ...(axis.depth ? { xAxis: 'depth' as const } : {}), lines, yTitle: 'map magnitude (log scale)', log: true, legend: true, labelTooltips: true };
}

/**
 * What the SID chart card says instead of a chart while no shown report has a finished layer (a run's first minutes):
 * axes then would show a 0–1 scale as if there were data. null once any layer has finished.
 */
export function chartWaitingText(series: readonly ChartSeries[]): string | null {
  if (series.length === 0 || series.some((s) => s.report.layers.length > 0)) return null;
  const skipped = new Set(series.flatMap((s) => (s.report.skippedLayers ?? []).map((l) => l.name)));
  const queued = layerLabels([...series]).filter((n) => !skipped.has(n)).length;
  const layers = `${queued} layer${queued === 1 ? '' : 's'}`;
  if (series.some((s) => s.report.status === 'running')) return `Waiting for the first layer… (${layers} queued)`;
  return `No layer has finished (${series.map((s) => s.report.status).filter((v, i, a) => a.indexOf(v) === i).join(', ')}${queued ? `; ${layers} not analysed` : ''}).`;
}

/** The x-axis tick labels of a names axis: short forms of long exported layer names (none on a depth axis). */
export function chartAxisLabels(spec: ChartSpec): string[] {
  return spec.xAxis === 'depth' ? [] : shortLayerLabels(spec.labels);
}

/** Test hooks for a chart canvas: its line labels and how many points each has. */
export function chartHooks(spec: ChartSpec): { series: string; points: string } {
  return {
    series: JSON.stringify(spec.lines.map((l) => l.label)),
    points: spec.lines.map((l) => l.data.filter((v) => v !== null).length).join(','),
  };
}

/** A log axis from the decade below the smallest drawn value (or bar end) to the decade above the largest. */
function logRange(spec: ChartSpec): { min?: number; max?: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const line of spec.lines) {
    line.data.forEach((m, j) => {
      if (m === null || !(m > 0)) return;
      const s = line.std[j] ?? 0;
      lo = Math.min(lo, m - s > 0 ? m - s : m);
      hi = Math.max(hi, m + s);
    });
  }
  if (!Number.isFinite(lo)) return {};
  const min = 10 ** Math.floor(Math.log10(lo));
  let max = 10 ** Math.ceil(Math.log10(hi));
  if (max <= min) max = min * 10;
  return { min, max };
}

/** Create a chart on `canvas` (whose parent should be a sized, position:relative box). */
export function renderChart(canvas: HTMLCanvasElement, spec: ChartSpec, theme: Theme): Chart<'line'> {
  let lo = Infinity;
  let hi = -Infinity;
  for (const line of spec.lines) {
    line.data.forEach((m, j) => {
      if (m === null) return;
      const s = line.std[j] ?? 0;
      lo = Math.min(lo, m - s);
      hi = Math.max(hi, m + s);
    });
  }
  if (spec.zeroLine && Number.isFinite(lo)) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  const pad = Number.isFinite(lo) ? Math.max((hi - lo) * 0.08, 0.05) : 0;
  const font = { family: theme.font, size: Math.max(10, Math.round(theme.fontSize * 0.9)) };
  Chart.defaults.font.family = theme.font;
  const anyData = Number.isFinite(lo);
  const yRange = spec.log ? logRange(spec) : anyData ? { suggestedMin: lo - pad, suggestedMax: hi + pad } : { min: 0, max: 1 };
  const depth = spec.xAxis === 'depth';
  const axisLabels = chartAxisLabels(spec);
  const hollow = (line: LineSpec) => (c: ScriptableContext<'line'>): string => (line.warnings?.[c.dataIndex] ? theme.bg : line.color);
  return new Chart(canvas, {
    type: 'line',
    data: {
      ...(depth ? {} : { labels: spec.labels }),
      datasets: spec.lines.map((line) => ({
        label: line.label,
        // A depth axis: each point at its own layer's relative depth, so a line joins only its model's layers.
        data: depth ? (line.data.map((y, j) => ({ x: line.x?.[j] ?? j, y })) as unknown as (number | null)[]) : line.data,
        borderColor: line.color,
        backgroundColor: line.color,
        pointRadius: 4,
        ...(line.warnings ? {
          pointBackgroundColor: hollow(line),
          pointBorderWidth: (c: ScriptableContext<'line'>) => (line.warnings?.[c.dataIndex] ? 2.5 : 1),
          pointRadius: (c: ScriptableContext<'line'>) => (line.warnings?.[c.dataIndex] ? 6 : 4),
        } : {}),
        ...(line.pointStyle ? { pointStyle: line.pointStyle } : {}),
        ...(line.dash && line.dash.length ? { borderDash: line.dash } : {}),
        pointHoverRadius: 6,
        borderWidth: 2,
        tension: 0,
        spanGaps: false,
      })),
    },
    plugins: [warningsPlugin, errorBarsPlugin, backgroundPlugin],
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      color: theme.fg,
      interaction: depth ? { mode: 'nearest', axis: 'xy', intersect: false } : { mode: 'index', intersect: false },
      layout: { padding: { top: 4, right: 8 } },
      scales: {
        x: depth
          ? {
            type: 'linear',
            // A little room either side, so the first and last layers' points and error bars are not cut.
            min: -0.04,
            max: 1.04,
            title: { display: true, text: 'relative depth (0 = first analysed layer, 1 = last; the models\' layer names differ)', color: theme.muted, font },
            afterBuildTicks(axis) {
              axis.ticks = [0, 0.25, 0.5, 0.75, 1].map((value) => ({ value }));
            },
            ticks: { color: theme.fg, font, callback(value) { return Number(value).toFixed(2); } },
            offset: false,
            grid: { color: theme.grid, display: false },
            border: { color: theme.grid },
          }
          : {
            title: { display: true, text: 'layer (model order)', color: theme.muted, font },
            // Short labels on the axis ("layer1.1/relu_1" for "/layer1/layer1.1/relu_1/Relu_output_0"); the tooltip's
            // title is the full name.
            ticks: { color: theme.fg, font, maxRotation: 40, autoSkip: true, callback(value) { return axisLabels[Number(value)] ?? String(this.getLabelForValue(Number(value))); } },
            offset: true,
            grid: { color: theme.grid, display: false },
            border: { color: theme.grid },
          },
        y: {
          type: spec.log ? 'logarithmic' : 'linear',
          title: { display: true, text: spec.yTitle, color: theme.muted, font },
          ticks: spec.log
            ? { color: theme.fg, font, callback(value) { const v = Number(value); const e = Math.log10(v); return Math.abs(e - Math.round(e)) < 1e-9 ? v.toExponential(0).replace('e+', 'e') : ''; } }
            : { color: theme.fg, font },
          grid: spec.zeroLine
            ? { color: (c) => (c.tick?.value === 0 ? theme.muted : theme.grid), lineWidth: (c) => (c.tick?.value === 0 ? 1.5 : 1) }
            : { color: theme.grid },
          border: { color: theme.grid },
          ...yRange,
        },
      },
      plugins: {
        legend: { display: spec.legend, labels: { color: theme.fg, font, boxWidth: 14, usePointStyle: spec.lines.length > 1 && spec.lines.some((l) => !!l.pointStyle) } },
        tooltip: {
          callbacks: {
            // A depth axis has no shared label: the point's own layer, and its depth.
            ...(depth ? {
              title(items) {
                const item = items[0];
                const line = item ? spec.lines[item.datasetIndex] : undefined;
                return item && line ? `${line.names?.[item.dataIndex] ?? ''} (depth ${(line.x?.[item.dataIndex] ?? 0).toFixed(2)})` : '';
              },
            } : {}),
            label(item) {
              const line = spec.lines[item.datasetIndex];
              const mean = item.parsed.y;
              if (!line) return '';
              if (mean === null || mean === undefined || !Number.isFinite(mean)) {
                const note = line.notes?.[item.dataIndex];
                return note ?? `${item.dataset.label}: pending`;
              }
              const std = line.std[item.dataIndex];
              return `${spec.labelTooltips ? `${item.dataset.label}: ` : ''}${line.format(mean, std ?? null, item.dataIndex)}`;
            },
            afterLabel(item) {
              return spec.lines[item.datasetIndex]?.warnings?.[item.dataIndex] ?? '';
            },
          },
        },
        errorBars: { std: spec.lines.map((l) => l.std) },
        warnings: { warnings: spec.lines.map((l) => l.warnings ?? l.data.map(() => null)), color: theme.warn, ...(depth ? { xs: spec.lines.map((l) => l.x) } : {}) },
        background: { color: theme.bg },
      },
    },
  });
}

/** The SID (and RU) chart. */
export function renderLayerChart(canvas: HTMLCanvasElement, series: ChartSeries[], theme: Theme): Chart<'line'> {
  return renderChart(canvas, sidRuSpec(series, theme), theme);
}
