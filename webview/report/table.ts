/** The per-layer table and its CSV form. Schema-2 columns (RU, decoder PSNR, concentration) appear only when present. */
import type { LayerQuality, LayerResult, Report } from '../../src/engine/report';
import { boundPrefix, isFlagged, qualityNote } from '../../src/engine/quality';
import { featureShapeText } from '../../src/engine/featureShape';
import { el, fmt, fmtNum, isNum } from './dom';
import { decoderPsnr, hasBaselines, hasConcentration, hasRu, layerOrder, poorDecoderText, skippedReason } from './data';

export interface LayerRow {
  index: number;
  name: string;
  state: 'done' | 'running' | 'pending' | 'skipped';
  /** Why the layer was skipped (state skipped). */
  reason?: string;
  /** Resume (schema 3): taken over from an earlier report, not computed by this run. */
  reused: boolean;
  kind: string;
  shape: string;
  mean: number | null;
  std: number | null;
  total: number | null;
  /** Constraint ratio, mean over images. */
  ratio: number | null;
  /** Images whose ratio is more than 5 % off alpha. */
  ratioOff: number;
  steps: number | null;
  stepsMin: number | null;
  stepsMax: number | null;
  /** Images that stopped at maxSteps rather than converging. */
  hitMaxSteps: number;
  saturated: number | null;
  seconds: number | null;
  images: number;
  /** Schema 2 (null when absent). */
  ruMean: number | null;
  ruStd: number | null;
  ruTotal: number | null;
  psnr: number | null;
  /** The poor-decoder warning, or null. */
  poorDecoder: string | null;
  concMean: number | null;
  concStd: number | null;
  concImages: number | null;
  gradNorm: number | null;
  gradCam: number | null;
  cam: number | null;
  /** Schema 3: the SID and RU quality roll-ups (null when absent: older reports, or no RU). */
  quality: LayerQuality | null;
  ruQuality: LayerQuality | null;
}

const numOrNull = (v: unknown): number | null => (isNum(v) ? v : null);

