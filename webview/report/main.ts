/**
 * Report UI entry (bundled to dist/webview.js). Renders the report embedded in the page as
 * <script type="application/json" id="infodiscard-report"> (the CLI's --html file), and follows the VS Code
 * panel's messages (src/protocol.ts ToWebview): 'report' (re-sent as layers finish), 'compare' (several reports:
 * one chart series each; header, heatmaps and table for the selected one), 'selectLayer' (hover links) and
 * 'panelState' (kept in vscode.setState so the panel can be restored after a reload).
 * Messages to a VS Code host: {type: 'ready'} once listening; {type: 'save', filename, mime, encoding, data}
 * for exports (webviews cannot download).
 */
import type { Chart } from 'chart.js';
import type { Report } from '../../src/engine/report';
import type { PanelState, ToWebview, WebviewSavedState } from '../../src/protocol';
import { renderLayerChart, type ChartSeries } from './chart';
import { button, dropdown } from './controls';
import { basename, findLayer, layerOrder, normalizeReport } from './data';
import { cardHead, download, el, replaceChildren, vscodeApi } from './dom';
import { renderHeader } from './header';
import { renderMaps, type MapsState } from './maps';
import { renderTable, tableCsv } from './table';
import { readTheme, watchTheme } from './theme';

interface State extends MapsState {
  /** The report the header, heatmaps and table show (the selected series when comparing). */
  report: Report | null;
  /** Set when comparing: every report, one chart series each. */
  series: ChartSeries[] | null;
  seriesIndex: number;
  panel: PanelState | null;
  /** A layer asked for (hover link) before its report or layer has arrived. */
  wantedLayer: string | null;
}

const state: State = { report: null, series: null, seriesIndex: 0, panel: null, wantedLayer: null, layer: null, image: 0, opacity: 0.7 };
let chart: Chart<'line'> | null = null;

const app = el('main', { class: 'id-app' });
const headerSlot = el('div');
const chartCanvasBox = el('div', { class: 'id-chart-box' });
const chartCard = el('section', { class: 'id-card', 'aria-label': 'SID per layer' });
const mapsSlot = el('div');
const tableSlot = el('div');
const footer = el('footer', { class: 'id-footer' });

function restoreState(): void {
  const saved = vscodeApi()?.getState() as WebviewSavedState | undefined;
  if (!saved || typeof saved !== 'object') return;
  if (typeof saved.layer === 'string') state.layer = saved.layer;
  if (typeof saved.image === 'number' && Number.isInteger(saved.image)) state.image = saved.image;
  if (typeof saved.opacity === 'number' && saved.opacity >= 0 && saved.opacity <= 1) state.opacity = saved.opacity;
  if (typeof saved.seriesIndex === 'number' && Number.isInteger(saved.seriesIndex) && saved.seriesIndex >= 0) state.seriesIndex = saved.seriesIndex;
  if (saved.panel && typeof saved.panel === 'object') state.panel = saved.panel;
}

function saveState(): void {
  const saved: WebviewSavedState = { layer: state.layer, image: state.image, opacity: state.opacity, seriesIndex: state.seriesIndex };
  if (state.panel) saved.panel = state.panel;
  vscodeApi()?.setState(saved);
}

function fileStem(report: Report): string {
  const p = report.model.path.split(/[\\/]/).filter(Boolean);
  const name = p.length > 1 && /^model\.json$/i.test(p[p.length - 1]) ? p[p.length - 2] : basename(report.model.path).replace(/\.[^.]+$/, '');
  return `infodiscard-${(name || 'report').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60)}`;
}

/** Short label for the model, for chart legends. */
export function modelLabel(report: Report): string {
  const p = report.model.path.split(/[\\/]/).filter(Boolean);
  if (p.length > 1 && /^model\.json$/i.test(p[p.length - 1])) return p[p.length - 2];
  return p[p.length - 1] ?? 'model';
}

