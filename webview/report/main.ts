/**
 * Report UI entry (bundled to dist/webview.js). Renders the report embedded in the page as
 * <script type="application/json" id="infodiscard-report"> (the CLI's --html file), and re-renders whenever a
 * {type: 'report', report} message arrives (the VS Code panel pushes partial reports while layers finish).
 * Messages to a VS Code host: {type: 'ready'} once listening; {type: 'save', filename, mime, encoding, data}
 * for exports (webviews cannot download).
 */
import type { Chart } from 'chart.js';
import type { Report } from '../../src/engine/report';
import { renderLayerChart } from './chart';
import { basename, findLayer, layerOrder, normalizeReport } from './data';
import { cardHead, download, el, replaceChildren, vscodeApi } from './dom';
import { renderHeader } from './header';
import { renderMaps, type MapsState } from './maps';
import { renderTable, tableCsv } from './table';
import { readTheme, watchTheme } from './theme';

interface State extends MapsState {
  report: Report | null;
}

const state: State = { report: null, layer: null, image: 0, opacity: 0.7 };
let chart: Chart<'line'> | null = null;

const app = el('main', { class: 'id-app' });
const headerSlot = el('div');
const chartCanvasBox = el('div', { class: 'id-chart-box' });
const chartCard = el('section', { class: 'id-card', 'aria-label': 'SID per layer' });
const mapsSlot = el('div');
const tableSlot = el('div');
const footer = el('footer', { class: 'id-footer' });

function restoreState(): void {
  const saved = vscodeApi()?.getState() as Partial<MapsState> | undefined;
  if (!saved || typeof saved !== 'object') return;
  if (typeof saved.layer === 'string') state.layer = saved.layer;
  if (typeof saved.image === 'number' && Number.isInteger(saved.image)) state.image = saved.image;
  if (typeof saved.opacity === 'number' && saved.opacity >= 0 && saved.opacity <= 1) state.opacity = saved.opacity;
}

function saveState(): void {
  vscodeApi()?.setState({ layer: state.layer, image: state.image, opacity: state.opacity });
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

function mount(): void {
  const exportPng = el('button', { class: 'id-button', type: 'button', title: 'Download the chart as PNG' }, 'Export PNG');
  exportPng.addEventListener('click', () => {
    if (!chart || !state.report) return;
    download(`${fileStem(state.report)}-layers.png`, 'image/png', chart.canvas.toDataURL('image/png'), 'dataUrl');
  });
  chartCard.append(
    ...cardHead('SID per layer', 'Mean pixel SID per layer, with error bars of ± 1 std across images. Higher = more of the input discarded.', exportPng),
    chartCanvasBox,
  );
  app.append(headerSlot, chartCard, mapsSlot, tableSlot, footer);
  document.body.append(app);
}

function renderChart(report: Report): void {
  chart?.destroy();
  const canvas = el('canvas', { role: 'img', 'aria-label': 'Line chart of mean pixel SID per layer' });
  replaceChildren(chartCanvasBox, canvas);
  chart = renderLayerChart(canvas, [{ label: modelLabel(report), report }], readTheme());
}

function renderAll(): void {
  const report = state.report;
  if (!report) {
    chartCard.hidden = true;
    replaceChildren(headerSlot, el('p', { class: 'id-empty' }, 'Waiting for a report…'));
    return;
  }
  chartCard.hidden = false;
  if (!findLayer(report, state.layer)) state.layer = report.layers[0]?.name ?? null;
  if (state.image >= report.images.length) state.image = 0;
  replaceChildren(headerSlot, renderHeader(report, () => download(`${fileStem(report)}.json`, 'application/json', JSON.stringify(report, null, 2))));
  renderChart(report);
  renderMapsSection();
  const exportCsv = el('button', { class: 'id-button', type: 'button', title: 'Download the table as CSV' }, 'Export CSV');
  exportCsv.addEventListener('click', () => download(`${fileStem(report)}-layers.csv`, 'text/csv', tableCsv(report)));
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
function setReport(value: unknown): void {
  const report = normalizeReport(value);
  if (!report) return;
  state.report = report;
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(renderAll);
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
  window.addEventListener('message', (event: MessageEvent) => {
    const data = event.data as { type?: unknown; report?: unknown } | null;
    if (data && typeof data === 'object' && data.type === 'report') setReport(data.report);
  });
  watchTheme(renderAll);
  vscodeApi()?.postMessage({ type: 'ready' });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