function mean(values: unknown[]): number | null {
  const v = values.filter(isNum);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/** "[h, w, c]", or "197 tokens × 768" for a token sequence (src/engine/featureShape.ts). */
export function shapeText(shape: unknown[]): string {
  return featureShapeText(shape);
}

export function layerRows(report: Report): LayerRow[] {
  const byName = new Map<string, LayerResult>(report.layers.map((l) => [l.name, l]));
  const alpha = report.settings?.alpha;
  let firstPending = true;
  return layerOrder(report).map((name, index): LayerRow => {
    const l = byName.get(name);
    if (!l) {
      const reason = skippedReason(report, name);
      const state = reason !== undefined ? 'skipped' : report.status === 'running' && firstPending ? 'running' : 'pending';
      if (state !== 'skipped') firstPending = false;
      return { index, name, state, ...(reason !== undefined ? { reason } : {}), reused: false, kind: '', shape: '', mean: null, std: null, total: null, ratio: null, ratioOff: 0, steps: null, stepsMin: null, stepsMax: null, hitMaxSteps: 0, saturated: null, seconds: null, images: 0,
        ruMean: null, ruStd: null, ruTotal: null, psnr: null, poorDecoder: null, concMean: null, concStd: null, concImages: null, gradNorm: null, gradCam: null, cam: null, quality: null, ruQuality: null };
    }
    const p = l.perImage;
    const steps = p.map((q) => q.steps).filter(isNum);
    const secs = p.map((q) => q.seconds).filter(isNum);
    return {
      index,
      name,
      state: 'done',
      reused: l.reused === true,
      kind: l.kind,
      shape: shapeText(l.outputShape),
      mean: isNum(l.sid.mean) ? l.sid.mean : null,
      std: isNum(l.sid.std) ? l.sid.std : null,
      total: isNum(l.sid.total) ? l.sid.total : null,
      ratio: mean(p.map((q) => q.constraintRatio)),
      ratioOff: isNum(alpha) && alpha > 0 ? p.filter((q) => isNum(q.constraintRatio) && Math.abs(q.constraintRatio / alpha - 1) > 0.05).length : 0,
      steps: mean(steps),
      stepsMin: steps.length ? Math.min(...steps) : null,
      stepsMax: steps.length ? Math.max(...steps) : null,
      hitMaxSteps: p.filter((q) => q.stopReason === 'maxSteps').length,
      saturated: mean(p.map((q) => q.saturated)),
      seconds: secs.length ? secs.reduce((a, b) => a + b, 0) : null,
      images: p.length,
      ruMean: numOrNull(l.ru?.mean),
      ruStd: numOrNull(l.ru?.std),
      ruTotal: numOrNull(l.ru?.total),
      psnr: decoderPsnr(l),
      poorDecoder: isNum(l.ru?.mean) ? poorDecoderText(l) : null,
      concMean: numOrNull(l.concentration?.mean),
      concStd: numOrNull(l.concentration?.std),
      concImages: numOrNull(l.concentration?.images),
      gradNorm: numOrNull(l.baselines?.gradNorm?.mean),
      gradCam: numOrNull(l.baselines?.gradCam?.mean),
      cam: numOrNull(l.baselines?.cam?.mean),
      quality: qualityOrNull(l.quality),
      ruQuality: qualityOrNull(l.ruQuality),
    };
  });
}

/** A roll-up from an untrusted report: kept only when it has a verdict string. */
function qualityOrNull(q: unknown): LayerQuality | null {
  return q && typeof q === 'object' && typeof (q as LayerQuality).verdict === 'string' ? (q as LayerQuality) : null;
}

/** The SID or RU "mean ± std" cell: "≥" before a bound, hatched with ⚠ and the reason as its tooltip when flagged. */
function valueCell(mean: number | null, std: number | null, q: LayerQuality | null, done: boolean, extraWarning: string | null = null): HTMLElement {
  const flagged = isFlagged(q);
  const title = [flagged ? qualityNote(q) : '', extraWarning ?? ''].filter((t) => t).join('\n');
  const cell = el('td', flagged || extraWarning ? { class: flagged ? 'warn flagged' : 'warn', title, 'data-quality': q?.verdict ?? null } : q ? { 'data-quality': q.verdict } : null,
    done && mean !== null ? `${boundPrefix(q)}${fmt(mean, 3)} ± ${fmt(std, 3)}` : '');
  if (flagged || extraWarning) cell.append(' ⚠');
  return cell;
}

export function renderTable(report: Report, selected: string | null, onSelect: (name: string) => void): HTMLElement {
  const alpha = report.settings?.alpha;
  const withRu = hasRu(report);
  const withConc = hasConcentration(report);
  const head = el('tr', null,
    el('th', { class: 'l' }, '#'),
    el('th', { class: 'l' }, 'Layer'),
    el('th', { class: 'l' }, 'Kind'),
    el('th', { class: 'l' }, 'Output shape'),
    el('th', { title: 'Mean pixel SID, nats per pixel: mean ± std over images' }, 'SID mean ± std'),
    withRu && el('th', { title: 'Mean pixel RU (reconstruction uncertainty), nats per pixel: mean ± std over images' }, 'RU mean ± std'),
    withRu && el('th', { title: 'Held-out PSNR of the layer\'s decoder; below 15 dB its RU is not trustworthy' }, 'Decoder PSNR (dB)'),
    withConc && el('th', { title: 'Mean SID outside the object minus inside (Eq. 7), nats per pixel: mean ± std over the images with a region' }, 'Concentration'),
    el('th', { title: 'Entropy of the whole input, nats (mean over images)' }, 'Total (nats)'),
    el('th', { title: `E||h(x')-f||² / Δf², mean over images; should be within 5 % of alpha${isNum(alpha) ? ` = ${alpha}` : ''}` }, `Constraint ratio${isNum(alpha) ? ` (α = ${alpha})` : ''}`),
    el('th', { title: 'Optimisation steps, mean over images' }, 'Steps'),
    el('th', { title: 'Pixels whose sigma reached sigmaMax, mean over images' }, 'Saturated'),
    el('th', { title: 'Wall-clock seconds, summed over images' }, 'Seconds'),
  );

  const body = el('tbody');
  for (const r of layerRows(report)) {
    const done = r.state === 'done';
    const tr = el('tr', { class: done ? (r.name === selected ? 'selected' : null) : 'pending', 'data-layer': r.index, 'data-reused': r.reused ? 'true' : null });
    const ratioCell = el('td', r.ratioOff ? { class: 'warn', title: `${r.ratioOff} of ${r.images} images more than 5 % off alpha` } : null, done ? fmt(r.ratio, 4) : '');
    if (r.ratioOff) ratioCell.append(' ⚠');
    const stepsCell = el('td', r.stepsMin !== null && r.stepsMin !== r.stepsMax ? { title: `${r.stepsMin}–${r.stepsMax} over images` } : null, done ? fmt(r.steps, 0) : '');
    if (r.hitMaxSteps) stepsCell.append(el('span', { class: 'tag', title: `${r.hitMaxSteps} of ${r.images} images stopped at maxSteps` }, 'max'));
    tr.append(
      el('td', { class: 'l' }, String(r.index + 1)),
      el('td', { class: 'l name', title: r.name }, r.name),
      r.state === 'skipped'
        ? el('td', { class: 'l skipped', title: r.reason ?? '' }, `skipped: ${r.reason ?? ''}`)
        : el('td', { class: 'l' }, done ? r.kind : r.state === 'running' ? 'running…' : 'pending'),
      el('td', { class: 'l' }, r.shape),
      done ? valueCell(r.mean, r.std, r.quality, done) : el('td', null, ''),
      ...schema2Cells(r, done, withRu, withConc),
      el('td', null, done ? fmtNum(r.total, 1) : ''),
      ratioCell,
      stepsCell,
      el('td', null, done ? fmt(r.saturated, r.saturated !== null && Number.isInteger(r.saturated) ? 0 : 1) : ''),
      secondsCell(r, done),
    );

    if (done) {
      tr.addEventListener('click', () => onSelect(r.name));
      tr.tabIndex = 0;
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onSelect(r.name);
        }
      });
    }
    body.append(tr);
  }
  return el('div', { class: 'id-table-wrap' }, el('table', { class: 'id-table' }, el('thead', null, head), body));
}

