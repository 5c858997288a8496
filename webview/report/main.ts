/**
 * Report UI entry (bundled to dist/webview.js). Renders the report embedded in the page as
 * <script type="application/json" id="infodiscard-report"> (the CLI's --html file), and follows the VS Code
 * panel's messages (src/protocol.ts ToWebview): 'report' (re-sent as layers finish), 'compare' (several reports:
 * one chart series each; header, heatmaps and table for the selected one), 'selectLayer' (hover links) and
 * 'panelState' (kept in vscode.setState so the panel can be restored after a reload).
 * Messages to a VS Code host: {type: 'ready'} once listening; {type: 'save', filename, mime, encoding, data}
 * for exports (webviews cannot download); {type: 'setRegion', source, image, bbox} when the user draws or clears
 * an object box (schema-2 reports): concentration is recomputed here at once, the host persists it.
 *
 * 'compareEpochs' (Compare Checkpoints) is 'compare' plus a chart of SID (and RU) per layer against epoch.
 *
 * Charts: SID (and RU) per layer; concentration per layer and baseline magnitudes per layer when a report has them;
 * with checkpoints, SID per layer vs epoch (data-chart "epochs", also data-epochs: every checkpoint's x, JSON).
 * Each chart canvas carries data-chart, data-series (its line labels, JSON) and data-points (points per line) for
 * tests; the concentration chart also data-values (its lines' values, JSON).
 */
import type { Chart } from 'chart.js';
import type { Box } from '../../src/engine/concentration';
import type { Report } from '../../src/engine/report';
import type { CheckpointsView, FromWebview, PanelState, ToWebview, WebviewSavedState } from '../../src/protocol';
import { baselinesSpec, chartAxisLabels, chartHooks, chartWaitingText, concentrationSpec, groupSeries, layerAxis, renderChart as drawChart, sidRuSpec, type ChartSeries, type ChartSpec } from './chart';
import { button, dropdown } from './controls';
import { basename, findLayer, hasBaselines, hasConcentration, hasRu, layerOrder, normalizeReport } from './data';
import { cardHead, download, el, replaceChildren, vscodeApi } from './dom';
import { renderEpochChart, epochChartHooks, epochLineSpecs } from './epochChart';
import { epochChartData } from './epochData';
import { renderHeader } from './header';
import { renderMaps, type MapsHandlers, type MapsState } from './maps';
import { setRegion } from './regionEdit';
import { renderTable, tableCsv } from './table';
import { readTheme, watchTheme } from './theme';

interface State extends MapsState {
  /** The report the header, heatmaps and table show (the selected series when comparing). */
  report: Report | null;
  /** Its file, when the host said (needed to save object boxes). */
  source: string | null;
  /** Set when comparing: every report, one chart series each. */
  series: ChartSeries[] | null;
  seriesIndex: number;
  panel: PanelState | null;
  /** A layer asked for (hover link) before its report or layer has arrived. */
  wantedLayer: string | null;
  /** Set when comparing checkpoints: what the x axis is, every checkpoint's x, and the x of each of `series`. */
  checkpoints: { view: CheckpointsView; epochs: number[]; of: number[] } | null;
}

const state: State = { report: null, source: null, series: null, seriesIndex: 0, panel: null, wantedLayer: null, checkpoints: null, layer: null, image: 0, opacity: 0.7 };
let chart: Chart<'line'> | null = null;
let concentrationChart: Chart<'line'> | null = null;
let baselinesChart: Chart<'line'> | null = null;
let epochsChart: Chart<'line'> | null = null;

const app = el('main', { class: 'id-app' });
const headerSlot = el('div');
const chartCanvasBox = el('div', { class: 'id-chart-box' });
const chartCard = el('section', { class: 'id-card', 'aria-label': 'SID per layer' });
const epochsSlot = el('div');
const concentrationSlot = el('div');
const baselinesSlot = el('div');
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

function exportPngButton(which: () => Chart<'line'> | null = () => chart, suffix = 'layers'): HTMLElement {
  return button('Export PNG', 'Download the chart as PNG', () => {
    const c = which();
    if (!c || !state.report) return;
    const stem = state.checkpoints ? 'infodiscard-checkpoints' : state.series ? 'infodiscard-compare' : fileStem(state.report);
    download(`${stem}-${suffix}.png`, 'image/png', c.canvas.toDataURL('image/png'), 'dataUrl');
  });
}

