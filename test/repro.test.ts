/**
 * scripts/repro/summarise.ts: aggregation of reports, the paired comparison, each finding's verdict rule (yes and
 * no cases) and the generated markdown, on small synthetic reports. No CLI, no browser.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LayerResult, PerImageResult, Report } from '../src/engine/report';
import {
  aggregateReport, damageLayers, defaultRuLayers, extractDiscussions, familyVerdicts, mergeRu, pickRuImages, highLayers, metricTable, pairedDiff, parseManifest, pickBaseline, renderMarkdown,
  similarityMargin, slug, statOf, tCritical, treatmentOrder, trendChartData, acrossVerdicts, runMeans,
  type FamilyResult, type SeedRun, type FamilySpec, type Finding, type ModelResult, type RunInfo,
} from '../scripts/repro/summarise';

const IMAGES = ['a.png', 'b.png', 'c.png', 'd.png'];
/** Per-image offsets: a large spread across images that the paired comparison removes. */
const OFFSETS = [-0.3, -0.1, 0.1, 0.3];
/** Small per-image noise so differences have a nonzero standard error. */
const JITTER = [0.004, -0.003, 0.002, -0.003];

interface LayerValues {
  sid: number;
  ru?: number;
  conc?: number;
  psnr?: number;
}

function perImage(i: number, v: LayerValues, jitter: number): PerImageResult {
  const p: PerImageResult = {
    image: i, sidMean: v.sid + OFFSETS[i] + jitter, map: [[0]], constraintRatio: 1.5, constraintRatioSe: 0.01, lambda: 0.1,
    steps: 40, saturated: 0, seconds: 1, deltaF2: 1, deltaF2RelSe: 0.01, stopReason: i === 3 ? 'maxSteps' : 'converged',
  };
  if (v.ru !== undefined) p.ruMean = v.ru + OFFSETS[i] + jitter;
  if (v.conc !== undefined) p.concentration = i === 0 ? null : v.conc + jitter;
  return p;
}

/** A report whose layer `name` has per-image values centred on the given means. */
function report(layers: Record<string, LayerValues>, seed = 0): Report {
  const jit = (i: number): number => JITTER[(i + seed) % JITTER.length];
  const ls: LayerResult[] = Object.entries(layers).map(([name, v]) => ({
    name, kind: 'Conv2D', outputShape: [4, 4, 2],
    sid: { mean: v.sid, total: 0, std: 0.2 },
    ...(v.ru !== undefined ? { ru: { mean: v.ru, total: 0, std: 0.2, decoder: { key: 'k', psnr: v.psnr ?? 20, trainLoss: 0, heldOutLoss: 0, epochs: 1, trainImages: 1, heldOutImages: 1, cached: false, seconds: 1 } } } : {}),
    perImage: IMAGES.map((_, i) => perImage(i, v, jit(i))),
  }));
  return {
    schemaVersion: 2, tool: { name: 'infodiscard', version: 't' }, createdAt: '', status: 'complete',
    model: { path: 'm.onnx', format: 'onnx', sha256: '', inputShape: [28, 28, 1] },
    settings: { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 200, seed: 1, backend: 'wasm', inputRange: null, normalize: null, sigmaGrid: null, sigmaMax: 1, learningRate: 0.05 },
    images: IMAGES.map((p) => ({ path: `imgs/${p}`, width: 28, height: 28, pixels: [], channels: 1 })),
    layers: ls, requestedLayers: Object.keys(layers), seconds: 12,
  };
}

const LAYERS = ['l1', 'l2', 'l3', 'l4'];

function family(finding: Finding, models: { name: string; x: number; role?: string; params?: number }[]): FamilySpec {
  return {
    id: `${finding}-test`, finding, title: `${finding} family`, claim: 'a claim', xLabel: finding === 'epochs' ? 'epoch' : 'x', layers: LAYERS,
    models: models.map((m) => ({ file: `${m.name}.onnx`, testAccuracy: 0.9123, notes: '', ...m })),
  };
}

