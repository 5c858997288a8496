/** The page header: model, status, run facts and settings. */
import { backendSummary, type Report } from '../../src/engine/report';
import { formatDuration } from '../../src/engine/duration';
import { button } from './controls';
import { el, fmtNum, isNum } from './dom';
import { layerOrder, missingShards, statusLabel } from './data';
import { shapeText } from './table';
import { profileLabel, profileOfSettings } from '../../src/engine/preprocessing/presets';

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
  // The preprocessing has its own chip (preprocessingChip); old reports without a profile keep the input chip.
  if (!s.preprocessing) {
    if (s.normalize && Array.isArray(s.normalize.mean)) add('input', `normalize ${s.normalize.mean.join(',')}/${(s.normalize.std ?? []).join(',')}`);
    else if (Array.isArray(s.inputRange)) add('input', `range ${s.inputRange.join(',')}`);
  }
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

/**
 * Schema 3: the preprocessing profile as a chip (its label, its source in the tooltip), with "Edit preprocessing…"
 * when the panel can ask the extension (`onEdit`; absent in the standalone HTML page and for old reports).
 */
function preprocessingChip(report: Report, onEdit?: () => void): HTMLElement | null {
  const s = (report.settings ?? {}) as Partial<Report['settings']>;
  const p = s.preprocessing;
  if (!p || typeof p !== 'object') return null;
  let label: string;
  try {
    label = profileLabel(profileOfSettings({ inputRange: s.inputRange ?? null, normalize: s.normalize ?? null, preprocessing: p }));
  } catch {
    label = String(p.preset ?? 'custom');
  }
  const detail = [`source: ${String(p.source ?? '—')}`, p.resize ? `resize: ${p.resize}` : '', p.channelOrder === 'bgr' ? 'channels: BGR' : ''].filter(Boolean).join(' · ');
  const chip = el('span', { class: 'id-chip id-preprocessing', title: detail }, el('b', null, 'preprocessing'), label);
  if (!onEdit) return chip;
  return el('span', { class: 'id-preprocessing-row' }, chip, button('Edit preprocessing…', 'Choose how this model\'s images are preprocessed (stored for the model; re-run to apply)', onEdit));
}

function fmtDate(iso: unknown): string {
  if (typeof iso !== 'string') return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const fmtDuration = formatDuration;

/** Layers taken over from an earlier report (resume, schema 3). */
function reusedCount(report: Report): number {
  return report.layers.filter((l) => l.reused === true).length;
}

export function renderHeader(report: Report, onExportJson: () => void, onEditPreprocessing?: () => void): HTMLElement {
  const total = layerOrder(report).length;
  const done = report.layers.length;
  const status = ['running', 'complete', 'failed', 'cancelled', 'partial'].includes(report.status) ? report.status : 'running';
  const missing = missingShards(report);
  const exportJson = button('Export JSON', 'Download the report as JSON', onExportJson);
  const fact = (k: string, v: string): HTMLElement => el('div', null, el('dt', null, k), el('dd', null, v));
  const header = el('header', { class: 'id-header' },
    el('div', { class: 'id-title-row' },
      el('h1', null, 'Information discarding'),
      el('span', { class: `id-badge ${status}`, title: statusLabel(report) }, report.status === 'running' ? `running · ${done}/${total}` : report.status === 'partial' ? `partial · ${done}/${total}` : status),
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
      fact('Layers', `${done} of ${total}${report.skippedLayers?.length ? `, ${report.skippedLayers.length} skipped` : ''}${reusedCount(report) ? `, ${reusedCount(report)} reused` : ''}`),
      fact('Time', fmtDuration(report.seconds)),
      fact('Created', fmtDate(report.createdAt)),
    ),
    el('div', { class: 'id-settings', title: 'Analysis settings' }, preprocessingChip(report, onEditPreprocessing), settingChips(report)),
  );
  if (report.status === 'running' && total > 0) {
    const bar = el('div');
    bar.style.width = `${Math.round((100 * done) / total)}%`;
    header.append(el('div', { class: 'id-progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': done }, bar));
  }
  if (report.status === 'partial') {
    const count = missing ? missing.count : 0;
    header.append(el('div', { class: 'id-banner partial', role: 'status' },
      el('strong', null, 'Partial report. '),
      el('span', null, missing && missing.missing.length > 0
        ? `Merged from ${count - missing.missing.length} of ${count} shards; missing: ${missing.missing.join(', ')}. ${done} of ${total} layers are complete: run the missing shards (--shard I/${count}) and merge again.`
        : `${done} of ${total} layers are complete: run the missing shards and merge again.`),
    ));
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
