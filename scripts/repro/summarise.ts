/**
 * The pure half of `npm run repro`: read the families manifest, aggregate the CLI's reports per family and layer,
 * decide per finding whether the paper's claim reproduces (explicit rules, below), and write docs/reproduction.md.
 * No file system, no processes, no browser: main.ts does the I/O; test/repro.test.ts tests this file.
 *
 * Conventions (src/engine/sid.ts, docs/report-schema.md): pixel SID H_i = log σ_i + ½·log(2πe), nats per pixel.
 * Higher SID = the layer tolerates more input noise = it DISCARDS MORE of the input, which is what the paper
 * calls "higher information discarding". RU is the same for the reconstruction; concentration (Eq. 7) is mean
 * SID outside the object minus inside (positive = more background than object discarded).
 *
 * Statistics. Every model of a family is analysed on the same images, so two models are compared image by image:
 * d_k = value_B(image k) − value_A(image k), Δ = mean d, SE = sd(d)/√n, and the difference is *clear* when
 * |Δ| > t·SE with t the two-sided 5 % critical value of Student's t with n − 1 degrees of freedom (a paired
 * t-test). The "image spread" quoted next to it is the std over images of the value itself.
 */
import type { LayerResult, Report } from '../../src/engine/report';
import { meanStd, POOR_DECODER_PSNR } from '../../src/engine/report';
import { acrossRuns, describeAcross, tQuantile, type AcrossRuns } from '../../src/engine/stats/acrossRuns';

// ---------------------------------------------------------------------------------------------------------------
// Manifest (src/engine/families.ts, shared with the extension's example comparisons)

import { FINDINGS, isNum, parseManifest, type Finding, type FamilySpec, type Manifest, type ModelSpec } from '../../src/engine/families';

export { FINDINGS, parseManifest, type Finding, type FamilySpec, type Manifest, type ModelSpec };

/**
 * RU is expensive here (a decoder per layer and model, then its own noise optimisation: about 3 CPU-minutes per
 * layer and model for 8 images), so by default it runs at the focus layer only; the manifest may list `ruLayers`.
 */
export function defaultRuLayers(spec: FamilySpec): string[] {
  if (spec.ruLayers?.length) return spec.ruLayers.filter((l) => spec.layers.includes(l));
  return [spec.focusLayer && spec.layers.includes(spec.focusLayer) ? spec.focusLayer : spec.layers[spec.layers.length - 1]];
}

/** The images RU runs on: every other one of the sorted analysis images, at most `max` (all when there are few). */
export function pickRuImages(files: string[], max = 4): string[] {
  const sorted = [...files].sort();
  if (sorted.length <= max) return sorted;
  const step = sorted.length / max;
  return Array.from({ length: max }, (_, i) => sorted[Math.floor(i * step)]);
}

/** A file-name-safe slug for a model name. */
export function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').toLowerCase() || 'model';
}

// ---------------------------------------------------------------------------------------------------------------
// Aggregation

/** One metric of one layer of one model: per-image values (keyed by image file name) and their summary. */
export interface Stat {
  mean: number;
  /** Sample std over images (0 for one image). */
  std: number;
  min: number;
  max: number;
  n: number;
  perImage: Record<string, number>;
}

export function statOf(perImage: Record<string, number>): Stat | null {
  const values = Object.values(perImage).filter(isNum);
  const n = values.length;
  if (n === 0) return null;
  const { mean, std } = meanStd(values);
  return { mean, std, min: Math.min(...values), max: Math.max(...values), n, perImage };
}

export interface LayerAgg {
  sid: Stat | null;
  ru: Stat | null;
  /** Held-out PSNR of the layer's RU decoder, dB (null without RU). */
  ruPsnr: number | null;
  concentration: Stat | null;
  /** Per-image optimisations that stopped at maxSteps instead of converging (SID). */
  maxSteps: number;
  optimisations: number;
  /**
   * Schema 3: per-image values left out of `sid` / `ru` because their quality verdict says they are not a
   * measurement (LEFT_OUT_VERDICTS). Absent = none (and in older reports, which carry no verdicts).
   */
  flagged?: { sid: number; ru: number };
}

/**
 * Verdicts whose values are left out of the statistics and the verdicts: the constraint does not hold (ratio-off),
 * or the value is only a lower bound (saturated, at-bound). A not-converged value still meets the constraint (its
 * level is calibrated) and stays in; those are counted by the step-limit line of each finding.
 */
export const LEFT_OUT_VERDICTS: readonly string[] = ['ratio-off', 'saturated', 'at-bound'];
const leftOut = (q: unknown): boolean =>
  !!q && typeof q === 'object' && LEFT_OUT_VERDICTS.includes(String((q as { verdict?: unknown }).verdict));

export type LayerAggs = Record<string, LayerAgg>;

function imageKey(report: Report, index: number): string {
  const p = report.images?.[index]?.path ?? `image-${index}`;
  const parts = String(p).split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? String(index);
}

/** Per layer of `layers` (those the report has): SID, RU and concentration over the report's images. */
export function aggregateReport(report: Report, layers: string[]): LayerAggs {
  const out: LayerAggs = {};
  const byName = new Map<string, LayerResult>(report.layers.map((l) => [l.name, l]));
  for (const name of layers) {
    const layer = byName.get(name);
    if (!layer) continue;
    const sid: Record<string, number> = {};
    const ru: Record<string, number> = {};
    const conc: Record<string, number> = {};
    let maxSteps = 0;
    const flagged = { sid: 0, ru: 0 };
    for (const p of layer.perImage ?? []) {
      const key = imageKey(report, p.image);
      if (isNum(p.sidMean)) {
        if (leftOut(p.quality)) flagged.sid++;
        else sid[key] = p.sidMean;
      }
      if (isNum(p.ruMean)) {
        if (leftOut(p.ru?.quality)) flagged.ru++;
        else ru[key] = p.ruMean;
      }
      if (isNum(p.concentration)) conc[key] = p.concentration;
      if (p.stopReason === 'maxSteps') maxSteps++;
    }
    const psnr = layer.ru?.decoder?.psnr;
    out[name] = {
      sid: statOf(sid),
      ru: statOf(ru),
      ruPsnr: isNum(psnr) ? psnr : null,
      concentration: statOf(conc),
      maxSteps,
      optimisations: (layer.perImage ?? []).length,
      ...(flagged.sid || flagged.ru ? { flagged } : {}),
    };
  }
  return out;
}

/** What one model of a family gave: its aggregates, or why there are none. */
export interface ModelResult {
  spec: ModelSpec;
  layers: LayerAggs;
  error?: string;
  /** A problem that leaves the model usable (its RU run failed). */
  warning?: string;
  /** The analysis's wall time (the report's `seconds`). */
  seconds?: number;
  /** The report came from an earlier run (--reuse, or a family not selected this time). */
  reused?: boolean;
}

/** Put the RU (and its decoder PSNR) of a separate RU run into the main run's aggregates. */
export function mergeRu(main: LayerAggs, ru: LayerAggs): LayerAggs {
  const out: LayerAggs = { ...main };
  for (const [name, agg] of Object.entries(ru)) {
    if (!agg.ru) continue;
    const base = out[name] ?? { sid: agg.sid, ru: null, ruPsnr: null, concentration: null, maxSteps: agg.maxSteps, optimisations: agg.optimisations };
    out[name] = { ...base, ru: agg.ru, ruPsnr: agg.ruPsnr };
    if (agg.flagged?.ru) out[name].flagged = { sid: base.flagged?.sid ?? 0, ru: agg.flagged.ru };
  }
  return out;
}

export type Metric = 'sid' | 'ru' | 'concentration';
export const METRIC_LABEL: Record<Metric, string> = { sid: 'SID', ru: 'RU', concentration: 'concentration' };

function metricStat(r: ModelResult, layer: string, metric: Metric): Stat | null {
  return r.layers[layer]?.[metric] ?? null;
}

// ---------------------------------------------------------------------------------------------------------------
// Paired comparison

/** Two-sided 5 % critical value of Student's t with df degrees of freedom (acrossRuns' quantile); ∞ below 1. */
export function tCritical(df: number): number {
  return df >= 1 ? tQuantile(0.975, Math.floor(df)) : Infinity;
}

export interface Diff {
  /** Mean over shared images of b − a. */
  mean: number;
  /** Standard error of that mean (sd of the differences / √n). */
  se: number;
  n: number;
  /** Critical t for n − 1 degrees of freedom. */
  tCrit: number;
  /** |mean| > tCrit·se (never with fewer than 2 shared images). */
  clear: boolean;
}