/** ModelResults for a family: values(model index, layer index) gives the layer's means. */
function results(fam: FamilySpec, values: (m: number, l: number) => LayerValues): ModelResult[] {
  return fam.models.map((spec, m) => {
    const layers: Record<string, LayerValues> = {};
    LAYERS.forEach((l, li) => { layers[l] = values(m, li); });
    return { spec, layers: aggregateReport(report(layers, m), LAYERS), seconds: 10 };
  });
}

test('statOf and aggregateReport: mean and sample std over images, keyed by file name', () => {
  const s = statOf({ a: 1, b: 2, c: 3, d: 6 })!;
  assert.equal(s.mean, 3);
  assert.ok(Math.abs(s.std - Math.sqrt(14 / 3)) < 1e-12);
  assert.equal(s.min, 1);
  assert.equal(s.max, 6);
  assert.equal(statOf({ a: 5 })!.std, 0);
  assert.equal(statOf({}), null);

  const agg = aggregateReport(report({ l1: { sid: -0.5, ru: 0.2, conc: 0.1, psnr: 12 }, l2: { sid: -0.4 } }), ['l1', 'l2', 'missing']);
  assert.deepEqual(Object.keys(agg), ['l1', 'l2']);
  const sids = OFFSETS.map((o, i) => -0.5 + o + JITTER[i]);
  assert.ok(Math.abs(agg.l1.sid!.mean - sids.reduce((a, b) => a + b) / 4) < 1e-12);
  const m = sids.reduce((a, b) => a + b) / 4;
  assert.ok(Math.abs(agg.l1.sid!.std - Math.sqrt(sids.reduce((a, b) => a + (b - m) ** 2, 0) / 3)) < 1e-12);
  assert.deepEqual(Object.keys(agg.l1.sid!.perImage), IMAGES, 'keyed by image file name, not path');
  assert.equal(agg.l1.ru!.n, 4);
  assert.equal(agg.l1.ruPsnr, 12);
  assert.equal(agg.l1.concentration!.n, 3, 'images without a region (null) are left out');
  assert.equal(agg.l2.ru, null);
  assert.equal(agg.l2.concentration, null);
  assert.equal(agg.l1.maxSteps, 1);
  assert.equal(agg.l1.optimisations, 4);
});

test('mergeRu puts a separate RU run into the main aggregates; RU layers and images', () => {
  const main = aggregateReport(report({ l1: { sid: -0.5, conc: 0.1 }, l2: { sid: -0.4, conc: 0.2 } }), ['l1', 'l2']);
  const ru = aggregateReport(report({ l2: { sid: -0.4, ru: 0.3, psnr: 18 } }), ['l1', 'l2']);
  const merged = mergeRu(main, ru);
  assert.equal(merged.l1.ru, null);
  assert.ok(Math.abs(merged.l2.ru!.mean - (0.3 + JITTER.reduce((a, b) => a + b) / 4)) < 1e-12);
  assert.equal(merged.l2.ruPsnr, 18);
  assert.equal(merged.l2.concentration!.n, 3, 'main run values kept');
  assert.equal(main.l2.ru, null, 'inputs untouched');
  const spec = (layers: string[], extra: Partial<FamilySpec> = {}): FamilySpec => ({ id: 'f', finding: 'depth', title: '', claim: '', xLabel: 'x', layers, models: [], ...extra });
  assert.deepEqual(defaultRuLayers(spec(['stem', 'stage1', 'stage2', 'stage3', 'gap'], { focusLayer: 'stage3' })), ['stage3']);
  assert.deepEqual(defaultRuLayers(spec(['a', 'b', 'c'])), ['c'], 'no focus layer: the last');
  assert.deepEqual(defaultRuLayers(spec(['a', 'b'], { ruLayers: ['a', 'zz'] })), ['a'], 'the manifest decides; unknown names dropped');
  assert.deepEqual(pickRuImages(['h', 'g', 'f', 'e', 'd', 'c', 'b', 'a']), ['a', 'c', 'e', 'g'], 'every other of the sorted list');
  assert.deepEqual(pickRuImages(['b', 'a', 'c']), ['a', 'b', 'c']);
  assert.deepEqual(pickRuImages(['a', 'b', 'c', 'd', 'e', 'f']), ['a', 'b', 'd', 'e']);
});