function mount(): void {
  chartCard.append(chartHeadSlot, chartCanvasBox);
  app.append(headerSlot, epochsSlot, chartCard, concentrationSlot, baselinesSlot, mapsSlot, tableSlot, footer);
  document.body.append(app);
}

/** The series the charts show: every compared report, or the one report. */
function chartSeries(report: Report): ChartSeries[] {
  // Runs of one variant (seeds) are drawn as one series, mean ± SD across runs (chart.ts groupSeries).
  if (state.series && !state.checkpoints) return groupSeries(state.series)?.series ?? state.series;
  return state.series ?? [{ label: modelLabel(report), report, source: state.source ?? undefined }];
}

/** A chart canvas with its test hooks. */
function chartCanvas(name: string, spec: ChartSpec, ariaLabel: string): HTMLCanvasElement {
  const canvas = el('canvas', { role: 'img', 'aria-label': ariaLabel, 'data-chart': name });
  const hooks = chartHooks(spec);
  canvas.setAttribute('data-series', hooks.series);
  canvas.setAttribute('data-points', hooks.points);
  canvas.setAttribute('data-x-axis', spec.xAxis ?? 'names');
  canvas.setAttribute('data-axis-labels', JSON.stringify(chartAxisLabels(spec)));
  return canvas;
}

/** The chart card's heading: with several reports, also which one the sections below show. */
function renderChartHead(): void {
  const series = state.series;
  const withRu = (series ?? (state.report ? [{ report: state.report }] : [])).some((s) => hasRu(s.report));
  const ruHint = ' RU (dashed, triangles) is the reconstruction uncertainty, in the same nats per pixel. Hatched layers and hollow "!" points: the decoder reconstructs poorly (PSNR < 15 dB), so their RU is not trustworthy.';
  const title = withRu ? 'SID and RU per layer' : 'SID per layer';
  if (!series || series.length < 2) {
    replaceChildren(chartHeadSlot, ...cardHead(title, `Mean pixel SID per layer, with error bars of ± 1 std across images. Higher = more of the input discarded.${withRu ? ruHint : ''}`, exportPngButton()));
    return;
  }
  const picker = dropdown('Details for', series.map((s, i) => ({ value: String(i), label: s.label, selected: i === state.seriesIndex })),
    (value) => selectSeries(Number(value)));
  const grouped = state.checkpoints ? null : groupSeries(series);
  if (grouped) {
    const runs = `${grouped.series.length} models, ${series.length} runs`;
    replaceChildren(chartHeadSlot,
      ...cardHead(`${title}, ${runs}`, `One line per model; a model trained with several seeds is one line: the mean over its runs of the mean pixel SID, with error bars of ± 1 SD across runs (not across images). The header, heatmaps and table below show the run picked here.${withRu ? ruHint : ''}`, exportPngButton()),
      el('div', { class: 'id-controls' }, el('label', null, 'Details for', picker)),
      ...(grouped.statements.length ? [el('ul', { class: 'id-hint', 'data-run-spread': grouped.layer ?? '' }, ...grouped.statements.map((s) => el('li', null, s)))] : []),
    );
    return;
  }
  replaceChildren(chartHeadSlot,
    ...cardHead(`${title}, ${series.length} ${state.checkpoints ? 'checkpoints' : 'models'}`, `One line per ${state.checkpoints ? 'checkpoint' : 'model'}: mean pixel SID per layer, ± 1 std across images.${layerAxis(series).depth ? " The models' layer names differ (different architectures), so each model's layers are placed at their relative depth, 0 = its first analysed layer, 1 = its last; each line joins only its own model's layers." : ''} The header, heatmaps and table below show the ${state.checkpoints ? 'checkpoint' : 'model'} picked here.${withRu ? ruHint : ''}`, exportPngButton()),
    el('div', { class: 'id-controls' }, el('label', null, 'Details for', picker)),
  );
}

