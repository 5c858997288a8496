/**
 * The paper's coherency check (Sec. 4, "Coherency for comprehensive comparisons"): rescale a pair of neighbouring
 * conv layers (w_L /= k, b_L /= k, w_{L+1} *= k, b_{L+1} unchanged), which changes neither the network output nor
 * what the layers know, and compare the metrics of the original and the rescaled network layer by layer. SID and
 * RU should not move (they are coherent); baseline magnitudes such as gradient norms scale with the weights.
 *
 * checkCoherency first verifies the rescale numerically on the analysis images (the network output must not
 * change; the rescaled layers' features must shrink by k), then runs analyze() twice with the same settings and
 * seed, the second time rescaling the loaded model through AnalyzeRequest.prepareModel, and compares.
 *
 * Verdict rule (COHERENCY_RULE):
 *  - SID and RU, nats per pixel: unchanged when |rescaled - original| <= max(0.05 nats, 3 * noise).
 *    noise is the standard error of the difference of the two layer means, the larger of
 *      (a) the optimiser-based one: per image, the constraint E||h(x')-f||^2 / delta_f^2 = alpha is met only up to
 *          the relative standard errors of delta_f^2 (deltaF2RelSe) and of the measured ratio
 *          (constraintRatioSe / constraintRatio); an error e in the effective alpha moves sigma^2 by a factor
 *          (1 + e), i.e. the mean log-sigma (the pixel entropy) by e / 2. Per image se_i = 0.5 * sqrt(rse_df^2 +
 *          rse_ratio^2); per run sqrt(sum se_i^2) / n; for the difference sqrt(se_orig^2 + se_rescaled^2)
 *          (conservative: both runs draw the same noise, which correlates them);
 *      (b) the paired one: the standard deviation across images of the per-image differences / sqrt(n) (n >= 2).
 *  - gradNorm, gradCam and CAM magnitudes (deterministic given the images): unchanged when the relative change
 *    |rescaled - original| / |original| <= 10 %. Their `noise` is the paired standard error of the per-image
 *    relative change (0 for one image), for information.
 * Each comparison also carries what theory expects: the features of `first` and of the layers between the pair
 * shrink by k, so there gradNorm grows by k, CAM shrinks by k and Grad-CAM (gradient x feature) is unchanged;
 * everywhere else all magnitudes are unchanged; SID and RU are unchanged everywhere.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyze, type AnalyzeRequest } from './analyze';
import { selectBackend } from './backend';
import { readValues, withSyncReads } from './reads';
import { CancelledError, UserError } from './errors';
import { collectImagePaths, loadImages } from './images';
import { makeInputMapping, mappingOptions, toModelUnits } from './inputMapping';
import { loadModel, type LoadedModel } from './loaders';
import { checkRescaleFactor, isConvKind } from './loaders/rescale';
import type { RescaledPair } from './loaders/types';
import { meanStd, type LayerResult, type MetricName, type ModelFormat, type PerImageResult, type Report } from './report';
import { validateSettings } from './settings';
import { VERSION } from './version';

export type CoherencyMetric = 'sid' | 'ru' | 'gradNorm' | 'gradCam' | 'cam';
export type CoherencyPhase = 'check' | 'original' | 'rescaled';

export const DEFAULT_COHERENCY_FACTOR = 4;

/** The thresholds of the verdict (see the file comment). */
export const COHERENCY_RULE = {
  entropyFloorNats: 0.05,
  noiseMultiple: 3,
  magnitudeRelative: 0.1,
  outputRelativeTolerance: 1e-4,
  text:
    'SID/RU (nats per pixel): unchanged when |rescaled - original| <= max(0.05, 3 x noise), noise = standard error of the difference ' +
    '(the larger of the optimiser-based and the paired across-image one); gradNorm/Grad-CAM/CAM magnitudes: unchanged when |relative change| <= 10 %.',
} as const;