const chartHeadSlot = el('div');

function exportPngButton(): HTMLElement {
  return button('Export PNG', 'Download the chart as PNG', () => {
    if (!chart || !state.report) return;
    const stem = state.series ? 'infodiscard-compare' : fileStem(state.report);
    download(`${stem}-layers.png`, 'image/png', chart.canvas.toDataURL('image/png'), 'dataUrl');
  });
}

function mount(): void {
  chartCard.append(chartHeadSlot, chartCanvasBox);
  app.append(headerSlot, chartCard, mapsSlot, tableSlot, footer);
  document.body.append(app);
}

/** The chart card's heading: with several reports, also which one the sections below show. */
function renderChartHead(): void {
  const series = state.series;
  if (!series || series.length < 2) {
    replaceChildren(chartHeadSlot, ...cardHead('SID per layer', 'Mean pixel SID per layer, with error bars of ± 1 std across images. Higher = more of the input discarded.', exportPngButton()));
    return;
  }
  const picker = dropdown('Details for', series.map((s, i) => ({ value: String(i), label: s.label, selected: i === state.seriesIndex })),
    (value) => selectSeries(Number(value)));
  replaceChildren(chartHeadSlot,
    ...cardHead(`SID per layer, ${series.length} models`, 'One line per model: mean pixel SID per layer, ± 1 std across images. The header, heatmaps and table below show the model picked here.', exportPngButton()),
    el('div', { class: 'id-controls' }, el('label', null, 'Details for', picker)),
  );
}

function renderChart(report: Report): void {
  chart?.destroy();
  const canvas = el('canvas', { role: 'img', 'aria-label': state.series ? 'Line chart of mean pixel SID per layer, one line per model' : 'Line chart of mean pixel SID per layer' });
  replaceChildren(chartCanvasBox, canvas);
  const series = state.series ?? [{ label: modelLabel(report), report }];
  // For tests (the legend and points are drawn on the canvas): the series' labels and finished layers per series.
  canvas.setAttribute('data-series', JSON.stringify(series.map((s) => s.label)));
  canvas.setAttribute('data-points', series.map((s) => s.report.layers.filter((l) => Number.isFinite(l.sid?.mean)).length).join(','));
  chart = renderLayerChart(canvas, series, readTheme());
}

function selectSeries(index: number): void {
  if (!state.series || !state.series[index]) return;
  state.seriesIndex = index;
  state.report = state.series[index].report;
  saveState();
  renderAll();
}

function renderAll(): void {
  const report = state.report;
  if (!report) {
    chartCard.hidden = true;
    replaceChildren(headerSlot, el('p', { class: 'id-empty' }, 'Waiting for a report…'));
    return;
  }
  chartCard.hidden = false;
  if (state.wantedLayer && findLayer(report, state.wantedLayer)) {
    state.layer = state.wantedLayer;
    state.wantedLayer = null;
    saveState();
    requestAnimationFrame(() => mapsSlot.scrollIntoView({ block: 'start' }));
  }
  if (!findLayer(report, state.layer)) state.layer = report.layers[0]?.name ?? null;
  if (state.image >= report.images.length) state.image = 0;
  replaceChildren(headerSlot, renderHeader(report, () => download(`${fileStem(report)}.json`, 'application/json', JSON.stringify(report, null, 2))));
  renderChartHead();
  renderChart(report);
  renderMapsSection();
  const exportCsv = button('Export CSV', 'Download the table as CSV', () => download(`${fileStem(report)}-layers.csv`, 'text/csv', tableCsv(report)));
  replaceChildren(tableSlot, el('section', { class: 'id-card', 'aria-label': 'Layers' },
    ...cardHead('Layers', null, exportCsv),
    renderTable(report, state.layer, (name) => select({ layer: name })),
  ));
  replaceChildren(footer, `${report.tool?.name ?? 'infodiscard'} ${report.tool?.version ?? ''} · schema v${report.schemaVersion ?? '?'} · SID H = log σ + ½ log 2πe per pixel (Ma et al. 2019)`);
  app.setAttribute('data-rendered', report.status);
}