/** b − a, image by image over the images both have. Null when they share none. */
export function pairedDiff(a: Stat | null, b: Stat | null): Diff | null {
  if (!a || !b) return null;
  const d: number[] = [];
  for (const [key, va] of Object.entries(a.perImage)) {
    const vb = b.perImage[key];
    if (isNum(va) && isNum(vb)) d.push(vb - va);
  }
  const n = d.length;
  if (n === 0) return null;
  const { mean, std } = meanStd(d);
  const se = n > 1 ? std / Math.sqrt(n) : NaN;
  const tCrit = tCritical(n - 1);
  const clear = n > 1 && (se === 0 ? Math.abs(mean) > 0 : Math.abs(mean) > tCrit * se);
  return { mean, se, n, tCrit, clear };
}

// ---------------------------------------------------------------------------------------------------------------
// Claims and verdict rules

export type Level = 'reproduces' | 'partly' | 'does-not-reproduce' | 'not-measured';
export const LEVEL_LABEL: Record<Level, string> = {
  reproduces: 'Reproduces',
  partly: 'Partly reproduces',
  'does-not-reproduce': 'Does not reproduce',
  'not-measured': 'Not measured',
};

/**
 * How a claim is tested:
 *  - trend: models ordered by the treatment (depth, compression); the claimed direction between the first and the
 *    last model, with no clear step against it in between;
 *  - baseline: each treated model against the baseline (damage, distillation);
 *  - similar: each other model within a margin of the baseline (task; compression's RU and concentration);
 *  - ib: over training epochs, in the high layers, the information-bottleneck shape: SID first falls, then rises.
 */
export type CheckKind = 'trend' | 'baseline' | 'similar' | 'ib';

export interface Check {
  metric: Metric;
  kind: CheckKind;
  /** trend / baseline: +1 = the claim says the value goes up with the treatment, −1 = down. */
  direction?: 1 | -1;
  /** What the claim says, in words, e.g. "higher in deeper networks". */
  says: string;
}

export interface ClaimSpec {
  /** The paper's wording (Sec. 4), quoted briefly. */
  quote: string;
  figure: string;
  heading: string;
  checks: Check[];
}

export const CLAIMS: Record<Finding, ClaimSpec> = {
  depth: {
    heading: 'Deeper networks discard more',
    quote: 'A deep DNN usually had higher SID, RU, and concentration values than a shallow DNN.',
    figure: 'Sec. 4, "Comparisons between different DNNs for various tasks", Fig. 3',
    checks: [
      { metric: 'sid', kind: 'trend', direction: 1, says: 'higher in deeper networks' },
      { metric: 'ru', kind: 'trend', direction: 1, says: 'higher in deeper networks' },
      { metric: 'concentration', kind: 'trend', direction: 1, says: 'higher in deeper networks' },
    ],
  },
  damage: {
    heading: 'Architectural damage boosts discarding',
    quote: 'the inserted block significantly boost[s] the information discarding.',
    figure: 'Sec. 4, "Diagnosis of architectural flaws", Fig. 4(a)',
    checks: [
      { metric: 'sid', kind: 'baseline', direction: 1, says: 'higher in the damaged networks' },
      { metric: 'ru', kind: 'baseline', direction: 1, says: 'higher in the damaged networks' },
    ],
  },
  compression: {
    heading: 'Compression lowers SID, not RU or concentration',
    quote: 'network compression decreased the SID of features […] Meanwhile, network compression did not significantly affect the reconstruction capacity and the concentration of intermediate-layer features.',
    figure: 'Sec. 4, "Diagnosis of network compression", Fig. 4(b)',
    checks: [
      { metric: 'sid', kind: 'trend', direction: -1, says: 'lower in more compressed networks' },
      { metric: 'ru', kind: 'similar', says: 'unchanged by compression' },
      { metric: 'concentration', kind: 'similar', says: 'unchanged by compression' },
    ],
  },
  distillation: {
    heading: 'Distilled students discard less',
    quote: 'AlexNets learned using knowledge distillation had lower information discarding than the ordinarily learned AlexNet.',
    figure: 'Sec. 4, "Analysis of knowledge distillation", Fig. 5(a)',
    checks: [
      { metric: 'sid', kind: 'baseline', direction: -1, says: 'lower in the distilled students' },
      { metric: 'ru', kind: 'baseline', direction: -1, says: 'lower in the distilled students' },
    ],
  },
  epochs: {
    heading: 'Discarding over training epochs follows the information bottleneck',
    quote: 'Information discarding in high layers satisfied the information-bottleneck theory.',
    figure: 'Sec. 4, "Analysis of information discarding after different epochs during the learning process", Fig. 5(b)',
    checks: [{ metric: 'sid', kind: 'ib', says: 'in high layers, first falls (fitting) then rises (compression) over the epochs' }],
  },
  task: {
    heading: 'Classification and reconstruction discard alike',
    quote: 'image classification and image reconstruction had similar SID values.',
    figure: 'Sec. 4, "Comparisons between different DNNs for various tasks", Fig. 3 (left, middle)',
    checks: [{ metric: 'sid', kind: 'similar', says: 'similar for classification and reconstruction' }],
  },
};

/** The written-out rules, for the document (kept next to the code that applies them). */
export const RULES_MD = [
  `- **Clear difference.** Two models are compared image by image (same images): Δ = mean over images of (B − A), SE = sd/√n; the difference is *clear* when |Δ| > t₀.₀₂₅,ₙ₋₁ · SE (two-sided paired t-test at 5 %). Fewer than 2 shared images: never clear.`,
  `- **trend** (depth: up; compression: SID down). Models ordered by the treatment (depth: x ascending; compression: from the uncompressed model — role baseline/original, else the most parameters — to the most compressed — fewest parameters, else largest x). A layer *agrees* when the first→last difference is clear in the claimed direction and no step between neighbours is clearly against it; it *disagrees* when the first→last difference is clearly against the claim.`,
  `- **baseline** (damage: up; distillation: down). The baseline is the model whose role is baseline/original/classifier/reference/scratch/plain/undamaged/uncompressed/no-kd (else the smallest x); teachers (role teacher) are left out. Every other model is compared with it, image by image: *agrees* / *disagrees* = clear difference in / against the claimed direction. Distillation counts every layer; damage counts the focus layer and the layers after it (the paper: the inserted block raises the discarding of the layers after it; the manifest's focus layer lies downstream of every insertion), the earlier layers are shown but not counted.`,
  `- **similar** (task: SID; compression: RU and concentration). Margin m = ¼ of the baseline model's range of the metric across the family's layers (at least 0.02 nats). A layer is *similar* when the 95 % interval Δ ± t·SE lies inside ±m, *different* when the difference is clear and |Δ| > m, else undecided. For compression each compressed model is compared with the uncompressed one.`,
  `- **ib** (epochs). In the high layers (the upper half of the family's layers), with the checkpoints ordered by epoch and m the one with the lowest mean SID: a *fall* is a clear decrease from the first checkpoint to m, a *rise* a clear increase from m to the last checkpoint (none when m is the first or the last). The information-bottleneck shape (fitting, then compression) is fall then rise; a rise alone is the compression phase only.`,
  `- **Verdict from the layer counts.** Directional and similarity checks: **Reproduces** when at least half of the compared (model, layer) pairs agree and none disagrees; **Partly reproduces** when more agree than disagree otherwise; **Does not reproduce** when none agrees or at least as many disagree. ib: **Reproduces** when at least half of the high layers show fall-then-rise; **Partly reproduces** when any high layer shows a rise (or fall-then-rise); else **Does not reproduce**. RU comparisons involving a decoder with a held-out PSNR below ${POOR_DECODER_PSNR} dB are left out (that RU would measure the decoder more than the layer). **Not measured** when the metric is missing.`,
].join('\n');

const BASELINE_ROLE = /^(baseline|original|classifier|reference|ref|scratch|plain|undamaged|uncompressed|dense|unpruned|no[-_ ]?(kd|distill\w*)|without[-_ ]?(kd|distill\w*)|student[-_ ]?(scratch|baseline|plain))$/i;
const TEACHER_ROLE = /teacher/i;

/** The models of a family that compare (teachers are shown, never compared). */
export function comparedModels(family: FamilySpec, results: ModelResult[]): ModelResult[] {
  return results.filter((r) => !TEACHER_ROLE.test(r.spec.role ?? ''));
}

/** The baseline model of a family: by role, else the smallest x (first of equals). */
export function pickBaseline(family: FamilySpec, results: ModelResult[]): ModelResult | null {
  const cands = comparedModels(family, results);
  const byRole = cands.find((r) => BASELINE_ROLE.test((r.spec.role ?? '').trim()));
  if (byRole) return byRole;
  let best: ModelResult | null = null;
  for (const r of cands) if (!best || r.spec.x < best.spec.x) best = r;
  return best;
}