test('pairedDiff: paired over shared images, clear only beyond t·SE', () => {
  const a = statOf({ a: 0, b: 1, c: 2, d: 3 });
  const b = statOf({ a: 0.1, b: 1.12, c: 2.09, d: 3.11, e: 9 });
  const d = pairedDiff(a, b)!;
  assert.equal(d.n, 4, 'only images both have');
  assert.ok(Math.abs(d.mean - 0.105) < 1e-12);
  assert.equal(d.tCrit, tCritical(3));
  assert.equal(d.clear, true, 'consistent small shift is clear despite the large spread across images');
  const noisy = pairedDiff(a, statOf({ a: 0.5, b: 0.6, c: 2.4, d: 3.1 }))!;
  assert.equal(noisy.clear, false);
  assert.equal(pairedDiff(statOf({ a: 1 }), statOf({ a: 2 }))!.clear, false, 'one image: never clear');
  assert.equal(pairedDiff(statOf({ a: 1 }), statOf({ z: 2 })), null);
  assert.equal(pairedDiff(null, a), null);
  // Student's t, two-sided 5 % (SciPy: t.ppf(0.975, df)); no jump to 1.96 after 30 df.
  assert.ok(Math.abs(tCritical(7) - 2.364624) < 1e-5);
  assert.ok(Math.abs(tCritical(40) - 2.021075) < 1e-5);
  assert.ok(Math.abs(tCritical(100) - 1.983972) < 1e-5);
  assert.equal(tCritical(0), Infinity);
});

test('parseManifest: validates and fills defaults; slug', () => {
  const m = parseManifest({ families: [{ id: 'depth-resnet', finding: 'depth', layers: ['a'], models: [{ name: 'R8', file: 'r.onnx', x: 8 }] }] });
  assert.equal(m.families[0].xLabel, 'x');
  assert.equal(m.families[0].title, 'depth-resnet');
  assert.throws(() => parseManifest({ families: [{ id: 'a b', finding: 'speed', layers: [], models: [{ name: 'n', file: 'f' }] }] }), /id must be.*finding must be.*layers must be.*numeric "x"/);
  assert.throws(() => parseManifest({}), /families/);
  assert.equal(slug('ResNet-20 (damaged @ stage 2)'), 'resnet-20-damaged-stage-2');
});

test('depth (trend, up): reproduces when SID rises with depth at most layers; not when it falls', () => {
  const fam = family('depth', [{ name: 'R8', x: 8 }, { name: 'R20', x: 20 }, { name: 'R14', x: 14 }]);
  const depthOf = (m: number): number => fam.models[m].x;
  const up = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + 0.01 * depthOf(m), ru: 0.1 + 0.01 * depthOf(m), conc: 0.05 + 0.005 * depthOf(m) }));
  const v = familyVerdicts(fam, up);
  assert.deepEqual(v.map((x) => [x.metric, x.level]), [['sid', 'reproduces'], ['ru', 'reproduces'], ['concentration', 'reproduces']]);
  assert.match(v[0].text, /^Reproduces: SID higher in deeper networks at 4 of 4 layers/);
  assert.match(v[0].text, /At l4, SID over x 8 → 14 → 20: −0\.\d{3} → −0\.\d{3} → −0\.\d{3}/, 'ordered by x, with the values');
  assert.match(v[0].text, /image spread ±0\.\d{3}/);
  assert.deepEqual(treatmentOrder(fam, up).map((r) => r.spec.name), ['R8', 'R14', 'R20']);

  const down = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l - 0.01 * depthOf(m) }));
  const vd = familyVerdicts(fam, down);
  assert.equal(vd[0].level, 'does-not-reproduce');
  assert.ok(vd[0].tests.every((t) => t.outcome === 'disagrees'));
  assert.deepEqual(vd.slice(1).map((x) => [x.metric, x.level]), [['ru', 'not-measured'], ['concentration', 'not-measured']], 'the claim names RU and concentration: say they were not measured');

  const flat = results(fam, (_m, l) => ({ sid: -0.6 + 0.1 * l }));
  assert.equal(familyVerdicts(fam, flat)[0].level, 'does-not-reproduce', 'no clear difference is not a reproduction');

  // Rises overall but falls clearly from R14 to R20 at every layer: not counted as agreeing.
  const bumpy = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + [0, 0.1, 0.2][m] })); // R8, R20, R14
  const vb = familyVerdicts(fam, bumpy)[0];
  assert.equal(vb.level, 'does-not-reproduce');
  assert.match(vb.tests[0].result, /clearly against at R14 → R20/);

  // Half the layers rise, the others flat: still reproduces; one clearly against: partly.
  const half = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + (l >= 2 ? 0.01 * depthOf(m) : 0) }));
  assert.equal(familyVerdicts(fam, half)[0].level, 'reproduces');
  const mixed = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + (l >= 1 ? 0.01 : l === 0 ? -0.01 : 0) * depthOf(m) }));
  assert.equal(familyVerdicts(fam, mixed)[0].level, 'partly');
});