function renderChart(report: Report): void {
  chart?.destroy();
  chart = null;
  const theme = readTheme();
  const series = chartSeries(report);
  // Before the first layer has finished: a short waiting line, no empty axes.
  const waiting = chartWaitingText(series);
  if (waiting) {
    replaceChildren(chartCanvasBox, el('p', { class: 'id-empty id-chart-waiting', 'data-chart-waiting': '', role: 'status' }, waiting));
    renderConcentrationCard();
    renderBaselinesCard();
    return;
  }
  const spec = sidRuSpec(series, theme);
  const withRu = series.some((s) => hasRu(s.report));
  const what = withRu ? 'mean pixel SID and RU' : 'mean pixel SID';
  // For tests (the legend and points are drawn on the canvas): the lines' labels and finished layers per line.
  const canvas = chartCanvas('sid', spec, state.series ? `Line chart of ${what} per layer, one line per model` : `Line chart of ${what} per layer`);
  const poor = spec.lines.flatMap((l) => (l.warnings ?? []).map((w, j) => (w ? (l.names?.[j] ?? spec.labels[j]) : null))).filter((n): n is string => n !== null);
  if (poor.length) canvas.setAttribute('data-poor-decoder', JSON.stringify([...new Set(poor)]));
  replaceChildren(chartCanvasBox, canvas);
  chart = drawChart(canvas, spec, theme);
  renderConcentrationCard();
  renderBaselinesCard();
}

/** Compare Checkpoints: SID (and RU) per layer against epoch, for the layers every checkpoint has. */
function renderEpochsCard(): void {
  epochsChart?.destroy();
  epochsChart = null;
  const cps = state.checkpoints;
  const series = state.series;
  if (!cps || !series) {
    replaceChildren(epochsSlot);
    return;
  }
  const theme = readTheme();
  const inputs = series.map((s, i) => ({ epoch: cps.of[i], label: s.label, report: s.report, ...(s.seed !== undefined ? { seed: s.seed } : {}) })).filter((c) => Number.isFinite(c.epoch));
  const data = epochChartData(inputs);
  const hooks = epochChartHooks(epochLineSpecs(data, theme));
  const byOrder = cps.view.axis === 'order';
  const canvas = el('canvas', {
    role: 'img',
    'aria-label': `Line chart of ${data.withRu ? 'mean pixel SID and RU' : 'mean pixel SID'} per layer against ${byOrder ? 'checkpoint' : 'epoch'}, one line per layer`,
    'data-chart': 'epochs',
    'data-series': hooks.series,
    'data-points': hooks.points,
    'data-epochs': JSON.stringify(cps.epochs),
    'data-axis': cps.view.axis,
  });
  const names = new Map(inputs.map((c) => [c.epoch, c.label]));
  const done = inputs.length;
  const hint = [
    `One line per layer: mean pixel SID of each checkpoint against its ${byOrder ? 'place in name order (no checkpoint name carries an epoch number)' : 'epoch'}; hover for ± 1 std across images.`,
    (data.runs ?? 1) > 1 ? `Checkpoints of ${data.runs} training runs (seeds) share an epoch: each point is the mean over the runs, its error bar ± 1 SD across runs.` : '',
    data.withRu ? 'RU (dashed, triangles) is the reconstruction uncertainty of the same layer.' : '',
    done < cps.epochs.length ? `${done} of ${cps.epochs.length} checkpoints so far.` : '',
    data.omitted.length ? `Left out (not in every checkpoint): ${data.omitted.join(', ')}.` : '',
  ].filter(Boolean).join(' ');
  const title = `${data.withRu ? 'SID and RU' : 'SID'} per layer vs ${byOrder ? 'checkpoint' : 'epoch'}`;
  const box = el('div', { class: 'id-chart-box' }, canvas);
  replaceChildren(epochsSlot, el('section', { class: 'id-card', 'aria-label': title },
    ...cardHead(title, hint, exportPngButton(() => epochsChart, 'epochs')),
    box));
  epochsChart = renderEpochChart(canvas, data, { axis: cps.view.axis, epochs: cps.epochs, names }, theme);
}