/** Models in treatment order (first = least treated): see RULES_MD, trend. */
export function treatmentOrder(family: FamilySpec, results: ModelResult[]): ModelResult[] {
  const cands = comparedModels(family, results);
  if (family.finding !== 'compression') return [...cands].sort((a, b) => a.spec.x - b.spec.x);
  const base = cands.find((r) => BASELINE_ROLE.test((r.spec.role ?? '').trim()));
  const params = cands.map((r) => r.spec.params);
  const useParams = params.every(isNum) && new Set(params).size === params.length;
  const rest = cands.filter((r) => r !== base).sort((a, b) => (useParams ? (b.spec.params as number) - (a.spec.params as number) : a.spec.x - b.spec.x));
  return base ? [base, ...rest] : rest;
}

export type LayerOutcome = 'agrees' | 'disagrees' | 'neutral' | 'missing';

/** One tested (model pair, layer): for the document's per-layer table. */
export interface LayerTest {
  layer: string;
  /** "ResNet-8 → ResNet-20" etc. */
  comparison: string;
  diff: Diff | null;
  outcome: LayerOutcome;
  /** Short text: "clear rise", "within ±0.05", "fall then rise" … */
  result: string;
}

export interface Verdict {
  metric: Metric;
  check: Check;
  level: Level;
  /** One line: "Reproduces: …". */
  text: string;
  tests: LayerTest[];
}