test('RU of layers with a poor decoder is left out of the verdict', () => {
  const fam = family('depth', [{ name: 'R8', x: 8 }, { name: 'R20', x: 20 }]);
  const r = results(fam, (m, l) => ({ sid: -0.5, ru: 0.1 + 0.1 * m, psnr: l === 0 ? 10 : 20 }));
  const ru = familyVerdicts(fam, r).find((v) => v.metric === 'ru')!;
  assert.equal(ru.tests[0].outcome, 'missing');
  assert.match(ru.tests[0].result, /PSNR < 15 dB/);
  assert.match(ru.text, /at 3 of 3 layers/);
  assert.match(metricTable(fam, r, 'ru'), /⚠/);
  const allPoor = results(fam, (m) => ({ sid: -0.5, ru: 0.1 + 0.1 * m, psnr: 11 }));
  const v = familyVerdicts(fam, allPoor).find((x) => x.metric === 'ru')!;
  assert.equal(v.level, 'not-measured');
  assert.match(v.text, /RU was measured, but every comparison involves a decoder below 15 dB/);
});

test('damage (baseline, up): damaged networks discard more than the original', () => {
  const fam = family('damage', [{ name: 'R20 damaged', x: 1 }, { name: 'R20', x: 0, role: 'original' }, { name: 'R20 damaged late', x: 2 }]);
  assert.equal(pickBaseline(fam, results(fam, () => ({ sid: 0 })))!.spec.name, 'R20', 'by role, not by order');
  const yes = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + (m === 1 ? 0 : 0.05) }));
  const v = familyVerdicts(fam, yes);
  assert.equal(v.length, 1, 'RU is not named by the claim and was not measured: no RU line');
  assert.equal(v[0].level, 'reproduces');
  assert.match(v[0].text, /higher in the damaged networks than in R20 at 8 of 8 \(model, layer\) pairs/);
  const no = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + (m === 1 ? 0.05 : 0) }));
  assert.equal(familyVerdicts(fam, no)[0].level, 'does-not-reproduce');
  // With a focus layer only it and the later layers count (the block lies upstream of them); the rest is shown.
  const focused = { ...fam, focusLayer: 'l3' };
  assert.deepEqual(damageLayers(focused), ['l3', 'l4']);
  assert.deepEqual(damageLayers({ ...focused, finding: 'distillation' }), LAYERS);
  const late = results(focused, (m, l) => ({ sid: -0.5 + 0.1 * l + (m !== 1 && l >= 2 ? 0.05 : 0) }));
  const vl = familyVerdicts(focused, late)[0];
  assert.equal(vl.level, 'reproduces');
  assert.match(vl.text, /at 4 of 4 \(model, layer\) pairs/);
  assert.match(vl.tests.find((t) => t.layer === 'l1')!.result, /not counted/);
  // Without a role the smallest x is the baseline.
  const noRole = family('damage', [{ name: 'B', x: 3 }, { name: 'A', x: 0 }]);
  assert.equal(pickBaseline(noRole, results(noRole, () => ({ sid: 0 })))!.spec.name, 'A');
});

