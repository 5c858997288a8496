/**
 * Names for reports of one model that differ only in their settings: each report is named by the settings in
 * which the model's reports differ ("α 1.5 · K 16 · σ-grid 16"), never by a hash. Pure (no vscode), shared by the
 * reports tree and the panel titles.
 */
import type { AnalysisSettings } from '../../engine/report';

/** What naming needs of a report (a ReportSummary has it; so does a whole Report, through reportFacts). */
export interface ReportFacts {
  settings: Partial<AnalysisSettings>;
  modelSha: string;
  /** Image files the report analysed. */
  images: number;
  /** Layers asked for. */
  requestedLayers: number;
  createdAt: string;
}

const n = (v: unknown): string => (typeof v === 'number' && Number.isFinite(v) ? String(+v.toPrecision(4)) : '?');

function rangeText(r: unknown): string {
  return Array.isArray(r) && r.length === 2 ? `input ${n(r[0])}–${n(r[1])}` : 'input default';
}

function normalizeText(v: unknown): string {
  const o = v as { mean?: unknown; std?: unknown } | null | undefined;
  if (!o || !Array.isArray(o.mean) || !Array.isArray(o.std)) return 'no mean/std';
  return `mean ${o.mean.map(n).join('/')} std ${o.std.map(n).join('/')}`;
}

function searchText(s: Partial<AnalysisSettings>): string {
  return s.preview ? 'first-order preview' : s.warmStart ? 'warm start' : 'optimised';
}

function metricsText(s: Partial<AnalysisSettings>): string {
  const m = Array.isArray(s.metrics) && s.metrics.length ? s.metrics : ['sid'];
  return m.map((x) => (x === 'sid' ? 'SID' : x === 'ru' ? 'RU' : x === 'concentration' ? 'concentration' : x === 'baselines' ? 'baselines' : String(x))).join('+');
}

function decoderText(s: Partial<AnalysisSettings>): string {
  const d = s.decoder;
  return d && typeof d === 'object' ? `decoder ${n(d.blocks)} blocks` : 'no decoder';
}

/**
 * One aspect that may tell reports apart: how it reads on one report. Order = the order in a name (the paper's
 * SID settings first, the rest after).
 */
const ASPECTS: { key: string; text(f: ReportFacts): string }[] = [
  { key: 'alpha', text: (f) => `α ${n(f.settings.alpha)}` },
  { key: 'samples', text: (f) => `K ${n(f.settings.samples)}` },
  { key: 'sigmaGrid', text: (f) => (f.settings.sigmaGrid ? `σ-grid ${n(f.settings.sigmaGrid)}` : 'σ per pixel') },
  { key: 'tau', text: (f) => `τ ${n(f.settings.tau)}` },
  { key: 'sigmaMax', text: (f) => `σ max ${n(f.settings.sigmaMax)}` },
  { key: 'maxSteps', text: (f) => `≤ ${n(f.settings.maxSteps)} steps` },
  { key: 'minSteps', text: (f) => (f.settings.minSteps === undefined ? 'default min steps' : `≥ ${n(f.settings.minSteps)} steps`) },
  { key: 'learningRate', text: (f) => `lr ${n(f.settings.learningRate)}` },
  { key: 'seed', text: (f) => `seed ${n(f.settings.seed)}` },
  { key: 'search', text: (f) => searchText(f.settings) },
  { key: 'preset', text: (f) => (f.settings.preprocessing?.preset ? `preprocessing ${f.settings.preprocessing.preset}` : 'no profile') },
  { key: 'inputRange', text: (f) => rangeText(f.settings.inputRange) },
  { key: 'normalize', text: (f) => normalizeText(f.settings.normalize) },
  { key: 'channelOrder', text: (f) => (f.settings.preprocessing?.channelOrder ?? 'rgb').toUpperCase() },
  { key: 'metrics', text: (f) => metricsText(f.settings) },
  { key: 'decoder', text: (f) => decoderText(f.settings) },
  { key: 'backend', text: (f) => String(f.settings.backend ?? '?') },
  { key: 'images', text: (f) => `${f.images} image${f.images === 1 ? '' : 's'}` },
  { key: 'layers', text: (f) => `${f.requestedLayers} layer${f.requestedLayers === 1 ? '' : 's'}` },
];

/** "2026-12-06 21:48" in local time, '' for a bad date. */
export function shortDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (v: number): string => String(v).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * For reports of ONE model: the name of each, made of the aspects in which these reports differ, in ASPECTS order.
 * Reports of different model versions (weights changed) add "this model version" / "earlier version" (relative to
 * the newest report). Where two reports still read the same, their date tells them apart. A lone report: [''].
 */
export function differingNames(reports: ReportFacts[]): string[] {
  if (reports.length < 2) return reports.map(() => '');
  const differing = ASPECTS.filter((a) => new Set(reports.map((r) => a.text(r))).size > 1);
  const newest = [...reports].sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
  const versions = new Set(reports.map((r) => r.modelSha)).size > 1;
  const names = reports.map((r) => {
    const parts = differing.map((a) => a.text(r));
    if (versions) parts.push(r.modelSha === newest.modelSha ? 'this model version' : 'earlier model version');
    return parts.join(' · ');
  });
  // Still alike (same settings, e.g. images changed on disk): the date tells them apart.
  return names.map((name, i) => {
    if (names.filter((x) => x === name).length < 2) return name;
    const date = shortDate(reports[i].createdAt) || `#${i + 1}`;
    return name ? `${name} · ${date}` : date;
  });
}

/** The aspects in which `a` and `b` differ (names as in differingNames), for "model · what differs" titles. */
export function differenceBetween(a: ReportFacts, b: ReportFacts): string[] {
  return ASPECTS.filter((x) => x.text(a) !== x.text(b)).map((x) => x.text(a));
}
