/**
 * Compare Checkpoints: SID per layer against epoch, a chart.js line chart on a linear x axis (epoch), one line per
 * layer in the theme's series colours (point styles cycle once the colours run out), RU of the same layer dashed in
 * its colour. The data comes from epochData.ts (pure); std and the checkpoint's name are in the tooltip. Seeded
 * trajectories (points that are the mean over several runs) get error bars of ± 1 SD across the runs.
 */
import { Chart, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip, type PointStyle } from 'chart.js';
import { backgroundPlugin, errorBarsPlugin } from './chart';
import type { EpochChartData, EpochLine } from './epochData';
import type { Theme } from './theme';

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Legend);

export type EpochAxisKind = 'epoch' | 'order';

/** Up to this many checkpoints, the x axis has a tick at each. */
const MAX_CHECKPOINT_TICKS = 25;

const POINT_STYLES: PointStyle[] = ['circle', 'rect', 'rectRot', 'star', 'crossRot', 'cross'];

export interface EpochLineSpec {
  label: string;
  line: EpochLine;
  color: string;
  dash?: number[];
  pointStyle: PointStyle;
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Label, colour, dash and point style of every line: a colour per layer, RU dashed with triangles. */
export function epochLineSpecs(data: EpochChartData, theme: Theme): EpochLineSpec[] {
  const colors = theme.series.length ? theme.series : ['#888888'];
  return data.lines.map((line) => {
    const i = data.layers.indexOf(line.layer);
    const color = colors[i % colors.length];
    const style = POINT_STYLES[Math.floor(i / colors.length) % POINT_STYLES.length];
    if (line.metric === 'ru') return { label: `${line.layer} · RU`, line, color, dash: [7, 4], pointStyle: 'triangle' };
    return { label: data.withRu ? `${line.layer} · SID` : line.layer, line, color, pointStyle: style };
  });
}

/** Test hooks for the canvas: the lines' labels and how many points each has. */
export function epochChartHooks(specs: EpochLineSpec[]): { series: string; points: string } {
  return { series: JSON.stringify(specs.map((s) => s.label)), points: specs.map((s) => s.line.points.length).join(',') };
}

/**
 * The chart on `canvas` (in a sized, position:relative box). `epochs`: every checkpoint's x (the axis spans them all,
 * also before their analyses finish); `names`: with axis 'order', the checkpoint label at each x (for the ticks).
 */
export function renderEpochChart(
  canvas: HTMLCanvasElement,
  data: EpochChartData,
  opts: { axis: EpochAxisKind; epochs: number[]; names?: Map<number, string> },
  theme: Theme,
): Chart<'line'> {
  const specs = epochLineSpecs(data, theme);
  const font = { family: theme.font, size: Math.max(10, Math.round(theme.fontSize * 0.9)) };
  Chart.defaults.font.family = theme.font;
  const xs = opts.epochs.length ? opts.epochs : data.epochs;
  const lo = xs.length ? Math.min(...xs) : 0;
  const hi = xs.length ? Math.max(...xs) : 1;
  const pad = Math.max(0.3, (hi - lo) * 0.03);
  const xWord = opts.axis === 'epoch' ? 'epoch' : 'checkpoint';
  const ticksAt = [...new Set(xs)].sort((a, b) => a - b);
  const nats = (v: number, std: number | null | undefined): string => `${v.toFixed(3)}${typeof std === 'number' ? ` ± ${std.toFixed(3)}` : ''} nats/pixel`;
  const anyPoint = data.lines.some((l) => l.points.length > 0);
  return new Chart(canvas, {
    type: 'line',
    data: {
      datasets: specs.map((s) => ({
        label: s.label,
        data: s.line.points.map((p) => ({ x: p.x, y: p.y })),
        borderColor: s.color,
        backgroundColor: s.color,
        pointStyle: s.pointStyle,
        // Flagged values (quality verdict, poor decoder): hollow and larger, the reason in the tooltip.
        pointRadius: s.line.points.map((p) => (p.warning ? 6 : 4)),
        pointBackgroundColor: s.line.points.map((p) => (p.warning ? theme.bg : s.color)),
        pointBorderWidth: s.line.points.map((p) => (p.warning ? 2.5 : 1)),
        pointHoverRadius: 6,
        borderWidth: 2,
        tension: 0,
        ...(s.dash ? { borderDash: s.dash } : {}),
      })),
    },
    plugins: [backgroundPlugin, errorBarsPlugin],
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      color: theme.fg,
      parsing: false,
      interaction: { mode: 'x', intersect: false },
      layout: { padding: { top: 4, right: 8 } },
      scales: {
        x: {
          type: 'linear',
          min: lo - pad,
          max: hi + pad,
          title: { display: true, text: opts.axis === 'epoch' ? 'epoch' : 'checkpoint (name order)', color: theme.muted, font },
          // A tick at every checkpoint while they fit; beyond that chart.js's own (every epoch between them may not be saved).
          ...(ticksAt.length <= MAX_CHECKPOINT_TICKS ? { afterBuildTicks: (scale: { ticks: { value: number }[] }) => { scale.ticks = ticksAt.map((value) => ({ value })); } } : {}),
          ticks: {
            color: theme.fg,
            font,
            maxRotation: 40,
            callback(value) {
              const v = Number(value);
              if (!Number.isInteger(v) || v < lo || v > hi) return '';
              return opts.axis === 'order' ? truncate(opts.names?.get(v) ?? String(v), 20) : String(v);
            },
          },
          grid: { color: theme.grid },
          border: { color: theme.grid },
        },
        y: {
          type: 'linear',
          title: { display: true, text: data.withRu ? 'SID and RU (nats / pixel)' : 'SID (nats / pixel)', color: theme.muted, font },
          ticks: { color: theme.fg, font },
          grid: { color: theme.grid },
          border: { color: theme.grid },
          ...(anyPoint ? { grace: '8%' } : { min: 0, max: 1 }),
        },
      },
      plugins: {
        legend: { display: true, labels: { color: theme.fg, font, boxWidth: 14, usePointStyle: true } },
        tooltip: {
          callbacks: {
            title(items) {
              const item = items[0];
              if (!item) return '';
              const p = specs[item.datasetIndex]?.line.points[item.dataIndex];
              return `${xWord} ${item.parsed.x}${p ? `: ${p.checkpoint}` : ''}`;
            },
            label(item) {
              const p = specs[item.datasetIndex]?.line.points[item.dataIndex];
              if (!p) return '';
              return `${item.dataset.label}: ${p.bound ? '≥' : ''}${nats(p.y, p.std)}${p.runs && p.runs > 1 ? ` (mean ± SD across ${p.runs} runs)` : ''}`;
            },
            afterLabel(item) {
              return specs[item.datasetIndex]?.line.points[item.dataIndex]?.warning ?? '';
            },
          },
        },
        background: { color: theme.bg },
        // Bars only where a point is the mean over runs (its std is then the SD across runs, not across images).
        errorBars: { std: specs.map((s) => s.line.points.map((p) => (p.runs && p.runs > 1 ? p.std : null))) },
      },
    },
  });
}