test('distillation (baseline, down): the teacher is left out; distilled students lower', () => {
  const fam = family('distillation', [{ name: 'teacher', x: 2, role: 'teacher' }, { name: 'student', x: 0, role: 'scratch' }, { name: 'student KD', x: 1, role: 'distilled' }]);
  const yes = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + [0.5, 0, -0.04][m] }));
  const v = familyVerdicts(fam, yes)[0];
  assert.equal(v.level, 'reproduces');
  assert.ok(v.tests.every((t) => t.comparison === 'student → student KD'), 'teacher never compared');
  const no = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + [0.5, 0, 0.04][m] }));
  assert.equal(familyVerdicts(fam, no)[0].level, 'does-not-reproduce');
});

test('compression (trend down for SID; RU and concentration similar)', () => {
  const fam = family('compression', [{ name: 'pruned 80%', x: 0.8, params: 2000 }, { name: 'dense', x: 0, params: 10000 }, { name: 'pruned 50%', x: 0.5, params: 5000 }]);
  assert.deepEqual(treatmentOrder(fam, results(fam, () => ({ sid: 0 }))).map((r) => r.spec.name), ['dense', 'pruned 50%', 'pruned 80%'], 'fewest parameters last');
  const amount = [0.8, 0, 0.5];
  const yes = results(fam, (m, l) => ({ sid: -0.5 + 0.2 * l - 0.1 * amount[m], ru: 0.2 * l + 0.001 * m, conc: 0.4 * l }));
  const v = familyVerdicts(fam, yes);
  assert.deepEqual(v.map((x) => [x.metric, x.check.kind, x.level]), [['sid', 'trend', 'reproduces'], ['ru', 'similar', 'reproduces'], ['concentration', 'similar', 'reproduces']]);
  assert.match(v[1].text, /similar to dense \(within ±0\.150 nats/);
  const no = results(fam, (m, l) => ({ sid: -0.5 + 0.2 * l + 0.1 * amount[m], ru: 0.2 * l + 0.5 * amount[m], conc: 0.4 * l }));
  const vn = familyVerdicts(fam, no);
  assert.equal(vn[0].level, 'does-not-reproduce');
  assert.equal(vn[1].level, 'does-not-reproduce', 'RU clearly moved beyond the margin');
  assert.equal(vn[2].level, 'reproduces');
});

test('task (similar): classification vs reconstruction SID within a quarter of the layer range', () => {
  const fam = family('task', [{ name: 'classifier', x: 0 }, { name: 'autoencoder', x: 1 }]);
  const yes = results(fam, (m, l) => ({ sid: -0.8 + 0.2 * l + 0.02 * m }));
  const base = pickBaseline(fam, yes)!;
  assert.ok(Math.abs(similarityMargin(base, LAYERS, 'sid') - 0.15) < 1e-9);
  assert.equal(familyVerdicts(fam, yes)[0].level, 'reproduces');
  const no = results(fam, (m, l) => ({ sid: -0.8 + 0.2 * l + 0.4 * m }));
  assert.equal(familyVerdicts(fam, no)[0].level, 'does-not-reproduce');
  // Minimum margin 0.02 when the layers barely differ.
  assert.equal(similarityMargin(base, ['l1'], 'sid'), 0.02);
});

test('epochs (ib): fall then rise in the high layers reproduces; a rise alone is partial; a fall alone is not', () => {
  const fam = family('epochs', [{ name: 'e1', x: 1 }, { name: 'e5', x: 5 }, { name: 'e20', x: 20 }]);
  assert.deepEqual(highLayers(LAYERS), ['l3', 'l4']);
  assert.deepEqual(highLayers(['a', 'b', 'c', 'd', 'e']), ['c', 'd', 'e']);
  assert.deepEqual(highLayers(['a']), ['a']);
  const ib = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + [0, -0.1, 0.05][m] }));
  const v = familyVerdicts(fam, ib)[0];
  assert.equal(v.level, 'reproduces');
  assert.deepEqual(v.tests.map((t) => t.layer), ['l3', 'l4'], 'high layers only');
  assert.match(v.tests[0].result, /^fall then rise \(minimum at epoch 5/);
  assert.match(v.text, /over epoch 1 → 5 → 20/);
  const rise = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + [0, 0.05, 0.1][m] }));
  const vr = familyVerdicts(fam, rise)[0];
  assert.equal(vr.level, 'partly');
  assert.match(vr.tests[0].result, /^rise only/);
  const fall = results(fam, (m, l) => ({ sid: -0.5 + 0.1 * l + [0, -0.05, -0.1][m] }));
  const vf = familyVerdicts(fam, fall)[0];
  assert.equal(vf.level, 'does-not-reproduce');
  assert.match(vf.tests[0].result, /^fall only/);
});

