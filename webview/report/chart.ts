/**
 * The layer chart: SID mean per layer (nats/pixel) with error bars of +- one std across images, one line per
 * report. Takes several {label, report} series so model comparisons can reuse it; the CLI page passes one.
 */
import {
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartType,
  type Plugin,
} from 'chart.js';
import type { Report } from '../../src/engine/report';
import { layerOrder } from './data';
import type { Theme } from './theme';

Chart.register(LineController, LineElement, PointElement, CategoryScale, LinearScale, Tooltip, Legend);

export interface ChartSeries {
  label: string;
  report: Report;
}

export interface ErrorBarsOptions {
  /** Per dataset, per point: the half-length of the bar (std), or null for none. */
  std: (number | null)[][];
}

interface BackgroundOptions {
  color: string;
}

declare module 'chart.js' {
  interface PluginOptionsByType<TType extends ChartType> {
    errorBars?: ErrorBarsOptions;
    background?: BackgroundOptions;
  }
}

/** Vertical error bars with caps, drawn in each dataset's line colour after the datasets. */
const errorBarsPlugin: Plugin<'line', ErrorBarsOptions> = {
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
      meta.data.forEach((point, j) => {
        const s = std[i]?.[j];
        const mean = dataset.data[j];
        if (typeof s !== 'number' || !(s > 0) || typeof mean !== 'number' || !Number.isFinite(mean) || (point as unknown as { skip?: boolean }).skip) return;
        const x = point.x;
        const top = yScale.getPixelForValue(mean + s);
        const bottom = yScale.getPixelForValue(mean - s);
        const cap = 5;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.moveTo(x - cap, top);
        ctx.lineTo(x + cap, top);
        ctx.moveTo(x - cap, bottom);
        ctx.lineTo(x + cap, bottom);
        ctx.stroke();
      });
    });
    ctx.restore();
  },
};

/** Opaque background in the theme colour, so an exported PNG looks like the page. */
const backgroundPlugin: Plugin<'line', BackgroundOptions> = {
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

export interface LayerChartData {
  labels: string[];
  datasets: { label: string; mean: (number | null)[]; std: (number | null)[] }[];
}

/** x = union of the series' layer names in order (requested layers included, so gaps show what is missing). */
export function layerChartData(series: ChartSeries[]): LayerChartData {
  const labels: string[] = [];
  for (const s of series) for (const name of layerOrder(s.report)) if (!labels.includes(name)) labels.push(name);
  const datasets = series.map((s) => {
    const byName = new Map(s.report.layers.map((l) => [l.name, l]));
    const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
    return {
      label: s.label,
      mean: labels.map((n) => num(byName.get(n)?.sid.mean)),
      std: labels.map((n) => num(byName.get(n)?.sid.std)),
    };
  });
  return { labels, datasets };
}

function truncate(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Create the chart on `canvas` (whose parent should be a sized, position:relative box). */
export function renderLayerChart(canvas: HTMLCanvasElement, series: ChartSeries[], theme: Theme): Chart<'line'> {
  const data = layerChartData(series);
  let lo = Infinity;
  let hi = -Infinity;
  for (const d of data.datasets) {
    d.mean.forEach((m, j) => {
      if (m === null) return;
      const s = d.std[j] ?? 0;
      lo = Math.min(lo, m - s);
      hi = Math.max(hi, m + s);
    });
  }
  const pad = Number.isFinite(lo) ? Math.max((hi - lo) * 0.08, 0.05) : 0;
  const font = { family: theme.font, size: Math.max(10, Math.round(theme.fontSize * 0.9)) };
  Chart.defaults.font.family = theme.font;
  return new Chart(canvas, {
    type: 'line',
    data: {
      labels: data.labels,
      datasets: data.datasets.map((d, i) => {
        const color = theme.series[i % theme.series.length];
        return {
          label: d.label,
          data: d.mean,
          borderColor: color,
          backgroundColor: color,
          pointRadius: 4,
          pointHoverRadius: 6,
          borderWidth: 2,
          tension: 0,
          spanGaps: false,
        };
      }),
    },
    plugins: [errorBarsPlugin, backgroundPlugin],
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      color: theme.fg,
      interaction: { mode: 'index', intersect: false },
      layout: { padding: { top: 4, right: 8 } },
      scales: {
        x: {
          title: { display: true, text: 'layer (model order)', color: theme.muted, font },
          ticks: { color: theme.fg, font, maxRotation: 40, autoSkip: true, callback(value) { return truncate(String(this.getLabelForValue(Number(value))), 24); } },
          offset: true,
          grid: { color: theme.grid, display: false },
          border: { color: theme.grid },
        },
        y: {
          title: { display: true, text: 'SID (nats / pixel)', color: theme.muted, font },
          ticks: { color: theme.fg, font },
          grid: { color: theme.grid },
          border: { color: theme.grid },
          ...(Number.isFinite(lo) ? { suggestedMin: lo - pad, suggestedMax: hi + pad } : { min: 0, max: 1 }),
        },
      },
      plugins: {
        legend: { display: series.length > 1, labels: { color: theme.fg, font, boxWidth: 14 } },
        tooltip: {
          callbacks: {
            label(item) {
              const std = data.datasets[item.datasetIndex]?.std[item.dataIndex];
              const mean = item.parsed.y;
              if (mean === null || mean === undefined) return `${item.dataset.label}: pending`;
              const pm = std !== null && std !== undefined ? ` ± ${std.toFixed(3)}` : '';
              return `${series.length > 1 ? `${item.dataset.label}: ` : ''}${mean.toFixed(3)}${pm} nats/pixel`;
            },
          },
        },
        errorBars: { std: data.datasets.map((d) => d.std) },
        background: { color: theme.bg },
      },
    },
  });
}