export interface CoherencyRequest extends Omit<AnalyzeRequest, 'prepareModel' | 'reportPath'> {
  /** The conv layer L whose kernel and bias are divided by `factor`; the next conv/dense layer's kernel is multiplied. */
  first: string;
  /** k (default 4, the paper's). */
  factor?: number;
  /** Metrics to compare (default settings.metrics, else SID only). */
  metrics?: MetricName[];
  /** Called when the numerical check, the original analysis and the rescaled analysis start. */
  onPhase?: (phase: CoherencyPhase) => void;
}

export interface MetricComparison {
  layer: string;
  metric: CoherencyMetric;
  /** 'nats/pixel' for SID and RU, 'magnitude' for the baselines (in their own units). */
  unit: 'nats/pixel' | 'magnitude';
  original: number;
  rescaled: number;
  difference: number;
  /** difference / |original|; null when the original is 0 and the rescaled value is not. */
  relativeChange: number | null;
  /** Standard error of `difference` (nats) for SID/RU; of the relative change for the magnitudes (see the rule). */
  noise: number;
  /** The largest |difference| (SID/RU) or |relativeChange| (magnitudes) that still counts as unchanged. */
  threshold: number;
  verdict: 'unchanged' | 'changed';
  /** What theory says rescaled / original should be, and the verdict that follows from it. */
  expectedRatio: number;
  expected: 'unchanged' | 'changed';
}

export interface FeatureScale {
  layer: string;
  /** 1/factor for `first` and the layers between the pair, 1 elsewhere. */
  expected: number;
  /** ||f_rescaled|| / ||f_original|| over the images; null when the original feature is all zeros. */
  measured: number | null;
}

export interface OutputCheck {
  /** The model's last probe-able layer (its output). */
  layer: string;
  images: number;
  maxAbsDiff: number;
  maxAbsOutput: number;
  /** maxAbsDiff / maxAbsOutput. */
  relativeDiff: number;
  tolerance: number;
  passed: boolean;
}

export interface CoherencySummary {
  metric: CoherencyMetric;
  layers: number;
  unchanged: number;
  changed: string[];
  /** Every layer's verdict is what theory expects. */
  asExpected: boolean;
}