test('failed models are shown but not compared; trend chart data in treatment order', () => {
  const fam = family('depth', [{ name: 'R8', x: 8 }, { name: 'R14', x: 14 }, { name: 'R20', x: 20 }]);
  const r = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + 0.05 * m, ru: 0.1 * m }));
  r[2] = { spec: r[2].spec, layers: {}, error: 'boom' };
  const v = familyVerdicts(fam, r)[0];
  assert.ok(v.tests.every((t) => t.comparison === 'R8 → R14'));
  const chart = trendChartData(fam, r)!;
  assert.deepEqual(chart.labels, ['8', '14']);
  assert.equal(chart.layer, 'l4');
  assert.deepEqual(chart.lines.map((l) => l.metric), ['sid', 'ru']);
  assert.equal(trendChartData(family('damage', [{ name: 'a', x: 0 }, { name: 'b', x: 1 }]), r), null, 'no x trend for damage');
});

test('renderMarkdown: sections, tables, verdict lines, discussion blocks kept', () => {
  const fam = family('depth', [{ name: 'R8', x: 8 }, { name: 'R20', x: 20 }]);
  const models = results(fam, (m, l) => ({ sid: -0.6 + 0.1 * l + 0.05 * m, conc: 0.1 }));
  models[1].reused = true;
  models[1].spec = { ...models[1].spec, testAccuracy: 0.96 };
  const fams: FamilyResult[] = [
    { spec: fam, models, chart: 'repro/depth-test.png', note: 'Images: 4.', seconds: 20 },
    { spec: { ...family('epochs', []), id: 'epochs-keras-mnist' }, models: [], chart: null, note: 'Skipped: no data.', skipped: true, seconds: 0 },
  ];
  const run: RunInfo = {
    date: '2025-01-01T00:00:00Z', command: 'npm run repro', totalSeconds: 125, analysisSeconds: 20, reused: 1, machine: 'cpu × 2', node: '20', backend: 'wasm',
    commit: 'abc', ru: false, settings: ['SID: α = 1.5'], manifest: 'media/families/manifest.json', failures: ['x/y: boom'],
  };
  const md = renderMarkdown(run, fams, { depth: 'Kept prose.' });
  assert.match(md, /^# Reproducing the paper's experiments/);
  assert.match(md, /npm run repro -- --no-ru/);
  assert.match(md, /wall time of this run: 2 min 05 s \(RU skipped: --no-ru\), 1 report reused/);
  assert.match(md, /## depth: Deeper networks discard more/);
  assert.match(md, /> "A deep DNN usually had higher SID, RU, and concentration values than a shallow DNN\."/);
  assert.match(md, /!\[depth family: SID per layer, one line per model\]\(repro\/depth-test\.png\)/);
  assert.match(md, /\| model \| x \| role \| test accuracy \| parameters \| analysis \| notes \|/);
  assert.match(md, /\| R8 \| 8 \| {2}\| 91\.23 % \| — \| 10 s \|/);
  assert.match(md, /\| R20 \| 20 \| {2}\| 96 % \| — \| 10 s \(earlier run\) \|/, 'a two-digit accuracy keeps its precision');
  assert.match(md, /\| model \| l1 \| l2 \| l3 \| l4 \|/);
  assert.match(md, /\| R8 \| −0\.\d{3} ± 0\.\d{3} \|/, 'mean ± std cells');
  assert.match(md, /Concentration per layer/);
  assert.match(md, /\*\*Verdict \(SID, rule: trend\)\.\*\* Reproduces: /);
  assert.match(md, /\*\*Verdict \(RU, rule: trend\)\.\*\* Not measured/);
  assert.match(md, /\| depth \| depth family \| Fig\. 3 \| \*\*Reproduces\*\* \|/);
  assert.match(md, /\| epochs \| epochs family \| Fig\. 5\(b\) \| skipped \|/);
  assert.match(md, /Skipped: no data\./);
  assert.match(md, /### Failures\n\n- x\/y: boom/);
  assert.match(md, /<!-- discussion:depth -->\nKept prose\.\n<!-- \/discussion:depth -->/);
  assert.match(md, /<!-- discussion:epochs -->\n\n?<!-- \/discussion:epochs -->/);
  assert.match(md, /8 of 32 SID optimisations stopped at the step limit/);
  assert.deepEqual(extractDiscussions(md), { depth: 'Kept prose.', epochs: '' });
  // Round trip: generating again from the generated file keeps the prose.
  assert.equal(extractDiscussions(renderMarkdown(run, fams, extractDiscussions(md))).depth, 'Kept prose.');
});

// ---------------------------------------------------------------------------------------------------------------
// Across training runs (--seeds N)

/** A depth family's three seeds: the deepest model's SID exceeds the shallowest's by effects[seed] at every layer. */
function depthRuns(effects: number[]): { fam: FamilySpec; runs: SeedRun[] } {
  const fam = family('depth', [{ name: 'd8', x: 8 }, { name: 'd14', x: 14 }, { name: 'd20', x: 20 }]);
  const runs = effects.map((e, k) => ({
    seed: k + 1,
    // A run offset (0.5·k) shared by its models: the run-to-run level change the paired effects remove.
    models: results(fam, (m, l) => ({ sid: -1 + 0.1 * l + 0.5 * k + (m / 2) * e })).map((r) => ({ ...r, spec: { ...r.spec, testAccuracy: 0.9 + 0.01 * k } })),
  }));
  return { fam, runs };
}

test('across runs: an effect that holds in every seed reproduces; one inside the run-to-run spread does not', () => {
  const good = depthRuns([0.3, 0.25, 0.35]);
  const v = acrossVerdicts(good.fam, good.runs).find((x) => x.metric === 'sid')!;
  assert.equal(v.level, 'reproduces', v.text);
  assert.equal(v.nRuns, 3);
  const t = v.tests.find((x) => x.layer === 'l4')!;
  assert.equal(t.across!.test, 'paired-t');
  assert.ok(Math.abs(t.across!.estimate - 0.3) < 0.01, `Δ ${t.across!.estimate}`);
  assert.ok(Math.abs(t.across!.runSD - 0.05) < 0.01, `run SD ${t.across!.runSD}`);
  assert.ok(t.across!.lo > 0);
  assert.match(v.text, /^Reproduces across 3 runs: SID higher in deeper networks/);
  // Seed 1 alone is clear (+0.4, image noise ~0.004), but the seeds disagree: +0.4, −0.3, +0.05.
  const shaky = depthRuns([0.4, -0.3, 0.05]);
  assert.equal(familyVerdicts(shaky.fam, shaky.runs[0].models).find((x) => x.metric === 'sid')!.level, 'reproduces', 'single run says yes');
  const across = acrossVerdicts(shaky.fam, shaky.runs).find((x) => x.metric === 'sid')!;
  assert.equal(across.level, 'does-not-reproduce', across.text);
  assert.ok(across.tests.every((x) => x.outcome === 'neutral' && /interval contains 0/.test(x.result)));
  // Consistently against the claim: disagrees.
  const against = depthRuns([-0.3, -0.25, -0.35]);
  assert.equal(acrossVerdicts(against.fam, against.runs)[0].tests[0].outcome, 'disagrees');
});

test('across runs: RU comparisons left out for decoders below 15 dB say so, per layer and in the verdict', () => {
  const fam = family('depth', [{ name: 'd8', x: 8 }, { name: 'd14', x: 14 }, { name: 'd20', x: 20 }]);
  // The deepest model's decoder is poor in every run at l1; at l2 only in seed 2 (two good runs remain there).
  const runs: SeedRun[] = [0, 1, 2].map((k) => ({
    seed: k + 1,
    models: results(fam, (m, l) => ({ sid: -1 + 0.1 * m, ru: -0.8 + 0.1 * m + 0.01 * k, psnr: m === 2 && (l === 0 || (l === 1 && k === 1)) ? 14 : 20 })),
  }));
  const ru = acrossVerdicts(fam, runs).find((x) => x.metric === 'ru')!;
  const l1 = ru.tests.find((t) => t.layer === 'l1')!;
  assert.equal(l1.outcome, 'missing');
  assert.equal(l1.result, 'RU decoder PSNR < 15 dB in 3 of 3 runs');
  const l2 = ru.tests.find((t) => t.layer === 'l2')!;
  assert.equal(l2.across!.nRuns, 2, 'seed 2 left out at l2');
  assert.notEqual(l2.outcome, 'missing');
  const allPoor = runs.map((r) => ({ ...r, models: results(fam, (m) => ({ sid: -1, ru: -0.8 + 0.1 * m, psnr: m === 2 ? 14 : 20 })) }));
  const none = acrossVerdicts(fam, allPoor).find((x) => x.metric === 'ru')!;
  assert.equal(none.level, 'not-measured');
  assert.match(none.text, /no RU comparison with two or more runs \(l\d, d8 → d20: RU decoder PSNR < 15 dB in 3 of 3 runs; such RU measures the decoder more than the layer\)\.$/);
});

test('across runs: run means, trend chart bars = SD across runs, markdown with both views', () => {
  const { fam, runs } = depthRuns([0.3, 0.25, 0.35]);
  const means = runMeans(fam, runs, 'sid');
  const d20 = means.find((m) => m.model === 'd20' && m.layer === 'l1')!;
  // Means over images per run: −1 + 0.5k + e_k (the image offsets average to 0; jitter ≈ 0).
  assert.ok(Math.abs(d20.mean - (-1 + 0.5 + 0.3)) < 0.01, `${d20.mean}`);
  assert.equal(d20.n, 3);
  const chart = trendChartData(fam, runs[0].models, runs)!;
  assert.deepEqual(chart.spread, { over: 'runs', runs: 3 });
  const sd = chart.lines[0].std[2]!;
  const expected = Math.sqrt([0.3, 0.5 + 0.25, 1 + 0.35].reduce((a, x, _i, xs) => a + (x - xs.reduce((p, q) => p + q, 0) / 3) ** 2, 0) / 2);
  assert.ok(Math.abs(sd - expected) < 0.01, `bar ${sd} vs ${expected}`);
  assert.deepEqual(trendChartData(fam, runs[0].models)!.spread, { over: 'images' });
  const fams: FamilyResult[] = [{ spec: fam, models: runs[0].models, chart: null, seconds: 30, across: runs }];
  const run: RunInfo = {
    date: '2025-01-01T00:00:00Z', command: 'npm run repro -- --seeds 3', totalSeconds: 125, analysisSeconds: 20, reused: 0, machine: 'cpu × 2', node: '20', backend: 'wasm',
    commit: 'abc', ru: false, settings: [], manifest: 'media/families/manifest.json', failures: [],
  };
  const md = renderMarkdown(run, fams);
  assert.match(md, /\| finding \| family \| paper \| verdict across runs \(SID\) \| runs \|/);
  assert.match(md, /\| depth \| depth family \| [^|]+ \| \*\*Reproduces\*\* \| 3 \|/);
  assert.match(md, /#### Across 3 training runs \(seeds 1, 2, 3\)\n\nTest accuracy over the runs \(mean ± SD\): d8 91\.00 ± 1\.00 %/);
  assert.match(md, /#### Single run \(seed 1\)/);
  assert.match(md, /\*\*Verdict across runs \(SID, rule: trend\)\.\*\* Reproduces across 3 runs/);
  assert.match(md, /\| l4 \| d8 → d20 \| paired t \| 3 \| \+0\.300 \| \[\+0\.\d{3}, \+0\.\d{3}\] \| 0\.050 \|/);
  assert.match(md, /\*\*Across runs\*\* \(`--seeds N`/);
  // One run: today's document, no across-run columns.
  assert.doesNotMatch(renderMarkdown(run, [{ ...fams[0], across: undefined }]), /verdict across runs|#### Across|Single run/);
});