/** Concentration per layer (when any shown report has a region or values); follows boxes as they are drawn. */
function renderConcentrationCard(): void {
  concentrationChart?.destroy();
  concentrationChart = null;
  const report = state.report;
  if (!report) return;
  const series = chartSeries(report);
  if (!series.some((s) => hasConcentration(s.report))) {
    replaceChildren(concentrationSlot);
    return;
  }
  const theme = readTheme();
  const spec = concentrationSpec(series, state.image, theme);
  const canvas = chartCanvas('concentration', spec, 'Line chart of the concentration of information discarding per layer');
  canvas.setAttribute('data-values', JSON.stringify(spec.lines.map((l) => l.data)));
  const box = el('div', { class: 'id-chart-box id-chart-box-small' }, canvas);
  replaceChildren(concentrationSlot, el('section', { class: 'id-card', 'aria-label': 'Concentration per layer' },
    ...cardHead('Concentration per layer', `Mean pixel SID outside the object region minus inside (paper Eq. 7), nats per pixel: positive = the layer discards more of the background than of the object. ${series.length > 1 ? "Mean ± 1 std over each model's images with a region." : `Mean ± 1 std over the images with a region, and image ${state.image + 1} on its own.`}`,
      exportPngButton(() => concentrationChart, 'concentration')),
    box));
  concentrationChart = drawChart(canvas, spec, theme);
}

/** Baseline map magnitudes per layer (log axis), when any shown report has them. */
function renderBaselinesCard(): void {
  baselinesChart?.destroy();
  baselinesChart = null;
  const report = state.report;
  if (!report) return;
  const series = chartSeries(report);
  if (!series.some((s) => hasBaselines(s.report))) {
    replaceChildren(baselinesSlot);
    return;
  }
  const theme = readTheme();
  const spec = baselinesSpec(series, theme);
  const canvas = chartCanvas('baselines', spec, 'Line chart of baseline map magnitudes per layer, logarithmic axis');
  canvas.setAttribute('data-scale', 'logarithmic');
  const box = el('div', { class: 'id-chart-box id-chart-box-small' }, canvas);
  replaceChildren(baselinesSlot, el('section', { class: 'id-card', 'aria-label': 'Baseline magnitudes per layer' },
    ...cardHead('Baseline magnitudes per layer', 'Mean of the gradient-norm, Grad-CAM and CAM maps per layer, ± 1 std across images, on a log axis: they have no fixed units and span decades. Unlike SID and RU they change when weights are rescaled without changing what the network computes (paper Fig. 1), so compare their shapes across layers rather than their levels.',
      exportPngButton(() => baselinesChart, 'baselines')),
    box));
  baselinesChart = drawChart(canvas, spec, theme);
}

function selectSeries(index: number): void {
  if (!state.series || !state.series[index]) return;
  state.seriesIndex = index;
  state.report = state.series[index].report;
  state.source = state.series[index].source ?? null;
  saveState();
  renderAll();
}