function renderMapsSection(): void {
  if (!state.report) return;
  replaceChildren(mapsSlot, renderMaps(state.report, state, readTheme(), { select }));
}

function select(change: Partial<MapsState>): void {
  const layerChanged = change.layer !== undefined && change.layer !== state.layer;
  Object.assign(state, change);
  saveState();
  // Keep keyboard focus on the control the user is working with across the re-render.
  const active = document.activeElement;
  const focusKey = active instanceof HTMLElement ? active.getAttribute('aria-label') : null;
  renderMapsSection();
  if (layerChanged && state.report) {
    tableSlot.querySelectorAll('tbody tr').forEach((tr) => tr.classList.remove('selected'));
    const idx = layerOrder(state.report).indexOf(state.layer ?? '');
    tableSlot.querySelector(`tbody tr[data-layer="${idx}"]`)?.classList.add('selected');
  }
  if (focusKey) {
    mapsSlot.querySelectorAll('[aria-label]').forEach((node) => {
      if (node.getAttribute('aria-label') === focusKey && node instanceof HTMLElement) node.focus();
    });
  }
}

let frame = 0;
function scheduleRender(): void {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(renderAll);
}

function setReport(value: unknown): void {
  const report = normalizeReport(value);
  if (!report) return;
  state.series = null;
  state.report = report;
  scheduleRender();
}

function setSeries(value: unknown): void {
  if (!Array.isArray(value)) return;
  const series: ChartSeries[] = [];
  for (const item of value.slice(0, 32)) {
    const report = normalizeReport((item as { report?: unknown } | null)?.report);
    if (!report) continue;
    const label = (item as { label?: unknown }).label;
    series.push({ label: typeof label === 'string' && label ? label : modelLabel(report), report });
  }
  if (series.length === 0) return;
  if (state.seriesIndex >= series.length) state.seriesIndex = 0;
  state.series = series;
  state.report = series[state.seriesIndex].report;
  scheduleRender();
}

/** Select a layer by name: in the shown report if it has it, else in another compared one; else once it arrives. */
function selectLayer(name: unknown): void {
  if (typeof name !== 'string') return;
  if (state.series && state.report && !findLayer(state.report, name)) {
    const other = state.series.findIndex((s) => findLayer(s.report, name));
    if (other >= 0) {
      state.seriesIndex = other;
      state.report = state.series[other].report;
    }
  }
  state.wantedLayer = name;
  saveState();
  scheduleRender();
}

function onMessage(event: MessageEvent): void {
  const data = event.data as Partial<Record<string, unknown>> | null;
  if (!data || typeof data !== 'object') return;
  switch (data.type as ToWebview['type']) {
    case 'report':
      setReport(data.report);
      break;
    case 'compare':
      setSeries(data.series);
      break;
    case 'selectLayer':
      selectLayer(data.layer);
      break;
    case 'panelState': {
      const panel = data.state as PanelState | undefined;
      if (panel && typeof panel === 'object' && Array.isArray(panel.sources)) {
        state.panel = panel;
        saveState();
      }
      break;
    }
  }
}

function readEmbedded(): unknown {
  const node = document.getElementById('infodiscard-report');
  if (!node?.textContent) return undefined;
  try {
    return JSON.parse(node.textContent);
  } catch (e) {
    console.warn('infodiscard: embedded report is not valid JSON', e);
    return undefined;
  }
}

function start(): void {
  restoreState();
  mount();
  const embedded = readEmbedded();
  if (embedded !== undefined) {
    state.report = normalizeReport(embedded);
  }
  renderAll();
  window.addEventListener('message', onMessage);
  watchTheme(renderAll);
  vscodeApi()?.postMessage({ type: 'ready' });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