function fmt(v: number | null | undefined, digits = 3): string {
  if (!isNum(v)) return '—';
  let s = v.toFixed(digits);
  if (/^-0(\.0*)?$/.test(s)) s = s.slice(1);
  return s.replace(/^-/, '−');
}
function signed(v: number | null | undefined, digits = 3): string {
  if (!isNum(v)) return '—';
  return v > 0 ? `+${fmt(v, digits)}` : fmt(v, digits);
}
function num(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

/** Layers of the family usable for this metric (RU: decoder good enough in every model compared). */
function poorRu(results: ModelResult[], layer: string): boolean {
  return results.some((r) => {
    const psnr = r.layers[layer]?.ruPsnr;
    return isNum(psnr) && psnr < POOR_DECODER_PSNR;
  });
}

function countLevel(agree: number, disagree: number, total: number): Level {
  if (total === 0) return 'not-measured';
  if (agree * 2 >= total && disagree === 0 && agree > 0) return 'reproduces';
  if (agree > disagree) return 'partly';
  return 'does-not-reproduce';
}

/** The focus layer: the family's, else its last layer that has data for the metric. */
export function focusLayer(family: FamilySpec, results: ModelResult[], metric: Metric = 'sid'): string {
  if (family.focusLayer && family.layers.includes(family.focusLayer)) return family.focusLayer;
  for (let i = family.layers.length - 1; i >= 0; i--) {
    if (results.some((r) => metricStat(r, family.layers[i], metric))) return family.layers[i];
  }
  return family.layers[family.layers.length - 1];
}

function spreadText(stats: (Stat | null)[]): string {
  const s = stats.filter((x): x is Stat => !!x);
  if (!s.length) return '';
  const pooled = Math.sqrt(s.reduce((a, b) => a + b.std ** 2, 0) / s.length);
  return `image spread ±${fmt(pooled)}`;
}

function trendCheck(family: FamilySpec, results: ModelResult[], check: Check): Verdict {
  const order = treatmentOrder(family, results).filter((r) => !r.error);
  const dir = check.direction ?? 1;
  const tests: LayerTest[] = [];
  const name = METRIC_LABEL[check.metric];
  for (const layer of family.layers) {
    const models = order.filter((r) => metricStat(r, layer, check.metric));
    if (models.length < 2 || (check.metric === 'ru' && poorRu(models, layer))) {
      tests.push({ layer, comparison: '—', diff: null, outcome: 'missing', result: models.length < 2 ? 'fewer than 2 models measured' : `RU decoder PSNR < ${POOR_DECODER_PSNR} dB` });
      continue;
    }
    const first = models[0];
    const last = models[models.length - 1];
    const diff = pairedDiff(metricStat(first, layer, check.metric), metricStat(last, layer, check.metric));
    const against: string[] = [];
    for (let i = 1; i < models.length; i++) {
      const step = pairedDiff(metricStat(models[i - 1], layer, check.metric), metricStat(models[i], layer, check.metric));
      if (step && step.clear && Math.sign(step.mean) === -dir) against.push(`${models[i - 1].spec.name} → ${models[i].spec.name}`);
    }
    let outcome: LayerOutcome = 'neutral';
    let result = 'no clear difference';
    if (diff && diff.clear) {
      if (Math.sign(diff.mean) === dir) {
        outcome = against.length ? 'neutral' : 'agrees';
        result = against.length ? `clear ${dir > 0 ? 'rise' : 'fall'} overall, but clearly against at ${against.join(', ')}` : `clear ${dir > 0 ? 'rise' : 'fall'}`;
      } else {
        outcome = 'disagrees';
        result = `clear ${dir > 0 ? 'fall' : 'rise'} (against the claim)`;
      }
    }
    tests.push({ layer, comparison: `${first.spec.name} → ${last.spec.name}`, diff, outcome, result });
  }
  const measured = tests.filter((t) => t.outcome !== 'missing');
  const agree = measured.filter((t) => t.outcome === 'agrees').length;
  const disagree = measured.filter((t) => t.outcome === 'disagrees').length;
  const level = countLevel(agree, disagree, measured.length);
  if (level === 'not-measured') return { metric: check.metric, check, level, tests, text: `${LEVEL_LABEL[level]}: no ${name} values for two or more models.` };
  const focus = focusLayer(family, order, check.metric);
  const fModels = order.filter((r) => metricStat(r, focus, check.metric));
  const ft = tests.find((t) => t.layer === focus);
  const seq = fModels.length >= 2
    ? ` At ${focus}, ${name} over ${family.xLabel} ${fModels.map((r) => num(r.spec.x)).join(' → ')}: ${fModels.map((r) => fmt(metricStat(r, focus, check.metric)?.mean)).join(' → ')}${ft?.diff ? ` (Δ ${signed(ft.diff.mean)} ± ${fmt(ft.diff.se)} SE, paired over ${ft.diff.n} images; ${spreadText(fModels.map((r) => metricStat(r, focus, check.metric)))})` : ''}.`
    : '';
  const body = `${name} ${check.says} at ${agree} of ${measured.length} layers (clear paired difference in the claimed direction)${disagree ? `, against it at ${disagree}` : ''}.`;
  return { metric: check.metric, check, level, tests, text: `${LEVEL_LABEL[level]}: ${body}${seq}` };
}

/**
 * The layers a baseline comparison counts. Damage: the paper's inserted block raises the discarding of the layers
 * after it, so only the manifest's focus layer (chosen downstream of every insertion) and the layers after it count;
 * without a focusLayer, every layer. Distillation: every layer.
 */
export function damageLayers(family: FamilySpec): string[] {
  if (family.finding !== 'damage' || !family.focusLayer || !family.layers.includes(family.focusLayer)) return family.layers;
  return family.layers.slice(family.layers.indexOf(family.focusLayer));
}

function baselineCheck(family: FamilySpec, results: ModelResult[], check: Check): Verdict {
  const ok = results.filter((r) => !r.error);
  const base = pickBaseline(family, ok);
  const dir = check.direction ?? 1;
  const name = METRIC_LABEL[check.metric];
  const treated = comparedModels(family, ok).filter((r) => r !== base);
  const tests: LayerTest[] = [];
  const counted = damageLayers(family);
  if (base) {
    for (const t of treated) {
      for (const layer of family.layers) {
        const a = metricStat(base, layer, check.metric);
        const b = metricStat(t, layer, check.metric);
        const comparison = `${base.spec.name} → ${t.spec.name}`;
        if (!a || !b || (check.metric === 'ru' && poorRu([base, t], layer))) {
          tests.push({ layer, comparison, diff: null, outcome: 'missing', result: !a || !b ? 'not measured' : `RU decoder PSNR < ${POOR_DECODER_PSNR} dB` });
          continue;
        }
        const diff = pairedDiff(a, b);
        let outcome: LayerOutcome = 'neutral';
        let result = 'no clear difference';
        if (diff?.clear) {
          outcome = Math.sign(diff.mean) === dir ? 'agrees' : 'disagrees';
          result = `clearly ${diff.mean > 0 ? 'higher' : 'lower'}${outcome === 'disagrees' ? ' (against the claim)' : ''}`;
        }
        if (!counted.includes(layer)) {
          outcome = 'missing';
          result = `${result}; not counted (before the focus layer: may lie upstream of the inserted block)`;
        }
        tests.push({ layer, comparison, diff, outcome, result });
      }
    }
  }
  const measured = tests.filter((t) => t.outcome !== 'missing');
  const agree = measured.filter((t) => t.outcome === 'agrees').length;
  const disagree = measured.filter((t) => t.outcome === 'disagrees').length;
  const level = countLevel(agree, disagree, measured.length);
  if (level === 'not-measured' || !base) return { metric: check.metric, check, level: 'not-measured', tests, text: `${LEVEL_LABEL['not-measured']}: no ${name} values for a baseline and a treated model.` };
  const focus = focusLayer(family, ok, check.metric);
  const focusTests = tests.filter((t) => t.layer === focus && t.diff);
  const seq = focusTests.length
    ? ` At ${focus}: ${base.spec.name} ${fmt(metricStat(base, focus, check.metric)?.mean)}; ${focusTests.map((t) => {
      const m = treated.find((r) => t.comparison.endsWith(`→ ${r.spec.name}`));
      return `${m?.spec.name ?? '?'} ${fmt(m ? metricStat(m, focus, check.metric)?.mean : null)} (Δ ${signed(t.diff?.mean)} ± ${fmt(t.diff?.se)} SE)`;
    }).join('; ')}; ${spreadText([base, ...treated].map((r) => metricStat(r, focus, check.metric)))}.`
    : '';
  const body = `${name} ${check.says} than in ${base.spec.name} at ${agree} of ${measured.length} (model, layer) pairs${disagree ? `, the opposite at ${disagree}` : ''}.`;
  return { metric: check.metric, check, level, tests, text: `${LEVEL_LABEL[level]}: ${body}${seq}` };
}

/** Margin for "similar": ¼ of the baseline's range of layer means over the family's layers, at least 0.02 nats. */
export function similarityMargin(base: ModelResult, layers: string[], metric: Metric): number {
  const means = layers.map((l) => metricStat(base, l, metric)?.mean).filter(isNum);
  const range = means.length ? Math.max(...means) - Math.min(...means) : 0;
  return Math.max(0.25 * range, 0.02);
}

function similarCheck(family: FamilySpec, results: ModelResult[], check: Check): Verdict {
  const ok = results.filter((r) => !r.error);
  const name = METRIC_LABEL[check.metric];
  const order = family.finding === 'compression' ? treatmentOrder(family, ok) : null;
  const base = order ? order[0] ?? null : pickBaseline(family, ok);
  const others = (order ?? comparedModels(family, ok)).filter((r) => r !== base);
  const tests: LayerTest[] = [];
  const margin = base ? similarityMargin(base, family.layers, check.metric) : NaN;
  if (base) {
    for (const o of others) {
      for (const layer of family.layers) {
        const a = metricStat(base, layer, check.metric);
        const b = metricStat(o, layer, check.metric);
        const comparison = `${base.spec.name} → ${o.spec.name}`;
        if (!a || !b || (check.metric === 'ru' && poorRu([base, o], layer))) {
          tests.push({ layer, comparison, diff: null, outcome: 'missing', result: !a || !b ? 'not measured' : `RU decoder PSNR < ${POOR_DECODER_PSNR} dB` });
          continue;
        }
        const diff = pairedDiff(a, b);
        let outcome: LayerOutcome = 'neutral';
        let result = `undecided (margin ±${fmt(margin)})`;
        if (diff && diff.n > 1) {
          const half = diff.tCrit * diff.se;
          if (Math.abs(diff.mean) + half <= margin) {
            outcome = 'agrees';
            result = `similar (95 % interval inside ±${fmt(margin)})`;
          } else if (diff.clear && Math.abs(diff.mean) > margin) {
            outcome = 'disagrees';
            result = `different (clearly ${diff.mean > 0 ? 'higher' : 'lower'}, beyond ±${fmt(margin)})`;
          }
        }
        tests.push({ layer, comparison, diff, outcome, result });
      }
    }
  }
  const measured = tests.filter((t) => t.outcome !== 'missing');
  const agree = measured.filter((t) => t.outcome === 'agrees').length;
  const disagree = measured.filter((t) => t.outcome === 'disagrees').length;
  const level = base ? countLevel(agree, disagree, measured.length) : 'not-measured';
  if (level === 'not-measured' || !base) return { metric: check.metric, check, level: 'not-measured', tests, text: `${LEVEL_LABEL['not-measured']}: no ${name} values for two models to compare.` };
  const focus = focusLayer(family, ok, check.metric);
  const ft = tests.filter((t) => t.layer === focus && t.diff);
  const seq = ft.length ? ` At ${focus}: ${base.spec.name} ${fmt(metricStat(base, focus, check.metric)?.mean)}; ${ft.map((t) => `${t.comparison.split(' → ')[1]} Δ ${signed(t.diff?.mean)} ± ${fmt(t.diff?.se)} SE`).join('; ')}.` : '';
  const body = `${name} ${check.says}: similar to ${base.spec.name} (within ±${fmt(margin)} nats, ¼ of its range across layers) at ${agree} of ${measured.length} (model, layer) pairs${disagree ? `, clearly different at ${disagree}` : ''}.`;
  return { metric: check.metric, check, level, tests, text: `${LEVEL_LABEL[level]}: ${body}${seq}` };
}

/** The upper half of a family's layers (at least one): the paper's "high layers". */
export function highLayers(layers: string[]): string[] {
  return layers.slice(Math.floor(layers.length / 2));
}

function ibCheck(family: FamilySpec, results: ModelResult[], check: Check): Verdict {
  const order = comparedModels(family, results.filter((r) => !r.error)).sort((a, b) => a.spec.x - b.spec.x);
  const name = METRIC_LABEL[check.metric];
  const tests: LayerTest[] = [];
  for (const layer of highLayers(family.layers)) {
    const models = order.filter((r) => metricStat(r, layer, check.metric));
    if (models.length < 2) {
      tests.push({ layer, comparison: '—', diff: null, outcome: 'missing', result: 'fewer than 2 checkpoints measured' });
      continue;
    }
    const means = models.map((r) => metricStat(r, layer, check.metric)!.mean);
    let m = 0;
    for (let i = 1; i < means.length; i++) if (means[i] < means[m]) m = i;
    const first = models[0];
    const last = models[models.length - 1];
    const fall = m > 0 ? pairedDiff(metricStat(first, layer, check.metric), metricStat(models[m], layer, check.metric)) : null;
    const rise = m < models.length - 1 ? pairedDiff(metricStat(models[m], layer, check.metric), metricStat(last, layer, check.metric)) : null;
    const fell = !!fall?.clear && fall.mean < 0;
    const rose = !!rise?.clear && rise.mean > 0;
    const overall = pairedDiff(metricStat(first, layer, check.metric), metricStat(last, layer, check.metric));
    let outcome: LayerOutcome = 'neutral';
    let result: string;
    if (fell && rose) {
      outcome = 'agrees';
      result = `fall then rise (minimum at ${family.xLabel} ${num(models[m].spec.x)}: ${signed(fall!.mean)}, then ${signed(rise!.mean)})`;
    } else if (rose) {
      result = `rise only (compression phase; ${m === 0 ? 'minimum at the first checkpoint' : 'no clear fall before it'}: ${signed(rise!.mean)})`;
    } else if (fell) {
      result = `fall only (fitting phase, no clear rise after ${family.xLabel} ${num(models[m].spec.x)}: ${signed(fall!.mean)})`;
    } else {
      result = 'no clear fall or rise';
    }
    tests.push({ layer, comparison: `${first.spec.name} → ${last.spec.name}`, diff: overall, outcome, result });
  }
  const measured = tests.filter((t) => t.outcome !== 'missing');
  if (!measured.length) return { metric: check.metric, check, level: 'not-measured', tests, text: `${LEVEL_LABEL['not-measured']}: fewer than two checkpoints with ${name} values.` };
  const both = measured.filter((t) => t.outcome === 'agrees').length;
  const rises = measured.filter((t) => t.result.startsWith('rise only')).length;
  const level: Level = both * 2 >= measured.length && both > 0 ? 'reproduces' : both + rises > 0 ? 'partly' : 'does-not-reproduce';
  const focus = focusLayer(family, order, check.metric);
  const fModels = order.filter((r) => metricStat(r, focus, check.metric));
  const seq = fModels.length >= 2
    ? ` At ${focus}, ${name} over ${family.xLabel} ${fModels.map((r) => num(r.spec.x)).join(' → ')}: ${fModels.map((r) => fmt(metricStat(r, focus, check.metric)?.mean)).join(' → ')} (${spreadText(fModels.map((r) => metricStat(r, focus, check.metric)))}).`
    : '';
  const body = `in the high layers (${highLayers(family.layers).join(', ')}), ${name} falls then rises at ${both} of ${measured.length}${rises ? `, only rises (compression phase alone) at ${rises}` : ''}.`;
  return { metric: check.metric, check, level, tests, text: `${LEVEL_LABEL[level]}: ${body}${seq}` };
}

/** Every check of the family's finding. Checks on metrics no model measured are skipped unless the claim names them. */
export function familyVerdicts(family: FamilySpec, results: ModelResult[]): Verdict[] {
  const claim = CLAIMS[family.finding];
  const verdicts: Verdict[] = [];
  for (const check of claim.checks) {
    const any = results.some((r) => family.layers.some((l) => metricStat(r, l, check.metric)));
    if (!any) {
      // The paper's claim names this metric for depth/compression: say it was not measured; else leave it out.
      if (check.metric === 'sid' || family.finding === 'depth' || family.finding === 'compression') {
        verdicts.push({ metric: check.metric, check, level: 'not-measured', tests: [], text: `${LEVEL_LABEL['not-measured']}: ${METRIC_LABEL[check.metric]} was not measured for this family.` });
      }
      continue;
    }
    const v = check.kind === 'trend' ? trendCheck(family, results, check)
      : check.kind === 'baseline' ? baselineCheck(family, results, check)
        : check.kind === 'similar' ? similarCheck(family, results, check)
          : ibCheck(family, results, check);
    if (v.level === 'not-measured' && v.tests.some((t) => t.outcome === 'missing' && /PSNR/.test(t.result))) {
      v.text = `${LEVEL_LABEL['not-measured']}: ${METRIC_LABEL[check.metric]} was measured, but every comparison involves a decoder below ${POOR_DECODER_PSNR} dB held-out PSNR (⚠ in the table), so those values say more about the decoder than about the layer.`;
    }
    verdicts.push(v);
  }
  return verdicts;
}

// ---------------------------------------------------------------------------------------------------------------
// Across training runs (npm run repro -- --seeds N; src/engine/stats/acrossRuns.ts)

/** One training run (seed) of a family: its models' results, matched across seeds by model name. */
export interface SeedRun {
  seed: number;
  models: ModelResult[];
}

/** One tested (model pair, layer) across runs. */
export interface AcrossTest {
  layer: string;
  comparison: string;
  across: AcrossRuns | null;
  outcome: LayerOutcome;
  result: string;
}

export interface AcrossVerdict {
  metric: Metric;
  check: Check;
  level: Level;
  text: string;
  tests: AcrossTest[];
  /** Runs that had the metric (the most any test used). */
  nRuns: number;
}

export const ACROSS_RULES_MD = [
  `- **Across runs** (\`--seeds N\`, N > 1). Every model was trained N times (seeds 1..N: another training subset, initialisation and data order; within a seed all variants share them), and each run analysed on the same images. Per run, the effect of a comparison is the mean over images of the paired per-image difference (B − A); across runs, a **paired t over runs** on those N effects (the seeds pair the variants) gives the effect, its 95 % interval (Student's t quantile, N − 1 df) and the run-to-run SD; a DerSimonian–Laird random-effects estimate combining the within-run SEs with the between-run variance τ² is shown beside it. A comparison *agrees* only when its interval excludes zero in the claimed direction, *disagrees* when it excludes zero against it; for *similar* claims, the interval must lie inside the margin. The same per-finding rules (trend, baseline, similar, ib; the same counting into Reproduces / Partly / Does not reproduce) then apply to these across-run comparisons. The single-run tables (seed 1) are kept below each family as the secondary view.`,
].join('\n');

/** Models a and b as one run has them (null when either is missing or failed there). */
function pairIn(r: SeedRun, a: ModelResult, b: ModelResult): [ModelResult, ModelResult] | null {
  const ma = r.models.find((m) => m.spec.name === a.spec.name && !m.error);
  const mb = r.models.find((m) => m.spec.name === b.spec.name && !m.error);
  return ma && mb ? [ma, mb] : null;
}

function runsOf(runs: SeedRun[], a: ModelResult, b: ModelResult, layer: string, metric: Metric): { a?: Record<string, number>; b?: Record<string, number>; seed: number }[] {
  return runs.flatMap((r) => {
    const pair = pairIn(r, a, b);
    if (!pair) return [];
    if (metric === 'ru' && poorRu(pair, layer)) return [];
    const [ma, mb] = pair;
    const sa = metricStat(ma, layer, metric);
    const sb = metricStat(mb, layer, metric);
    return sa && sb ? [{ a: sa.perImage, b: sb.perImage, seed: r.seed }] : [];
  });
}

function acrossPair(runs: SeedRun[], a: ModelResult, b: ModelResult, layer: string, metric: Metric): AcrossRuns | null {
  const data = runsOf(runs, a, b, layer, metric);
  return data.length ? acrossRuns(data, true) : null;
}

/** A comparison's result text where it has no interval: says when RU decoders below the PSNR bar left runs out. */
function shortOfRuns(runs: SeedRun[], a: ModelResult, b: ModelResult, layer: string, metric: Metric, result: string): string {
  if (metric !== 'ru') return result;
  const poor = runs.filter((r) => {
    const pair = pairIn(r, a, b);
    return !!pair && poorRu(pair, layer);
  }).length;
  return poor ? `RU decoder PSNR < ${POOR_DECODER_PSNR} dB in ${poor} of ${runs.length} runs` : result;
}

/** directional(), with the reason a comparison has no interval. */
function directionalOf(runs: SeedRun[], a: ModelResult, b: ModelResult, layer: string, metric: Metric, dir: 1 | -1, up: string, down: string): { across: AcrossRuns | null; outcome: LayerOutcome; result: string } {
  const across = acrossPair(runs, a, b, layer, metric);
  const d = directional(across, dir, up, down);
  return { across, outcome: d.outcome, result: hasInterval(across) ? d.result : shortOfRuns(runs, a, b, layer, metric, d.result) };
}

const hasInterval = (r: AcrossRuns | null): r is AcrossRuns => !!r && r.nRuns >= 2 && isNum(r.lo) && isNum(r.hi);

function directional(r: AcrossRuns | null, dir: 1 | -1, up: string, down: string): { outcome: LayerOutcome; result: string } {
  if (!r) return { outcome: 'missing', result: 'not measured' };
  if (!hasInterval(r)) return { outcome: 'missing', result: 'fewer than 2 runs' };
  if (r.lo > 0 || r.hi < 0) {
    const sign = r.lo > 0 ? 1 : -1;
    return sign === dir ? { outcome: 'agrees', result: `${sign > 0 ? up : down}: interval excludes 0` } : { outcome: 'disagrees', result: `${sign > 0 ? up : down} (against the claim): interval excludes 0` };
  }
  return { outcome: 'neutral', result: 'interval contains 0 (within the run-to-run spread)' };
}

/** Every check of the family's finding, across the runs (runs[0] is the reference run: its models order the family). */
export function acrossVerdicts(family: FamilySpec, runs: SeedRun[]): AcrossVerdict[] {
  const claim = CLAIMS[family.finding];
  const ref = runs[0]?.models.filter((r) => !r.error) ?? [];
  const out: AcrossVerdict[] = [];
  for (const check of claim.checks) {
    const any = runs.some((run) => run.models.some((r) => family.layers.some((l) => metricStat(r, l, check.metric))));
    if (!any) continue;
    const name = METRIC_LABEL[check.metric];
    const tests: AcrossTest[] = [];
    const dir = check.direction ?? 1;
    if (check.kind === 'trend') {
      const order = treatmentOrder(family, ref);
      if (order.length >= 2) {
        const first = order[0];
        const last = order[order.length - 1];
        for (const layer of family.layers) {
          tests.push({ layer, comparison: `${first.spec.name} → ${last.spec.name}`, ...directionalOf(runs, first, last, layer, check.metric, dir, 'rise', 'fall') });
        }
      }
    } else if (check.kind === 'baseline') {
      const base = pickBaseline(family, ref);
      const counted = damageLayers(family);
      for (const t of base ? comparedModels(family, ref).filter((r) => r !== base) : []) {
        for (const layer of family.layers) {
          const d = directionalOf(runs, base!, t, layer, check.metric, dir, 'higher', 'lower');
          tests.push({ layer, comparison: `${base!.spec.name} → ${t.spec.name}`, ...(counted.includes(layer) ? d : { ...d, outcome: 'missing', result: `${d.result}; not counted (before the focus layer)` }) });
        }
      }
    } else if (check.kind === 'similar') {
      const order = family.finding === 'compression' ? treatmentOrder(family, ref) : null;
      const base = order ? order[0] ?? null : pickBaseline(family, ref);
      // The margin from every run's baseline (mean of the per-run margins).
      const margins = runs.flatMap((run) => {
        const b = base && run.models.find((m) => m.spec.name === base.spec.name);
        return b ? [similarityMargin(b, family.layers, check.metric)] : [];
      });
      const margin = margins.length ? margins.reduce((a, b) => a + b, 0) / margins.length : NaN;
      for (const o of base ? (order ?? comparedModels(family, ref)).filter((r) => r !== base) : []) {
        for (const layer of family.layers) {
          const r = acrossPair(runs, base!, o, layer, check.metric);
          let outcome: LayerOutcome = 'missing';
          let result = shortOfRuns(runs, base!, o, layer, check.metric, r ? 'fewer than 2 runs' : 'not measured');
          if (hasInterval(r)) {
            if (r.lo >= -margin && r.hi <= margin) {
              outcome = 'agrees';
              result = `similar (interval inside ±${fmt(margin)})`;
            } else if ((r.lo > 0 || r.hi < 0) && Math.abs(r.estimate) > margin) {
              outcome = 'disagrees';
              result = `different (interval excludes 0, |Δ| beyond ±${fmt(margin)})`;
            } else {
              outcome = 'neutral';
              result = `undecided (margin ±${fmt(margin)})`;
            }
          }
          tests.push({ layer, comparison: `${base!.spec.name} → ${o.spec.name}`, across: r, outcome, result });
        }
      }
    } else {
      const order = comparedModels(family, ref).sort((a, b) => a.spec.x - b.spec.x);
      for (const layer of highLayers(family.layers)) {
        const models = order.filter((r) => runs.every((run) => {
          const m = run.models.find((x) => x.spec.name === r.spec.name);
          return m && !m.error && metricStat(m, layer, check.metric);
        }));
        if (models.length < 2) {
          tests.push({ layer, comparison: '—', across: null, outcome: 'missing', result: 'fewer than 2 checkpoints measured in every run' });
          continue;
        }
        // The minimum of the across-run mean curve.
        const curve = models.map((r) => {
          const xs = runs.map((run) => metricStat(run.models.find((x) => x.spec.name === r.spec.name)!, layer, check.metric)!.mean);
          return xs.reduce((a, b) => a + b, 0) / xs.length;
        });
        let m = 0;
        for (let i = 1; i < curve.length; i++) if (curve[i] < curve[m]) m = i;
        const first = models[0];
        const last = models[models.length - 1];
        const fall = m > 0 ? acrossPair(runs, first, models[m], layer, check.metric) : null;
        const rise = m < models.length - 1 ? acrossPair(runs, models[m], last, layer, check.metric) : null;
        const fell = hasInterval(fall) && fall.hi < 0;
        const rose = hasInterval(rise) && rise.lo > 0;
        const overall = acrossPair(runs, first, last, layer, check.metric);
        const at = `${family.xLabel} ${num(models[m].spec.x)}`;
        const outcome: LayerOutcome = fell && rose ? 'agrees' : 'neutral';
        const result = fell && rose ? `fall then rise (minimum at ${at}: ${signed(fall!.estimate)}, then ${signed(rise!.estimate)})`
          : rose ? `rise only (compression phase; ${m === 0 ? 'minimum at the first checkpoint' : 'no fall excluding 0 before it'}: ${signed(rise!.estimate)})`
            : fell ? `fall only (no rise excluding 0 after ${at}: ${signed(fall!.estimate)})` : 'no fall or rise whose interval excludes 0';
        tests.push({ layer, comparison: `${first.spec.name} → ${last.spec.name}`, across: overall, outcome, result });
      }
    }
    const measured = tests.filter((t) => t.outcome !== 'missing');
    const nRuns = Math.max(0, ...tests.map((t) => t.across?.nRuns ?? 0));
    const agree = measured.filter((t) => t.outcome === 'agrees').length;
    const disagree = measured.filter((t) => t.outcome === 'disagrees').length;
    let level: Level;
    if (check.kind === 'ib') {
      const rises = measured.filter((t) => t.result.startsWith('rise only')).length;
      level = !measured.length ? 'not-measured' : agree * 2 >= measured.length && agree > 0 ? 'reproduces' : agree + rises > 0 ? 'partly' : 'does-not-reproduce';
    } else {
      level = countLevel(agree, disagree, measured.length);
    }
    if (level === 'not-measured') {
      const poor = tests.find((t) => t.result.startsWith('RU decoder PSNR'));
      const why = poor ? ` (${poor.layer}, ${poor.comparison}: ${poor.result}; such RU measures the decoder more than the layer)` : '';
      out.push({ metric: check.metric, check, level, tests, nRuns, text: `${LEVEL_LABEL[level]} across runs: no ${name} comparison with two or more runs${why}.` });
      continue;
    }
    const focus = focusLayer(family, ref, check.metric);
    const ft = tests.filter((t) => t.layer === focus && hasInterval(t.across));
    const seq = ft.length ? ` At ${focus}: ${ft.map((t) => `${t.comparison}: ${describeAcross(t.across!, 'nats')}`).join('; ')}.` : '';
    const body = `${name} ${check.says}, with the interval across ${nRuns} runs excluding 0 in the claimed direction${check.kind === 'similar' ? ' (similar: inside the margin)' : ''}, at ${agree} of ${measured.length} ${check.kind === 'trend' || check.kind === 'ib' ? 'layers' : '(model, layer) pairs'}${disagree ? `; against it at ${disagree}` : ''}.`;
    out.push({ metric: check.metric, check, level, tests, nRuns, text: `${LEVEL_LABEL[level]} across ${nRuns} runs: ${body}${seq}` });
  }
  return out;
}

/**
 * A family's models as means over runs: per model and layer, the mean over runs of each run's mean over images,
 * and the SD across runs (for the across-run tables and charts).
 */
export function runMeans(family: FamilySpec, runs: SeedRun[], metric: Metric): { model: string; layer: string; mean: number; sd: number; n: number }[] {
  const out: { model: string; layer: string; mean: number; sd: number; n: number }[] = [];
  for (const m of runs[0]?.models ?? []) {
    for (const layer of family.layers) {
      const xs = runs.flatMap((run) => {
        const r = run.models.find((x) => x.spec.name === m.spec.name && !x.error);
        const s = r ? metricStat(r, layer, metric) : null;
        return s ? [s.mean] : [];
      });
      if (!xs.length) continue;
      const { mean, std } = meanStd(xs);
      out.push({ model: m.spec.name, layer, mean, sd: std, n: xs.length });
    }
  }
  return out;
}

function acrossTable(family: FamilySpec, runs: SeedRun[], metric: Metric): string {
  const rows = runMeans(family, runs, metric);
  if (!rows.length) return '';
  const models = [...new Set(rows.map((r) => r.model))];
  const head = `| model | ${family.layers.map(escapeCell).join(' | ')} |`;
  const sep = `| --- | ${family.layers.map(() => '---:').join(' | ')} |`;
  const lines = models.map((m) => `| ${escapeCell(m)} | ${family.layers.map((l) => {
    const r = rows.find((x) => x.model === m && x.layer === l);
    return r ? `${fmt(r.mean)} ± ${fmt(r.sd)}${r.n < runs.length ? ` (${r.n} runs)` : ''}` : '—';
  }).join(' | ')} |`);
  return [head, sep, ...lines].join('\n');
}

/** "Test accuracy over the runs (mean ± SD): ResNet-8 85.10 ± 0.80 %, …" (MSE for reconstruction models). */
export function accuracyAcross(runs: SeedRun[]): string {
  const parts = (runs[0]?.models ?? []).flatMap((m) => {
    const specs = runs.map((r) => r.models.find((x) => x.spec.name === m.spec.name)?.spec).filter((s): s is ModelSpec => !!s);
    const acc = specs.map((s) => s.testAccuracy).filter(isNum);
    const mse = specs.map((s) => s.testMSE).filter(isNum);
    if (acc.length === specs.length && acc.length) {
      const { mean, std } = meanStd(acc.map((a) => a * 100));
      return [`${m.spec.name} ${mean.toFixed(2)} ± ${std.toFixed(2)} %`];
    }
    if (mse.length === specs.length && mse.length) {
      const { mean, std } = meanStd(mse);
      return [`${m.spec.name} MSE ${mean.toFixed(5)} ± ${std.toFixed(5)}`];
    }
    return [];
  });
  return parts.length ? `Test accuracy over the runs (mean ± SD): ${parts.join(', ')}.` : '';
}

function acrossTestsTable(v: AcrossVerdict): string {
  if (!v.tests.length) return '';
  const lines = ['| layer | comparison | test | runs | Δ (later − earlier) | 95 % CI | run SD | within-run SE | random effects (DL) | result |', '| --- | --- | --- | ---: | ---: | --- | ---: | ---: | --- | --- |'];
  for (const t of v.tests) {
    const r = t.across;
    const re = r?.randomEffects;
    lines.push(`| ${escapeCell(t.layer)} | ${escapeCell(t.comparison)} | ${r ? (r.test === 'paired-t' ? 'paired t' : 'Welch t') : '—'} | ${r?.nRuns ?? '—'} | ${signed(r?.estimate)} | ${r && isNum(r.lo) ? `[${signed(r.lo)}, ${signed(r.hi)}]` : '—'} | ${fmt(r?.runSD)} | ${fmt(r?.withinSE)} | ${re ? `${signed(re.estimate)} [${signed(re.lo)}, ${signed(re.hi)}], τ ${fmt(Math.sqrt(re.tau2))}` : '—'} | ${escapeCell(t.result)} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Chart data (what the browser page draws with the project's chart code)

export interface TrendChartData {
  /** x values as labels, in treatment order. */
  labels: string[];
  xTitle: string;
  layer: string;
  lines: { label: string; metric: Metric; data: (number | null)[]; std: (number | null)[] }[];
  /** What the error bars are: the std across images (one run) or the SD across runs (mean over runs drawn). */
  spread?: { over: 'images' } | { over: 'runs'; runs: number };
}

/**
 * The focus layer's SID (and RU) against x, for families ordered by a number (depth, compression, epochs). With
 * `runs` (two or more seeds), each point is the mean over runs of the run's mean over images, its bar the SD
 * across runs.
 */
export function trendChartData(family: FamilySpec, results: ModelResult[], runs?: SeedRun[]): TrendChartData | null {
  if (!['depth', 'compression', 'epochs'].includes(family.finding)) return null;
  const order = (family.finding === 'epochs' ? comparedModels(family, results).sort((a, b) => a.spec.x - b.spec.x) : treatmentOrder(family, results)).filter((r) => !r.error);
  if (order.length < 2) return null;
  const layer = focusLayer(family, order);
  const lines: TrendChartData['lines'] = [];
  for (const metric of ['sid', 'ru'] as Metric[]) {
    const stats = order.map((r) => metricStat(r, layer, metric));
    if (!stats.some(Boolean)) continue;
    if (runs && runs.length > 1) {
      const means = runMeans({ ...family, layers: [layer] }, runs, metric);
      const at = order.map((r) => means.find((m) => m.model === r.spec.name) ?? null);
      lines.push({ label: `${METRIC_LABEL[metric]} at ${layer}`, metric, data: at.map((m) => m?.mean ?? null), std: at.map((m) => (m && m.n > 1 ? m.sd : null)) });
      continue;
    }
    lines.push({ label: `${METRIC_LABEL[metric]} at ${layer}`, metric, data: stats.map((s) => s?.mean ?? null), std: stats.map((s) => s?.std ?? null) });
  }
  if (!lines.length) return null;
  const spread: TrendChartData['spread'] = runs && runs.length > 1 ? { over: 'runs', runs: runs.length } : { over: 'images' };
  return { labels: order.map((r) => `${num(r.spec.x)}`), xTitle: family.xLabel, layer, lines, spread };
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

export interface FamilyResult {
  spec: FamilySpec;
  models: ModelResult[];
  /** The chart PNG, relative to the document (null: not drawn). */
  chart: string | null;
  /** Why the family was skipped or has a caveat, shown under its heading. */
  note?: string;
  skipped?: boolean;
  seconds: number;
  /** --seeds N > 1: the family's results per training run (the first is the run of `models`). */
  across?: SeedRun[];
}

export interface RunInfo {
  date: string;
  command: string;
  /** Wall time of this invocation. */
  totalSeconds: number;
  /** Sum of the analysis times of the reports shown (reused ones included). */
  analysisSeconds: number;
  /** How many reports came from earlier runs. */
  reused: number;
  machine: string;
  node: string;
  backend: string;
  commit: string;
  ru: boolean;
  /** One line when charts could not be drawn. */
  chartsNote?: string;
  /** Settings of the analysis, for the document. */
  settings: string[];
  manifest: string;
  /** Manifest fields (dataset, training script) for the document. */
  dataset?: string;
  script?: string;
  failures: string[];
}

const DISCUSSION_RE = /<!-- discussion:([A-Za-z0-9._-]+) -->\n?([\s\S]*?)\n?<!-- \/discussion:\1 -->/g;

/** Human prose kept between `<!-- discussion:X -->` and `<!-- /discussion:X -->` of an earlier document. */
export function extractDiscussions(md: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of md.matchAll(DISCUSSION_RE)) out[m[1]] = m[2].trim();
  return out;
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function pm(s: Stat | null | undefined, warn = ''): string {
  if (!s) return '—';
  return `${fmt(s.mean)} ± ${fmt(s.std)}${warn}`;
}

/** A models × layers table of one metric: "mean ± std over images". */
export function metricTable(family: FamilySpec, models: ModelResult[], metric: Metric): string {
  const rows = models.filter((r) => family.layers.some((l) => metricStat(r, l, metric)));
  if (!rows.length) return '';
  const head = `| model | ${family.layers.map(escapeCell).join(' | ')} |`;
  const sep = `| --- | ${family.layers.map(() => '---:').join(' | ')} |`;
  const lines = rows.map((r) => `| ${escapeCell(r.spec.name)} | ${family.layers.map((l) => {
    const psnr = r.layers[l]?.ruPsnr;
    const warn = metric === 'ru' && isNum(psnr) && psnr < POOR_DECODER_PSNR ? ' ⚠' : '';
    return pm(metricStat(r, l, metric), warn);
  }).join(' | ')} |`);
  return [head, sep, ...lines].join('\n');
}

function modelsTable(family: FamilySpec, models: ModelResult[]): string {
  const lines = [
    `| model | ${escapeCell(family.xLabel)} | role | test accuracy | parameters | analysis | notes |`,
    '| --- | ---: | --- | ---: | ---: | ---: | --- |',
  ];
  for (const r of models) {
    const pct = isNum(r.spec.testAccuracy) ? r.spec.testAccuracy * 100 : NaN;
    const acc = isNum(pct) ? `${pct.toFixed(Math.abs(pct - Math.round(pct)) < 1e-9 ? 0 : 2)} %` : isNum(r.spec.testMSE) ? `MSE ${r.spec.testMSE}` : '—';
    const params = isNum(r.spec.params) ? r.spec.params.toLocaleString('en-US') : '—';
    const status = r.error ? `**failed**: ${escapeCell(r.error)}` : `${isNum(r.seconds) ? formatDuration(r.seconds) : '—'}${r.reused ? ' (earlier run)' : ''}${r.warning ? `; ${escapeCell(r.warning)}` : ''}`;
    lines.push(`| ${escapeCell(r.spec.name)} | ${num(r.spec.x)} | ${escapeCell(r.spec.role ?? '')} | ${acc} | ${params} | ${status} | ${escapeCell(r.spec.notes ?? '')} |`);
  }
  return lines.join('\n');
}

function testsTable(verdict: Verdict): string {
  if (!verdict.tests.length) return '';
  const lines = ['| layer | comparison | Δ (later − earlier) | paired SE | images | result |', '| --- | --- | ---: | ---: | ---: | --- |'];
  for (const t of verdict.tests) {
    lines.push(`| ${escapeCell(t.layer)} | ${escapeCell(t.comparison)} | ${signed(t.diff?.mean)} | ${fmt(t.diff?.se)} | ${t.diff?.n ?? '—'} | ${escapeCell(t.result)} |`);
  }
  return lines.join('\n');
}

function qualityLine(family: FamilySpec, models: ModelResult[]): string {
  let maxSteps = 0;
  let total = 0;
  let sidOut = 0;
  let ruOut = 0;
  const poor: string[] = [];
  for (const r of models) {
    for (const l of family.layers) {
      const a = r.layers[l];
      if (!a) continue;
      maxSteps += a.maxSteps;
      total += a.optimisations;
      sidOut += a.flagged?.sid ?? 0;
      ruOut += a.flagged?.ru ?? 0;
      if (isNum(a.ruPsnr) && a.ruPsnr < POOR_DECODER_PSNR) poor.push(`${r.spec.name}/${l} (${a.ruPsnr.toFixed(1)} dB)`);
    }
  }
  const parts = [`${maxSteps} of ${total} SID optimisations stopped at the step limit instead of converging.`];
  if (sidOut || ruOut) {
    parts.push(`Left out of the statistics and verdicts as not measurements (ratio off α ± 5 %, or a lower bound at σ_max): ${sidOut} SID value${sidOut === 1 ? '' : 's'}${ruOut ? ` and ${ruOut} RU value${ruOut === 1 ? '' : 's'}` : ''}.`);
  }
  if (poor.length) parts.push(`RU decoders below ${POOR_DECODER_PSNR} dB (⚠, left out of the RU verdicts): ${poor.join(', ')}.`);
  return parts.join(' ');
}

function overallLevel(verdicts: Verdict[]): Level {
  return verdicts.find((v) => v.metric === 'sid')?.level ?? verdicts[0]?.level ?? 'not-measured';
}

/** The whole document. `discussions` (from extractDiscussions of the previous file) is kept per finding. */
export function renderMarkdown(run: RunInfo, families: FamilyResult[], discussions: Record<string, string> = {}): string {
  const out: string[] = [];
  const verdictsOf = new Map<FamilyResult, Verdict[]>(families.map((f) => [f, f.skipped ? [] : familyVerdicts(f.spec, f.models)]));
  out.push('# Reproducing the paper\'s experiments (Ma et al. 2019, Sec. 4)', '');
  out.push(`Generated by \`${run.command}\` (scripts/repro/) on ${run.date}. Everything here except the discussion blocks is computed: edit the code, not this file; text between \`<!-- discussion:… -->\` and \`<!-- /discussion:… -->\` is kept when the file is generated again.`, '');
  out.push('## How to run', '');
  out.push('```sh');
  out.push('npm run repro                            # every family of the manifest, RU where the claim needs it');
  out.push('npm run repro -- --no-ru                 # SID and concentration only (much faster)');
  out.push('npm run repro -- --families depth-resnet # some families (comma-separated ids)');
  out.push('npm run repro -- --reuse                 # keep reports already computed with the same arguments');
  out.push('npm run repro -- --ru-all                # RU for every depth/compression family, not only the first of each');
  out.push('npm run repro -- --no-keras              # leave out the third-party Keras MNIST checkpoints');
  out.push('npm run repro -- --skip-layers gap       # leave a layer out of every family (gap is the ResNets\' slowest)');
  out.push('npm run repro -- --seeds 3               # every model\'s seeds 1..3 (media/families/seed<N>): verdicts across runs');
  out.push('```', '');
  out.push(`Models come from \`${run.manifest}\`${run.script ? ` (trained by \`${run.script}\`)` : ''}${run.dataset ? ` on ${run.dataset}` : ''}. Each model is analysed by the real CLI (\`node dist/cli.js analyze …\`); reports go to \`out/repro/<family>/<model>.report.json\`, charts to \`docs/repro/<family>.png\`, drawn by the report panel's own chart code (\`webview/report/chart.ts\`) in headless Chromium.`, '');
  out.push('## Machine and time', '');
  out.push(`- ${run.machine}; Node ${run.node}; TensorFlow.js backend: ${run.backend}`);
  out.push(`- commit ${run.commit}`);
  out.push(`- wall time of this run: ${formatDuration(run.totalSeconds)}${run.ru ? '' : ' (RU skipped: --no-ru)'}${run.reused ? `, ${run.reused} report${run.reused === 1 ? '' : 's'} reused from earlier runs` : ''}`);
  out.push(`- analysis time of the reports shown (the CLI's own wall time, summed): ${formatDuration(run.analysisSeconds)}`);
  for (const f of families) if (!f.skipped) out.push(`  - ${f.spec.id}: ${formatDuration(f.seconds)}`);
  if (run.chartsNote) out.push(`- ${run.chartsNote}`);
  out.push('', '### Analysis settings', '');
  for (const s of run.settings) out.push(`- ${s}`);
  out.push('');
  out.push('### Reading the numbers', '');
  out.push('- **SID** (paper Eq. 3): mean pixel entropy of the largest input noise that changes the layer\'s output by α·Δf², in nats per pixel (H = log σ + ½ log 2πe). **Higher = the layer tolerates more noise = it discards more of the input** — the paper\'s "higher information discarding". Values are negative when the tolerated σ is below ≈ 0.24 (in [0,1] pixel units).');
  out.push('- **RU** (Sec. 3.2): the same entropy for the reconstruction of a decoder trained on the layer (here the `light` decoder, 3 residual blocks). ⚠ marks a decoder with held-out PSNR below 15 dB.');
  out.push('- **Concentration** (Eq. 7): mean pixel SID outside the object box minus inside; positive = the layer discards more of the background than of the object.');
  out.push('- Tables give mean ± std **over the images**; verdicts compare models **image by image** (paired), which removes the image-to-image spread.', '');
  const acrossOf = new Map<FamilyResult, AcrossVerdict[]>(families.filter((f) => !f.skipped && (f.across?.length ?? 0) > 1).map((f) => [f, acrossVerdicts(f.spec, f.across!)]));
  out.push('### Verdict rules', '', RULES_MD, ...(acrossOf.size ? [ACROSS_RULES_MD] : []), '');
  if (run.failures.length) {
    out.push('### Failures', '');
    for (const f of run.failures) out.push(`- ${f}`);
    out.push('');
  }
  out.push('## Summary', '');
  if (acrossOf.size) {
    out.push('| finding | family | paper | verdict across runs (SID) | runs | other metrics across runs | single run (seed 1, SID) |', '| --- | --- | --- | --- | ---: | --- | --- |');
    for (const f of families) {
      const v = verdictsOf.get(f) ?? [];
      const a = acrossOf.get(f);
      const others = (a ?? []).filter((x) => x.metric !== 'sid').map((x) => `${METRIC_LABEL[x.metric]}: ${LEVEL_LABEL[x.level]}`).join('; ');
      const sid = a?.find((x) => x.metric === 'sid') ?? a?.[0];
      out.push(`| ${f.spec.finding} | ${escapeCell(f.spec.title)} | ${CLAIMS[f.spec.finding].figure.replace(/^Sec\. 4, "[^"]*", /, '')} | ${f.skipped ? 'skipped' : sid ? `**${LEVEL_LABEL[sid.level]}**` : 'one run only'} | ${sid?.nRuns ?? (f.skipped ? '—' : 1)} | ${others || '—'} | ${f.skipped ? '—' : LEVEL_LABEL[overallLevel(v)]} |`);
    }
  } else {
    out.push('| finding | family | paper | verdict (SID) | other metrics |', '| --- | --- | --- | --- | --- |');
    for (const f of families) {
      const v = verdictsOf.get(f) ?? [];
      const others = v.filter((x) => x.metric !== 'sid').map((x) => `${METRIC_LABEL[x.metric]}: ${LEVEL_LABEL[x.level]}`).join('; ');
      out.push(`| ${f.spec.finding} | ${escapeCell(f.spec.title)} | ${CLAIMS[f.spec.finding].figure.replace(/^Sec\. 4, "[^"]*", /, '')} | ${f.skipped ? `skipped` : `**${LEVEL_LABEL[overallLevel(v)]}**`} | ${others || '—'} |`);
    }
  }
  out.push('');
  for (const finding of FINDINGS) {
    const fams = families.filter((f) => f.spec.finding === finding);
    if (!fams.length) continue;
    const claim = CLAIMS[finding];
    out.push(`## ${finding}: ${claim.heading}`, '');
    out.push(`> "${claim.quote}" — ${claim.figure}`, '');
    for (const f of fams) {
      out.push(`### ${f.spec.title} (\`${f.spec.id}\`)`, '');
      if (f.spec.claim) out.push(`Claim tested: ${f.spec.claim}.`.replace(/\.\.$/, '.'), '');
      if (f.spec.note) out.push(f.spec.note, '');
      if (f.note) out.push(f.note, '');
      if (f.skipped) continue;
      const across = acrossOf.get(f);
      if (f.chart) out.push(`![${f.spec.title}: SID per layer, one line per model${across ? ', mean ± SD across runs' : ''}](${f.chart})`, '');
      if (across) {
        out.push(`#### Across ${f.across!.length} training runs (seeds ${f.across!.map((r) => r.seed).join(', ')})`, '');
        const acc = accuracyAcross(f.across!);
        if (acc) out.push(acc, '');
        for (const metric of ['sid', 'ru', 'concentration'] as Metric[]) {
          const table = acrossTable(f.spec, f.across!, metric);
          if (table) out.push(`${METRIC_LABEL[metric] === 'concentration' ? 'Concentration' : METRIC_LABEL[metric]} per layer across runs (mean over runs of the mean over images ± SD across runs):`, '', table, '');
        }
        for (const v of across) {
          out.push(`**Verdict across runs (${METRIC_LABEL[v.metric]}, rule: ${v.check.kind}).** ${v.text}`, '');
          const t = acrossTestsTable(v);
          if (t) out.push('<details><summary>per-layer tests across runs</summary>', '', t, '', '</details>', '');
        }
        out.push('#### Single run (seed 1)', '');
      }
      out.push(modelsTable(f.spec, f.models), '');
      for (const metric of ['sid', 'ru', 'concentration'] as Metric[]) {
        const table = metricTable(f.spec, f.models, metric);
        if (!table) continue;
        out.push(`${metric === 'sid' ? 'SID' : metric === 'ru' ? 'RU' : 'Concentration'} per layer (nats per pixel, mean ± std over images):`, '', table, '');
      }
      out.push(qualityLine(f.spec, f.models), '');
      for (const v of verdictsOf.get(f) ?? []) {
        out.push(`**Verdict${across ? ' (seed 1 alone)' : ''} (${METRIC_LABEL[v.metric]}, rule: ${v.check.kind}).** ${v.text}`, '');
        const t = testsTable(v);
        if (t) out.push('<details><summary>per-layer tests</summary>', '', t, '', '</details>', '');
      }
    }
    out.push(`<!-- discussion:${finding} -->`);
    out.push(discussions[finding] ?? '');
    out.push(`<!-- /discussion:${finding} -->`, '');
  }
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

export function formatDuration(seconds: number): string {
  if (!isNum(seconds)) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(s % 60).padStart(2, '0')} s`;
}
