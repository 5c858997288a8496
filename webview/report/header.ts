/** The page header: model, status, run facts and settings. */
import { backendSummary, type Report } from '../../src/engine/report';
import { button } from './controls';
import { el, fmtNum, isNum } from './dom';
import { layerOrder, statusLabel } from './data';
import { shapeText } from './table';

function settingChips(report: Report): HTMLElement[] {
  const s = (report.settings ?? {}) as Partial<Report['settings']>;
  const chips: [string, string][] = [];
  const add = (k: string, v: unknown): void => {
    if (v === undefined || v === null || v === '') return;
    chips.push([k, typeof v === 'number' ? fmtNum(v, 4).replace(/\.?0+$/, '') || '0' : String(v)]);
  };
  add('α', s.alpha);
  add('τ', s.tau);
  add('K', s.samples);
  add('max steps', s.maxSteps);
  add('lr', s.learningRate);
  add('σ max', s.sigmaMax);
  add('σ grid', isNum(s.sigmaGrid) ? `${s.sigmaGrid}×${s.sigmaGrid}` : 'per pixel');
  if (s.normalize && Array.isArray(s.normalize.mean)) add('input', `normalize ${s.normalize.mean.join(',')}/${(s.normalize.std ?? []).join(',')}`);
  else if (Array.isArray(s.inputRange)) add('input', `range ${s.inputRange.join(',')}`);
  add('seed', s.seed);
  // Schema 2: what was measured beyond SID, and the RU decoders.
  if (Array.isArray(s.metrics) && s.metrics.length) add('metrics', s.metrics.join(', '));
  if (s.preview === true) add('SID', 'first-order preview (approximation, not optimised)');
  if (s.warmStart === true) add('start', 'warm (from the first-order preview)');
  if (s.outputSoftmax === true) add('output', 'softmax probabilities');
  const d = s.decoder;
  if (d && typeof d === 'object') add('decoder', `${d.blocks} blocks × ${d.width} ch, ≤ ${d.maxEpochs} epochs`);
  return chips.map(([k, v]) => el('span', { class: 'id-chip' }, el('b', null, k), v));
}

function fmtDate(iso: unknown): string {
  if (typeof iso !== 'string') return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function fmtDuration(seconds: unknown): string {
  if (!isNum(seconds)) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds - m * 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function renderHeader(report: Report, onExportJson: () => void): HTMLElement {
  const total = layerOrder(report).length;
  const done = report.layers.length;
  const status = ['running', 'complete', 'failed', 'cancelled'].includes(report.status) ? report.status : 'running';
  const exportJson = button('Export JSON', 'Download the report as JSON', onExportJson);
  const fact = (k: string, v: string): HTMLElement => el('div', null, el('dt', null, k), el('dd', null, v));
  const header = el('header', { class: 'id-header' },
    el('div', { class: 'id-title-row' },
      el('h1', null, 'Information discarding'),
      el('span', { class: `id-badge ${status}`, title: statusLabel(report) }, report.status === 'running' ? `running · ${done}/${total}` : status),
      el('span', { class: 'id-spacer' }),
      exportJson,
    ),
    el('div', null, el('span', { class: 'id-muted' }, 'Model '), el('span', { class: 'id-model-path', title: report.model.sha256 ? `sha256 ${report.model.sha256}` : null }, report.model.path || '—')),
    el('dl', { class: 'id-meta' },
      fact('Format', report.model.format || '—'),
      fact('Backend', backendSummary(report).backend),
      ...(backendSummary(report).adapter ? [fact('GPU', backendSummary(report).adapter!)] : []),
      fact('Input', Array.isArray(report.model.inputShape) ? shapeText(report.model.inputShape) : '—'),
      fact('Images', String(report.images.length)),
      fact('Layers', `${done} of ${total}`),
      fact('Time', fmtDuration(report.seconds)),
      fact('Created', fmtDate(report.createdAt)),
    ),
    el('div', { class: 'id-settings', title: 'Analysis settings' }, settingChips(report)),
  );
  if (report.status === 'running' && total > 0) {
    const bar = el('div');
    bar.style.width = `${Math.round((100 * done) / total)}%`;
    header.append(el('div', { class: 'id-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done }, bar));
  }
  // Schema 3: how many finished layers hold values that are not measurements (each is marked in the table and charts).
  const flagged = report.layers.filter((l) => l.quality && typeof l.quality === 'object' && typeof l.quality.verdict === 'string' && l.quality.verdict !== 'ok');
  if (flagged.length) {
    const bounds = flagged.filter((l) => l.quality!.verdict === 'saturated').length;
    header.append(el('div', { class: 'id-banner quality', role: 'note' },
      el('strong', null, `⚠ ${flagged.length} of ${done} layer${done === 1 ? '' : 's'} flagged: `),
      el('span', null, `${bounds ? `${bounds} saturated (SID shown as a lower bound "≥"), ` : ''}`
        + `${flagged.length - bounds ? `${flagged.length - bounds} with the constraint unmet or unsettled; ` : ''}hover a ⚠ value for the reason.`),
    ));
  }
  if (report.status === 'failed' || report.status === 'cancelled') {
    header.append(el('div', { class: `id-banner ${report.status}`, role: 'alert' },
      el('strong', null, report.status === 'failed' ? 'Analysis failed: ' : 'Analysis cancelled. '),
      el('span', null, report.error ?? (report.status === 'cancelled' ? `${done} of ${total} layers finished.` : 'no reason recorded')),
    ));
  }
  return header;
}