export interface CoherencyResult {
  kind: 'infodiscard-coherency';
  version: 1;
  tool: { name: 'infodiscard'; version: string };
  createdAt: string;
  model: { path: string; format: ModelFormat; sha256: string };
  rescale: RescaledPair & { factor: number };
  rule: string;
  outputCheck: OutputCheck;
  featureScales: FeatureScale[];
  comparisons: MetricComparison[];
  summary: CoherencySummary[];
  /** The output is unchanged and every SID/RU comparison is unchanged. */
  coherent: boolean;
  original: Report;
  rescaled: Report;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------

/** The layers that can be given as `first` (convolutions), from the probe layers' kinds. */
export function convLayerNames(model: LoadedModel): string[] {
  return model.layers.filter((l) => isConvKind(l.kind)).map((l) => l.name);
}

function listNames(names: string[]): string {
  return names.length === 0 ? '(none)' : names.slice(0, 8).join(', ') + (names.length > 8 ? `, ... (${names.length} in all)` : '');
}

function checkFirst(model: LoadedModel, first: string): void {
  const convs = convLayerNames(model);
  const info = model.layers.find((l) => l.name === first);
  if (!info) throw new UserError(`no layer named "${first}" in ${model.path}; conv layers: ${listNames(convs)}`, '--first');
  if (!isConvKind(info.kind)) throw new UserError(`"${first}" is a ${info.kind} layer, not a convolution; conv layers: ${listNames(convs)}`, '--first');
}

/**
 * Loads the model, rescales the pair and measures on the images that the output is unchanged and how each layer's
 * feature scaled. Throws the hook's UserError for an invalid `first`.
 */
async function verifyRescale(req: CoherencyRequest, factor: number, layersToMeasure: string[] | undefined) {
  const settings = validateSettings(req.settings);
  await selectBackend(settings.backend, { gpu: req.gpu });
  const model = await loadModel(req.modelPath);
  try {
    if (!model.rescaleConvPair) {
      throw new UserError(
        `${model.format} models cannot have their weights changed in memory; the coherency check supports TensorFlow.js layers and graph models, Keras .h5/.keras and ONNX files`,
        model.path,
      );
    }
    checkFirst(model, req.first);
    const imagePaths = collectImagePaths(req.images);
    const { height: h0, width: w0, channels } = model.input;
    const [height, width] = h0 !== null && w0 !== null ? [h0, w0] : req.inputSize ?? [null, null];
    if (height === null || width === null) {
      throw new UserError('the model accepts any image size; give one with --input-size HxW (for example 224x224)', imagePaths[0]);
    }
    const images = await withSyncReads(() =>
      loadImages(imagePaths, height, width, channels, {
        resize: req.imageOptions?.resize ?? settings.preprocessing?.resize,
        alpha: req.imageOptions?.alpha ?? settings.preprocessing?.alpha,
        pad: req.imageOptions?.pad,
      }),
    );
    const mapping = makeInputMapping(mappingOptions(settings), channels);
    const inputs = images.map((im) => toModelUnits(im.pixels, mapping));
    const output = model.layers[model.layers.length - 1].name;
    // Every requested layer (or every layer of a small model; in a large one `first` and the 16 after it, which
    // hold the pair), plus the output: one forward pass each per image, before and after the rescale.
    const names = model.layers.map((l) => l.name);
    const at = names.indexOf(req.first);
    const want = new Set(
      layersToMeasure && layersToMeasure.length > 0 ? layersToMeasure : names.length <= 64 ? names : names.slice(at, at + 17),
    );
    want.add(req.first);
    want.add(output);
    const measured = model.layers.map((l) => l.name).filter((n) => want.has(n));

    // Squared norms per layer (summed over images), and the output values themselves.
    const run = async () => {
      const sq = new Map<string, number>();
      const outs: Float32Array[] = [];
      for (const x of inputs) {
        const xt = tf.tensor4d(x, [1, height, width, channels]);
        try {
          for (const name of measured) {
            const f = tf.tidy(() => model.probe(name)(xt as tf.Tensor4D));
            try {
              const values = await readValues(f);
              let s = 0;
              for (let i = 0; i < values.length; i++) s += values[i] * values[i];
              sq.set(name, (sq.get(name) ?? 0) + s);
              if (name === output) outs.push(Float32Array.from(values));
            } finally {
              f.dispose();
            }
          }
        } finally {
          xt.dispose();
        }
      }
      return { sq, outs };
    };
    const before = await run();
    const pair = model.rescaleConvPair(req.first, factor);
    const after = await run();

    let maxAbsDiff = 0;
    let maxAbsOutput = 0;
    before.outs.forEach((o, i) => {
      for (let j = 0; j < o.length; j++) {
        maxAbsOutput = Math.max(maxAbsOutput, Math.abs(o[j]));
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(o[j] - after.outs[i][j]));
      }
    });
    const relativeDiff = maxAbsOutput > 0 ? maxAbsDiff / maxAbsOutput : maxAbsDiff;
    const outputCheck: OutputCheck = {
      layer: output,
      images: images.length,
      maxAbsDiff,
      maxAbsOutput,
      relativeDiff,
      tolerance: COHERENCY_RULE.outputRelativeTolerance,
      passed: Number.isFinite(relativeDiff) && relativeDiff <= COHERENCY_RULE.outputRelativeTolerance,
    };
    const shrunk = new Set([pair.first, ...pair.between]);
    const featureScales: FeatureScale[] = measured.map((name) => {
      const b = before.sq.get(name) ?? 0;
      const a = after.sq.get(name) ?? 0;
      return { layer: name, expected: shrunk.has(name) ? 1 / factor : 1, measured: b > 0 ? Math.sqrt(a / b) : null };
    });
    return { pair, outputCheck, featureScales, model: { path: model.path, format: model.format, sha256: model.sha256 } };
  } finally {
    model.dispose();
  }
}