/** Seconds; a layer resumed from an earlier report is tagged "reused" (its seconds are that run's). */
function secondsCell(r: LayerRow, done: boolean): HTMLElement {
  const cell = el('td', null, done ? fmt(r.seconds, 1) : '');
  if (done && r.reused) cell.append(el('span', { class: 'tag reused', title: 'Taken over from the earlier report of this model (same settings and images), not computed again; the seconds are that run\'s' }, 'reused'));
  return cell;
}

/** The schema-2 cells of a row (RU, decoder PSNR, concentration), for the columns the report has. */
function schema2Cells(r: LayerRow, done: boolean, withRu: boolean, withConc: boolean): HTMLElement[] {
  const cells: HTMLElement[] = [];
  if (withRu) {
    const ruCell = done ? valueCell(r.ruMean, r.ruStd, r.ruQuality, done, r.poorDecoder) : el('td', null, '');
    cells.push(ruCell, el('td', r.poorDecoder ? { class: 'warn', title: r.poorDecoder } : null, done && r.psnr !== null ? fmt(r.psnr, 1) : ''));
  }
  if (withConc) {
    cells.push(el('td', r.concImages !== null ? { title: `over ${r.concImages} image${r.concImages === 1 ? '' : 's'} with a region` } : null,
      done && r.concMean !== null ? `${fmt(r.concMean, 3)} ± ${fmt(r.concStd, 3)}` : ''));
  }
  return cells;
}

/** One CSV field: quoted when needed, and spreadsheet formulas defused (a layer name is untrusted text). */
export function csvField(value: unknown): string {
  let s = value === null || value === undefined ? '' : typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function tableCsv(report: Report): string {
  const header = ['index', 'layer', 'status', 'kind', 'output_shape', 'sid_mean_nats_per_pixel', 'sid_std', 'sid_total_nats', 'constraint_ratio_mean', 'alpha', 'steps_mean', 'stopped_at_max_steps', 'saturated_mean', 'seconds', 'images'];
  // Schema-2 columns only when the report has them (a schema-1 report exports exactly as before).
  const withRu = hasRu(report);
  const withConc = hasConcentration(report);
  const withBaselines = hasBaselines(report);
  if (withRu) header.push('ru_mean_nats_per_pixel', 'ru_std', 'ru_total_nats', 'decoder_psnr_db');
  if (withConc) header.push('concentration_mean_nats_per_pixel', 'concentration_std', 'concentration_images');
  if (withBaselines) header.push('gradnorm_magnitude_mean', 'gradcam_magnitude_mean', 'cam_magnitude_mean');
  // Schema 3: the quality roll-ups, only when the report has them.
  const withQuality = report.layers.some((l) => !!l.quality);
  if (withQuality) header.push('sid_quality', 'sid_is_lower_bound', 'sid_quality_reason');
  const withRuQuality = withRu && report.layers.some((l) => !!l.ruQuality);
  if (withRuQuality) header.push('ru_quality', 'ru_is_lower_bound');
  const lines = [header.join(',')];
  for (const r of layerRows(report)) {
    const cells: unknown[] = [r.index + 1, r.name, r.state, r.kind, r.shape, r.mean, r.std, r.total, r.ratio, report.settings?.alpha, r.steps, r.hitMaxSteps, r.saturated, r.seconds, r.images];
    if (withRu) cells.push(r.ruMean, r.ruStd, r.ruTotal, r.psnr);
    if (withConc) cells.push(r.concMean, r.concStd, r.concImages);
    if (withBaselines) cells.push(r.gradNorm, r.gradCam, r.cam);
    if (withQuality) cells.push(r.quality?.verdict, r.quality ? boundPrefix(r.quality) === '≥' : null, r.quality?.reason);
    if (withRuQuality) cells.push(r.ruQuality?.verdict, r.ruQuality ? boundPrefix(r.ruQuality) === '≥' : null);
    lines.push(cells.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
