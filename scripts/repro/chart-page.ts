/**
 * Browser entry for the reproduction charts (bundled by charts.ts with esbuild, run in headless Chromium).
 * It draws with the report panel's own chart code (webview/report/chart.ts): the SID/RU per-layer chart with one
 * series per model (as the panel's 'compare' view does), the concentration per-layer chart, and, for families
 * ordered by a number, the focus layer's SID (and RU) against that number, built as a ChartSpec for the same
 * renderChart. The page sets window.__reproDone when every chart is drawn.
 */
import type { Report } from '../../src/engine/report';
import { concentrationSpec, renderChart, sidRuSpec, type ChartSeries, type ChartSpec, type LineSpec } from '../../webview/report/chart';
import { normalizeReport } from '../../webview/report/data';
import { readTheme } from '../../webview/report/theme';
import type { TrendChartData } from './summarise';

export interface ChartPayload {
  title: string;
  subtitle: string;
  series: { label: string; report: Report }[];
  concentration: boolean;
  trend: TrendChartData | null;
  /** Across runs (--seeds N): what the points and bars are, e.g. "mean over 3 training runs, error bars ± 1 SD across runs". */
  spread?: string;
}

declare global {
  interface Window {
    reproRender(payload: ChartPayload): void;
    __reproDone?: boolean;
    __reproError?: string;
  }
}

function card(parent: HTMLElement, title: string, hint: string, wide: boolean): HTMLCanvasElement {
  const section = document.createElement('section');
  section.className = `id-card${wide ? ' repro-wide' : ''}`;
  const h = document.createElement('h2');
  h.textContent = title;
  const p = document.createElement('p');
  p.className = 'id-hint';
  p.textContent = hint;
  const box = document.createElement('div');
  box.className = 'id-chart-box';
  const canvas = document.createElement('canvas');
  box.append(canvas);
  section.append(h, p, box);
  parent.append(section);
  return canvas;
}

function trendSpec(trend: TrendChartData, theme: ReturnType<typeof readTheme>): ChartSpec {
  const lines: LineSpec[] = trend.lines.map((l, i) => ({
    label: l.label,
    data: l.data,
    std: l.std,
    color: theme.series[(l.metric === 'ru' ? 1 : 0) + (i > 1 ? 2 : 0)],
    ...(l.metric === 'ru' ? { dash: [7, 4], pointStyle: 'triangle' as const } : {}),
    format: (v: number, s: number | null) => `${v.toFixed(3)}${s !== null ? ` ± ${s.toFixed(3)}` : ''} nats/pixel`,
  }));
  const what = trend.lines.map((l) => l.label.split(' at ')[0]).join(' and ');
  return { labels: trend.labels, lines, yTitle: `${what} at ${trend.layer} (nats / pixel)`, legend: true, labelTooltips: true };
}

/** renderChart titles its x axis "layer (model order)"; the trend chart's x is the family's number. */
function retitleX(chart: ReturnType<typeof renderChart>, text: string): void {
  const x = chart.options.scales?.x as { title?: { text?: string } } | undefined;
  if (x?.title) x.title.text = text;
  chart.update('none');
}

window.reproRender = (payload: ChartPayload): void => {
  try {
    const theme = readTheme();
    const root = document.createElement('main');
    root.id = 'figure';
    const head = document.createElement('header');
    const h1 = document.createElement('h1');
    h1.textContent = payload.title;
    const sub = document.createElement('p');
    sub.className = 'id-hint';
    sub.textContent = payload.subtitle;
    head.append(h1, sub);
    const grid = document.createElement('div');
    grid.className = 'repro-grid';
    root.append(head, grid);
    document.body.append(root);

    const series: ChartSeries[] = payload.series.flatMap((s) => {
      const report = normalizeReport(s.report);
      return report ? [{ label: s.label, report }] : [];
    });
    const withRu = series.some((s) => s.report.layers.some((l) => typeof l.ru?.mean === 'number'));
    // The per-layer chart across the top; the others side by side below it (one alone: full width too).
    const secondary = (payload.trend ? 1 : 0) + (payload.concentration ? 1 : 0);
    const layersCanvas = card(grid, withRu ? 'SID and RU per layer' : 'SID per layer', `One line per model; ${payload.spread ?? 'mean over images, error bars ± 1 std across images'}.${withRu ? ' RU dashed (triangles), measured at fewer layers; hatched "!" = decoder PSNR < 15 dB.' : ''} Higher = more of the input discarded.`, true);
    renderChart(layersCanvas, sidRuSpec(series, theme), theme);
    if (payload.trend) {
      const t = payload.trend;
      const what = t.lines.map((l) => l.label.split(' at ')[0]).join(' and ');
      const c = card(grid, `${what} at ${t.layer} vs ${t.xTitle}`, `${t.spread?.over === 'runs' ? `Mean over ${t.spread.runs} training runs (each the mean over images) ± 1 SD across runs` : 'Mean over images ± 1 std across images'}, models in order of ${t.xTitle}.`, secondary === 1);
      retitleX(renderChart(c, trendSpec(t, theme), theme), t.xTitle);
    }
    if (payload.concentration) {
      const c = card(grid, 'Concentration per layer', `Mean SID outside the object box minus inside (Eq. 7); positive = more background than object discarded. ${payload.spread ? `${payload.spread[0].toUpperCase()}${payload.spread.slice(1)}` : 'Mean ± 1 std over images'}.`, secondary === 1);
      renderChart(c, concentrationSpec(series, 0, theme), theme);
    }
    requestAnimationFrame(() => {
      window.__reproDone = true;
    });
  } catch (e) {
    window.__reproError = String((e as Error)?.stack ?? e);
  }
};