export async function checkCoherency(req: CoherencyRequest): Promise<CoherencyResult> {
  const t0 = performance.now();
  const factor = req.factor ?? DEFAULT_COHERENCY_FACTOR;
  checkRescaleFactor(factor);
  const { first, factor: _f, metrics, onPhase, ...rest } = req;
  const settings = { ...req.settings, metrics: metrics ?? req.settings.metrics };

  onPhase?.('check');
  const check = await verifyRescale({ ...req, settings }, factor, req.layers);
  if (req.signal?.aborted) throw new CancelledError();

  onPhase?.('original');
  // No report files and, for the rescaled run, no decoder cache: the model file (hence its hash, the cache key)
  // is the same for both runs, so a cached decoder of the original layer would be reused for the rescaled one.
  const base: AnalyzeRequest = { ...rest, settings, reportPath: undefined };
  const original = await analyze(base);
  if (req.signal?.aborted) throw new CancelledError();

  onPhase?.('rescaled');
  let applied: RescaledPair | undefined;
  const rescaled = await analyze({
    ...base,
    decoderCacheDir: undefined,
    prepareModel: (m) => {
      if (!m.rescaleConvPair) throw new UserError(`${m.format} models cannot have their weights changed in memory`, m.path);
      applied = m.rescaleConvPair(first, factor);
    },
  });
  if (!applied) {
    throw new Error('analyze() did not call prepareModel, so the second run used the original weights; the coherency check needs AnalyzeRequest.prepareModel');
  }

  const comparisons = compareReports(original, rescaled, applied, factor);
  const summary = summarize(comparisons);
  const coherent =
    check.outputCheck.passed && comparisons.filter((c) => c.unit === 'nats/pixel').every((c) => c.verdict === 'unchanged');
  return {
    kind: 'infodiscard-coherency',
    version: 1,
    tool: { name: 'infodiscard', version: VERSION },
    createdAt: new Date().toISOString(),
    model: check.model,
    rescale: { ...applied, factor },
    rule: COHERENCY_RULE.text,
    outputCheck: check.outputCheck,
    featureScales: check.featureScales,
    comparisons,
    summary,
    coherent,
    original,
    rescaled,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Comparison

function sd(values: number[]): number {
  return values.length > 1 ? meanStd(values).std : 0;
}

/** Standard error of a run's layer mean from the per-image optimiser errors (see the file comment). */
function runSe(perImage: number[]): number {
  if (perImage.length === 0) return 0;
  return Math.sqrt(perImage.reduce((a, s) => a + s * s, 0)) / perImage.length;
}

const rel = (se: number, v: number) => (Number.isFinite(se) && Number.isFinite(v) && v !== 0 ? se / Math.abs(v) : 0);

function sidSe(p: PerImageResult): number {
  return 0.5 * Math.hypot(Number.isFinite(p.deltaF2RelSe) ? p.deltaF2RelSe : 0, rel(p.constraintRatioSe, p.constraintRatio));
}

function ruSe(p: PerImageResult): number {
  return p.ru ? 0.5 * rel(p.ru.constraintRatioSe, p.ru.constraintRatio) : 0;
}

function relativeChange(original: number, rescaled: number): number | null {
  if (original !== 0) return (rescaled - original) / Math.abs(original);
  return rescaled === 0 ? 0 : null;
}

function entropyComparison(
  layer: string,
  metric: 'sid' | 'ru',
  o: number,
  r: number,
  a: PerImageResult[],
  b: PerImageResult[],
  perImageValue: (p: PerImageResult) => number | undefined,
  perImageSe: (p: PerImageResult) => number,
): MetricComparison {
  const seModel = Math.hypot(runSe(a.map(perImageSe)), runSe(b.map(perImageSe)));
  const diffs: number[] = [];
  for (const p of a) {
    const q = b.find((x) => x.image === p.image);
    const va = perImageValue(p);
    const vb = q ? perImageValue(q) : undefined;
    if (va !== undefined && vb !== undefined && Number.isFinite(va) && Number.isFinite(vb)) diffs.push(vb - va);
  }
  const sePaired = diffs.length > 1 ? sd(diffs) / Math.sqrt(diffs.length) : 0;
  const noise = Math.max(seModel, sePaired);
  const threshold = Math.max(COHERENCY_RULE.entropyFloorNats, COHERENCY_RULE.noiseMultiple * noise);
  const difference = r - o;
  return {
    layer,
    metric,
    unit: 'nats/pixel',
    original: o,
    rescaled: r,
    difference,
    relativeChange: relativeChange(o, r),
    noise,
    threshold,
    verdict: Math.abs(difference) <= threshold ? 'unchanged' : 'changed',
    expectedRatio: 1,
    expected: 'unchanged',
  };
}

function magnitudeComparison(
  layer: string,
  metric: 'gradNorm' | 'gradCam' | 'cam',
  o: number,
  r: number,
  a: PerImageResult[],
  b: PerImageResult[],
  expectedRatio: number,
): MetricComparison {
  const pick = (p: PerImageResult | undefined) => (p?.baselines ? p.baselines.magnitude[metric] : null);
  const ratios: number[] = [];
  for (const p of a) {
    const va = pick(p);
    const vb = pick(b.find((x) => x.image === p.image));
    if (va !== null && vb !== null && va !== undefined && vb !== undefined && va !== 0) ratios.push((vb - va) / Math.abs(va));
  }
  const change = relativeChange(o, r);
  const threshold = COHERENCY_RULE.magnitudeRelative;
  return {
    layer,
    metric,
    unit: 'magnitude',
    original: o,
    rescaled: r,
    difference: r - o,
    relativeChange: change,
    noise: ratios.length > 1 ? sd(ratios) / Math.sqrt(ratios.length) : 0,
    threshold,
    verdict: change !== null && Math.abs(change) <= threshold ? 'unchanged' : 'changed',
    expectedRatio,
    expected: Math.abs(expectedRatio - 1) <= threshold ? 'unchanged' : 'changed',
  };
}

/**
 * Compares two reports of the same model and images layer by layer (the layers both contain, in the original's
 * order), for every metric both report. `pair` and `factor` give the theoretical expectations.
 */
export function compareReports(original: Report, rescaled: Report, pair: RescaledPair, factor: number): MetricComparison[] {
  const shrunk = new Set([pair.first, ...pair.between]);
  const out: MetricComparison[] = [];
  for (const L of original.layers) {
    const R: LayerResult | undefined = rescaled.layers.find((l) => l.name === L.name);
    if (!R) continue;
    out.push(entropyComparison(L.name, 'sid', L.sid.mean, R.sid.mean, L.perImage, R.perImage, (p) => p.sidMean, sidSe));
    if (L.ru && R.ru) out.push(entropyComparison(L.name, 'ru', L.ru.mean, R.ru.mean, L.perImage, R.perImage, (p) => p.ruMean, ruSe));
    if (L.baselines && R.baselines) {
      const s = shrunk.has(L.name);
      out.push(magnitudeComparison(L.name, 'gradNorm', L.baselines.gradNorm.mean, R.baselines.gradNorm.mean, L.perImage, R.perImage, s ? factor : 1));
      if (L.baselines.gradCam && R.baselines.gradCam) {
        out.push(magnitudeComparison(L.name, 'gradCam', L.baselines.gradCam.mean, R.baselines.gradCam.mean, L.perImage, R.perImage, 1));
      }
      if (L.baselines.cam && R.baselines.cam) {
        out.push(magnitudeComparison(L.name, 'cam', L.baselines.cam.mean, R.baselines.cam.mean, L.perImage, R.perImage, s ? 1 / factor : 1));
      }
    }
  }
  return out;
}

const METRIC_ORDER: CoherencyMetric[] = ['sid', 'ru', 'gradNorm', 'gradCam', 'cam'];

function summarize(comparisons: MetricComparison[]): CoherencySummary[] {
  return METRIC_ORDER.flatMap((metric) => {
    const cs = comparisons.filter((c) => c.metric === metric);
    if (cs.length === 0) return [];
    return [{
      metric,
      layers: cs.length,
      unchanged: cs.filter((c) => c.verdict === 'unchanged').length,
      changed: cs.filter((c) => c.verdict === 'changed').map((c) => c.layer),
      asExpected: cs.every((c) => c.verdict === c.expected),
    }];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Output

/** Writes the result as JSON (atomically: temp file + rename). */
export function writeCoherencyResult(file: string, result: CoherencyResult): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(result));
  renameSync(tmp, file);
}

const METRIC_LABEL: Record<CoherencyMetric, string> = { sid: 'SID', ru: 'RU', gradNorm: 'gradNorm', gradCam: 'Grad-CAM', cam: 'CAM' };

function fmt(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return v === null ? '-' : String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}

function signed(v: number): string {
  return (v >= 0 ? '+' : '') + fmt(v);
}

function pct(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '-';
  return `${v >= 0 ? '+' : ''}${(v * 100).toFixed(Math.abs(v) < 0.1 ? 1 : 0)}%`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n');
}

/** The result as plain text: what was rescaled, the output check, one row per layer and metric, the verdicts. */
export function formatCoherencyTable(result: CoherencyResult): string {
  const { rescale: p, outputCheck: o } = result;
  const lines: string[] = [];
  lines.push(`Coherency check of ${result.model.path} (${result.model.format})`);
  lines.push(
    `Rescaled: "${p.first}" kernel and bias / ${p.factor}, "${p.second}" kernel x ${p.factor}` +
      (p.between.length > 0 ? `; between them: ${p.between.map((b) => `"${b}"`).join(', ')}` : ''),
  );
  lines.push(
    `Output "${o.layer}" on ${o.images} image(s): max |diff| ${fmt(o.maxAbsDiff)} (relative ${fmt(o.relativeDiff)}, tolerance ${fmt(o.tolerance)}): ` +
      (o.passed ? 'unchanged' : 'CHANGED - the rescale did not preserve the network, so the comparison below is not a coherency check'),
  );
  const scaled = result.featureScales.filter((f) => f.expected !== 1 || (f.measured !== null && Math.abs(f.measured - 1) > 1e-3));
  if (scaled.length > 0) {
    lines.push(`Feature scale ||f'||/||f||: ${scaled.map((f) => `${f.layer} ${fmt(f.measured)} (expected ${fmt(f.expected)})`).join(', ')}; other layers 1`);
  }
  lines.push('');
  const rows: string[][] = [['layer', 'metric', 'original', 'rescaled', 'difference', 'rel.', 'noise', 'threshold', 'verdict', 'expected']];
  for (const c of result.comparisons) {
    const threshold = c.unit === 'nats/pixel' ? fmt(c.threshold) : `${(c.threshold * 100).toFixed(0)}%`;
    const expected = c.unit === 'nats/pixel' || c.expectedRatio === 1 ? c.expected : `${c.expected} (x${fmt(c.expectedRatio)})`;
    rows.push([
      c.layer,
      METRIC_LABEL[c.metric],
      fmt(c.original),
      fmt(c.rescaled),
      signed(c.difference),
      pct(c.relativeChange),
      c.unit === 'nats/pixel' ? fmt(c.noise) : `${(c.noise * 100).toFixed(1)}%`,
      threshold,
      c.verdict === c.expected ? c.verdict : `${c.verdict} (!)`,
      expected,
    ]);
  }
  lines.push(table(rows));
  lines.push('');
  lines.push(`Rule: ${result.rule}`);
  for (const s of result.summary) {
    const label = METRIC_LABEL[s.metric];
    const changed = s.changed.length > 0 ? `; changed at ${s.changed.join(', ')}` : '';
    const tail = s.metric === 'sid' || s.metric === 'ru' ? (s.changed.length === 0 ? ' - coherent' : ' - NOT coherent') : s.asExpected ? ' - as expected' : ' - NOT as expected';
    lines.push(`${label}: unchanged at ${s.unchanged}/${s.layers} layers${changed}${tail}`);
  }
  return lines.join('\n') + '\n';
}