function renderAll(): void {
  const report = state.report;
  if (!report) {
    chartCard.hidden = true;
    epochsChart?.destroy();
    epochsChart = null;
    replaceChildren(epochsSlot);
    replaceChildren(concentrationSlot);
    replaceChildren(baselinesSlot);
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
  const host = vscodeApi();
  const editSource = state.source ?? undefined;
  // "Edit preprocessing…": only inside VS Code (the extension asks for the model's profile again).
  const onEdit = host ? () => host.postMessage({ type: 'editPreprocessing', ...(editSource ? { source: editSource } : {}) } satisfies FromWebview) : undefined;
  replaceChildren(headerSlot, renderHeader(report, () => download(`${fileStem(report)}.json`, 'application/json', JSON.stringify(report, null, 2)), onEdit));
  renderChartHead();
  renderEpochsCard();
  renderChart(report);
  renderMapsSection();
  renderTableSection();
  replaceChildren(footer, `${report.tool?.name ?? 'infodiscard'} ${report.tool?.version ?? ''} · schema v${report.schemaVersion ?? '?'} · SID H = log σ + ½ log 2πe per pixel${hasRu(report) ? ' · RU Ĥ = ½ log E[(x − x̂′)²] + ½ log 2πe' : ''} (Ma et al. 2019)`);
  app.setAttribute('data-rendered', report.status);
}

function renderTableSection(): void {
  const report = state.report;
  if (!report) return;
  const exportCsv = button('Export CSV', 'Download the table as CSV', () => download(`${fileStem(report)}-layers.csv`, 'text/csv', tableCsv(report)));
  replaceChildren(tableSlot, el('section', { class: 'id-card', 'aria-label': 'Layers' },
    ...cardHead('Layers', null, exportCsv),
    renderTable(report, state.layer, (name) => select({ layer: name })),
  ));
}

/** Box drawing: in the VS Code panel, for a report whose file the host named. */
function mapsHandlers(): MapsHandlers {
  const host = vscodeApi();
  const source = state.source;
  if (!host || !source) return { select };
  return {
    select,
    region: {
      preview: () => renderConcentrationCard(),
      commit: (image: number, bbox: Box | null) => {
        const report = state.report;
        if (!report) return;
        if (bbox === null) setRegion(report, image, null);
        const message: FromWebview = { type: 'setRegion', source, image, bbox: bbox ? [bbox[0], bbox[1], bbox[2], bbox[3]] : null };
        host.postMessage(message);
        // The report holds the new region already: redraw what shows it, keeping focus on the map.
        const focused = document.activeElement instanceof HTMLElement && mapsSlot.contains(document.activeElement) ? document.activeElement.getAttribute('data-map') : null;
        renderConcentrationCard();
        renderMapsSection();
        renderTableSection();
        if (focused) (mapsSlot.querySelector(`canvas[data-map="${focused}"]`) as HTMLElement | null)?.focus();
      },
    },
  };
}

function renderMapsSection(): void {
  if (!state.report) return;
  replaceChildren(mapsSlot, renderMaps(state.report, state, readTheme(), mapsHandlers()));
}

function select(change: Partial<MapsState>): void {
  const layerChanged = change.layer !== undefined && change.layer !== state.layer;
  const imageChanged = change.image !== undefined && change.image !== state.image;
  Object.assign(state, change);
  saveState();
  // Keep keyboard focus on the control the user is working with across the re-render.
  const active = document.activeElement;
  const focusKey = active instanceof HTMLElement ? active.getAttribute('aria-label') : null;
  renderMapsSection();
  // The concentration chart shows the selected image on its own.
  if (imageChanged && concentrationChart) renderConcentrationCard();
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

function setReport(value: unknown, source: unknown): void {
  const report = normalizeReport(value);
  if (!report) return;
  state.series = null;
  state.checkpoints = null;
  state.report = report;
  state.source = typeof source === 'string' && source ? source : null;
  scheduleRender();
}

/** Parsed 'compare' series; `epochs` collects each kept item's epoch ('compareEpochs'). */
function parseSeries(value: unknown, max: number, epochs?: number[]): ChartSeries[] {
  if (!Array.isArray(value)) return [];
  const series: ChartSeries[] = [];
  for (const item of value.slice(0, max)) {
    const report = normalizeReport((item as { report?: unknown } | null)?.report);
    if (!report) continue;
    const label = (item as { label?: unknown }).label;
    const source = (item as { source?: unknown }).source;
    const group = (item as { group?: unknown }).group;
    const seed = (item as { seed?: unknown }).seed;
    series.push({
      label: typeof label === 'string' && label ? label : modelLabel(report), report, ...(typeof source === 'string' && source ? { source } : {}),
      ...(typeof group === 'string' && group ? { group } : {}), ...(typeof seed === 'number' && Number.isInteger(seed) ? { seed } : {}),
    });
    const epoch = (item as { epoch?: unknown }).epoch;
    epochs?.push(typeof epoch === 'number' && Number.isFinite(epoch) ? epoch : NaN);
  }
  return series;
}

function setSeries(value: unknown): void {
  const series = parseSeries(value, 32);
  if (series.length === 0) return;
  state.checkpoints = null;
  showSeries(series);
}

/** Compare Checkpoints: the series (one per checkpoint analysed so far) and the epoch chart's axis. */
function setEpochs(data: Partial<Record<string, unknown>>): void {
  const view = data.view as Partial<CheckpointsView> | undefined;
  if (!view || typeof view !== 'object' || (view.axis !== 'epoch' && view.axis !== 'order')) return;
  const of: number[] = [];
  const series = parseSeries(data.series, 512, of);
  if (series.length === 0) return;
  const epochs = (Array.isArray(data.epochs) ? data.epochs : of).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).slice(0, 512);
  state.checkpoints = { view: { folder: String(view.folder ?? ''), axis: view.axis }, epochs, of };
  showSeries(series);
}

function showSeries(series: ChartSeries[]): void {
  if (state.seriesIndex >= series.length) state.seriesIndex = 0;
  state.series = series;
  state.report = series[state.seriesIndex].report;
  state.source = series[state.seriesIndex].source ?? null;
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
      state.source = state.series[other].source ?? null;
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
      setReport(data.report, data.source);
      break;
    case 'compare':
      setSeries(data.series);
      break;
    case 'compareEpochs':
      setEpochs(data);
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
