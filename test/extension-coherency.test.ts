/**
 * "Check Coherency (Rescale a Conv Pair)…" with the mocked VS Code: a pool that answers like the worker drives the
 * flow (model, images, a pick of the rescalable conv layers, baselines added to the metrics, files under the reports
 * folder's coherency/, a cancellable progress, the compare panel with "original" and "rescaled (first/4, second×4)",
 * the verdict notification with the table and the JSON a click away), bad input gives one line naming the file,
 * a cancel is quiet; then once end to end with the real worker.
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import { activate } from '../src/extension/main';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import type { AnalysisEvent } from '../src/engine/events';
import type { Report } from '../src/engine/report';
import { writeReport } from '../src/engine/reportFile';
import type { CoherencyOutcome, CoherencyParams, CoherencyPhase, LayersParams, ModelLayers, ToWebview } from '../src/protocol';
import { coherencySummaryText } from '../src/extension/coherencyCommand';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import { AnalysisError, type CoherencyHandlers, type CoherencyRunResult, type LayersResult } from '../src/worker/client';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { sampleReport } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const ws = tempDir('infodiscard-ext-coherency-');
const reports = path.join(ws, '.infodiscard');
let modelPath: string;
let ctx: Ctx;

const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  modelPath = await saveLayersModel(reluConvNet(8, 1), path.join(ws, 'models', 'net-c'));
  mkdirSync(path.join(ws, 'images'));
  [0, 1].forEach((i) => writeGrayPng(path.join(ws, 'images', `x${i}.png`), 8, 8, (x, y) => ((x + 2 * y + 5 * i) % 21) / 21));
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

function configure(extra: Record<string, unknown> = {}): void {
  mock.config.clear();
  for (const [k, v] of Object.entries({ images: 'images', backend: 'wasm', maxSteps: 10, samplesPerStep: 4, ...extra })) mock.config.set(`infodiscard.${k}`, v);
}

const LAYERS: ModelLayers = {
  modelPath: '',
  format: 'tfjs-layers',
  input: { height: 8, width: 8, channels: 1 },
  layers: [
    { name: 'conv1', kind: 'Conv2D', outputShape: [8, 8, 4], conv: true, rescale: { second: 'conv2', between: ['relu1'] } },
    { name: 'relu1', kind: 'ReLU', outputShape: [8, 8, 4], conv: false },
    { name: 'conv2', kind: 'Conv2D', outputShape: [4, 4, 2], conv: true, rescale: { second: 'dense', between: [] } },
    { name: 'dense', kind: 'Dense', outputShape: [3], conv: false },
    { name: 'conv3', kind: 'Conv2D', outputShape: [4, 4, 2], conv: true, notRescalable: 'cannot rescale "conv3": its output is a model output, so no conv layer follows it; choose an earlier conv layer' },
  ],
};

const OUTCOME: CoherencyOutcome = {
  rescale: { first: 'conv1', second: 'conv2', between: ['relu1'], factor: 4 },
  outputCheck: { layer: 'dense', images: 2, maxAbsDiff: 1e-7, maxAbsOutput: 1, relativeDiff: 1e-7, tolerance: 1e-4, passed: true },
  summary: [
    { metric: 'sid', layers: 3, unchanged: 3, changed: [], asExpected: true },
    { metric: 'gradNorm', layers: 3, unchanged: 1, changed: ['conv1', 'relu1'], asExpected: true },
  ],
  coherent: true,
  seconds: 1.5,
  table: 'Coherency check of net-c\nlayer  metric  ...\nSID: unchanged at 3/3 layers - coherent\n',
};

/** A pool that answers like the worker: a layer list, and a coherency check that writes its three files. */
function fakePool(options: { layers?: ModelLayers | Error; coherency?: (p: CoherencyParams, h: CoherencyHandlers) => Promise<CoherencyRunResult> } = {}) {
  const calls = { layers: [] as LayersParams[], coherency: [] as CoherencyParams[] };
  const pool = {
    pids: [] as number[],
    async dispose() {},
    async listLayers(params: LayersParams): Promise<LayersResult> {
      calls.layers.push(params);
      const l = options.layers ?? LAYERS;
      if (l instanceof Error) throw l;
      return { status: 'complete', model: { ...l, modelPath: params.modelPath } };
    },
    async runCoherency(params: CoherencyParams, handlers: CoherencyHandlers): Promise<CoherencyRunResult> {
      calls.coherency.push(params);
      if (options.coherency) return options.coherency(params, handlers);
      const reportsOut: Report[] = [];
      handlers.onPhase?.('check');
      for (const which of ['original', 'rescaled'] as const) {
        handlers.onPhase?.(which);
        const r = sampleReport();
        r.model = { ...r.model, path: params.modelPath, sha256: (await ctx.store.modelHash(params.modelPath))! };
        r.settings = { ...params.settings, backend: 'wasm' };
        const emit = (e: AnalysisEvent) => handlers.onEvent?.(e, which);
        emit({ type: 'started', layers: r.requestedLayers, images: 2, backend: 'wasm' });
        r.layers.forEach((result, index) => {
          emit({ type: 'layerStarted', layer: result.name, index, total: 3 });
          emit({ type: 'layerDone', layer: result.name, index, total: 3, result });
        });
        emit({ type: 'done', report: r });
        reportsOut.push(r);
      }
      writeReport(params.originalReportPath, reportsOut[0]);
      writeReport(params.rescaledReportPath, reportsOut[1]);
      mkdirSync(path.dirname(params.resultPath), { recursive: true });
      writeReport(params.resultPath, { kind: 'infodiscard-coherency' } as unknown as Report);
      const { resultPath, originalReportPath, rescaledReportPath } = params;
      return { status: 'complete', resultPath, originalReportPath, rescaledReportPath, outcome: OUTCOME };
    },
  };
  return { pool, calls };
}

async function withPool<T>(pool: unknown, fn: () => Promise<T>): Promise<T> {
  const real = ctx.pool;
  ctx.pool = (() => pool) as unknown as typeof ctx.pool;
  try {
    return await fn();
  } finally {
    ctx.pool = real;
  }
}

/** Answers the layer pick with `layer` (and records the items); other quick picks are dismissed. */
function pickLayer(layer: string | undefined, seen: { items: { label: string; description?: string; detail?: string }[]; options?: unknown }) {
  mock.answer.quickPick = (items, options) => {
    seen.items = items as typeof seen.items;
    seen.options = options;
    return seen.items.find((i) => i.label === layer);
  };
}

test('the verdict line: SID and RU as coherent or not, magnitudes against theory, a changed output flagged', () => {
  assert.equal(coherencySummaryText(OUTCOME), 'Coherency: SID unchanged at 3/3 layers; gradient norm changed at 2 layers as expected');
  const bad: Pick<CoherencyOutcome, 'summary' | 'outputCheck'> = {
    outputCheck: { ...OUTCOME.outputCheck, passed: false, relativeDiff: 0.02 },
    summary: [
      { metric: 'sid', layers: 7, unchanged: 6, changed: ['conv4'], asExpected: false },
      { metric: 'ru', layers: 7, unchanged: 7, changed: [], asExpected: true },
      { metric: 'gradNorm', layers: 7, unchanged: 5, changed: ['conv1', 'pool1'], asExpected: true },
      { metric: 'gradCam', layers: 7, unchanged: 7, changed: [], asExpected: true },
      { metric: 'cam', layers: 1, unchanged: 1, changed: [], asExpected: false },
    ],
  };
  assert.equal(
    coherencySummaryText(bad),
    'Coherency: SID changed at 1 of 7 layers (conv4): not coherent; RU unchanged at 7/7 layers; gradient norm changed at 2 layers as expected; ' +
      'Grad-CAM unchanged at 7/7 layers as expected; CAM unchanged at 1/1 layers not as expected; ' +
      'but the rescale changed the network output (relative difference 0.020 > 0.0001), so this is no coherency check',
  );
});

test('the command flow: rescalable layers picked, baselines added, files under coherency/, progress, compare panel, verdict with table and JSON', async () => {
  configure();
  mock.messages.length = 0;
  mock.log.length = 0;
  const { pool, calls } = fakePool();
  const seen: Parameters<typeof pickLayer>[1] = { items: [] };
  pickLayer('conv1', seen);
  mock.answer.message = (_m, buttons) => (buttons.includes('Show Table') ? 'Show Table' : undefined);
  await withPool(pool, () => run('infodiscard.checkCoherency', Uri.file(modelPath)));
  await tick();

  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  assert.deepEqual(calls.layers, [{ modelPath, backend: 'wasm' }]);
  // Only the rescalable conv layers, with kind, shape and partner.
  assert.deepEqual(seen.items.map((i) => [i.label, i.description]), [['conv1', 'Conv2D [8, 8, 4]'], ['conv2', 'Conv2D [4, 4, 2]']]);
  assert.equal(seen.items[0].detail, 'kernel and bias /4; "conv2" kernel ×4, through relu1');
  assert.match(String((seen.options as { title?: string }).title), /coherency check of net-c/);

  assert.equal(calls.coherency.length, 1);
  const p = calls.coherency[0];
  assert.equal(p.modelPath, modelPath);
  assert.equal(p.first, 'conv1');
  assert.equal(p.factor, 4);
  assert.deepEqual(p.settings.metrics, ['sid', 'baselines'], 'baselines added although the setting is empty');
  assert.equal(p.settings.maxSteps, 10);
  assert.deepEqual(p.images, [0, 1].map((i) => path.join(ws, 'images', `x${i}.png`)));
  for (const f of [p.resultPath, p.originalReportPath, p.rescaledReportPath]) assert.equal(path.dirname(f), path.join(reports, 'coherency'));
  assert.match(path.basename(p.resultPath), /^net-c-[0-9a-f]{12}-[0-9a-f]{10}-base[0-9a-f]{6}-conv1-x4-result\.json$/);
  assert.equal(p.originalReportPath, p.resultPath.replace(/-result\.json$/, '-original.json'));
  assert.equal(p.rescaledReportPath, p.resultPath.replace(/-result\.json$/, '-rescaled.json'));
  assert.equal(p.decoderCacheDir, undefined, 'no RU, no decoder cache');
  const log = mock.log.join('\n');
  assert.match(log, /net-c: coherency: measuring the baselines \(gradient norm, Grad-CAM, CAM\) too, although "infodiscard\.metrics" does not list them: the paper's point is that gradient and CAM magnitudes change under the rescale while SID and RU do not/);
  assert.match(log, /net-c: coherency: checking that the rescale leaves the network output unchanged/);
  assert.match(log, /net-c \(rescaled\): \[3\/3\] dense_<\/script>_2 \(Dense\): SID/);
  assert.match(log, /net-c: coherency check complete in [\d.]+ s -> .*-result\.json/);
  assert.match(log, /net-c: coherency table:\nCoherency check of net-c/);

  // Progress: one cancellable notification, six layer increments adding to 100.
  const progress = mock.progress.find((x) => x.options.title?.startsWith('Coherency of'))!;
  assert.equal(progress.options.title, 'Coherency of net-c: conv1/4, conv2×4');
  assert.equal(progress.options.cancellable, true);
  const increments = progress.reports.filter((r) => r.increment).map((r) => r.increment!);
  assert.equal(increments.length, 6);
  assert.ok(Math.abs(increments.reduce((a, b) => a + b, 0) - 100) < 1e-9);
  assert.ok(progress.reports.some((r) => r.message === 'original: conv2d_1 (1/3)'));
  assert.ok(progress.reports.some((r) => r.message === 'analysing the rescaled model'));

  // The compare panel: original and rescaled, labelled.
  const panel = mock.panels[mock.panels.length - 1];
  assert.equal(panel.title, 'Compare: original vs rescaled (conv1/4, conv2×4)');
  panel.receive({ type: 'ready' });
  await tick();
  const compare = (panel.webview.posted as ToWebview[]).filter((m) => m.type === 'compare').pop() as Extract<ToWebview, { type: 'compare' }>;
  assert.deepEqual(compare.series.map((s) => [s.label, s.source]), [['original', p.originalReportPath], ['rescaled (conv1/4, conv2×4)', p.rescaledReportPath]]);

  // The verdicts, and the table in an untitled document.
  const info = mock.messages.filter((m) => m.level === 'info');
  assert.equal(info.length, 1);
  assert.equal(info[0].message, 'infodiscard: Coherency: SID unchanged at 3/3 layers; gradient norm changed at 2 layers as expected');
  assert.deepEqual(info[0].items, ['Show Table', 'Open JSON']);
  assert.deepEqual(mock.documents, [{ content: OUTCOME.table, language: 'plaintext' }]);
  assert.equal(mock.shownDocuments.length, 1);

  // Again, from the active editor, with "Open JSON": the same files, the same panel revealed.
  mock.activeTextEditor = { document: { uri: Uri.file(modelPath) } };
  mock.answer.message = (_m, buttons) => (buttons.includes('Open JSON') ? 'Open JSON' : undefined);
  const panels = mock.panels.length;
  await withPool(pool, () => run('infodiscard.checkCoherency'));
  await tick();
  mock.activeTextEditor = undefined;
  assert.equal(calls.coherency.length, 2);
  assert.equal(calls.coherency[1].resultPath, p.resultPath);
  assert.equal(mock.panels.length, panels, 'the panel showing these reports is reused');
  assert.equal(mock.shownDocuments.at(-1)?.uri?.fsPath, p.resultPath);
  mock.answer.message = undefined;
});

test('metrics from the setting: baselines already there is no note; RU brings its decoder cache', async () => {
  configure({ metrics: ['ru', 'baselines'], decoder: 'light' });
  mock.log.length = 0;
  const { pool, calls } = fakePool();
  pickLayer('conv2', { items: [] });
  await withPool(pool, () => run('infodiscard.checkCoherency', Uri.file(modelPath)));
  assert.equal(calls.coherency.length, 1);
  const p = calls.coherency[0];
  assert.deepEqual(p.settings.metrics, ['sid', 'ru', 'baselines']);
  assert.equal(p.first, 'conv2');
  assert.equal(p.decoderCacheDir, path.join(reports, 'decoders'));
  assert.doesNotMatch(mock.log.join('\n'), /measuring the baselines/);
  assert.match(path.basename(p.resultPath), /-ru[0-9a-f]{6}-base[0-9a-f]{6}-conv2-x4-result\.json$/);
});

test('bad input: no rescalable conv layer, a format without the hook, a refused pair: one line naming the file, nothing runs', async () => {
  configure();
  const errorsOf = async (pool: unknown) => {
    mock.messages.length = 0;
    await withPool(pool, () => run('infodiscard.checkCoherency', Uri.file(modelPath)));
    await tick();
    return mock.messages.filter((m) => m.level === 'error');
  };
  pickLayer('conv1', { items: [] });

  const none = fakePool({ layers: { ...LAYERS, layers: LAYERS.layers.filter((l) => !l.rescale) } });
  let errors = await errorsOf(none.pool);
  assert.equal(errors.length, 1);
  assert.equal(
    errors[0].message,
    `infodiscard: ${modelPath}: no conv layer can be rescaled ("conv3": cannot rescale "conv3": its output is a model output, so no conv layer follows it; choose an earlier conv layer)`,
  );
  assert.equal(none.calls.coherency.length, 0);

  const saved = fakePool({
    layers: { ...LAYERS, format: 'tfjs-saved-model' as ModelLayers['format'], layers: LAYERS.layers.map(({ rescale: _r, ...l }) => l), rescaleUnsupported: 'savedmodel models cannot have their weights changed in memory' },
  });
  errors = await errorsOf(saved.pool);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].message, `infodiscard: ${modelPath}: savedmodel models cannot have their weights changed in memory`);
  assert.equal(saved.calls.coherency.length, 0);

  const noConv = fakePool({ layers: { ...LAYERS, layers: LAYERS.layers.filter((l) => !l.conv) } });
  errors = await errorsOf(noConv.pool);
  assert.match(errors[0].message, /: has no conv layers; the coherency check rescales a pair of neighbouring conv layers$/);

  const unreadable = fakePool({ layers: new AnalysisError('user', `${modelPath}: is not a TensorFlow.js model.json`) });
  errors = await errorsOf(unreadable.pool);
  assert.deepEqual(errors.map((e) => [e.message, e.items]), [[`infodiscard: ${modelPath}: is not a TensorFlow.js model.json`, []]]);

  const refused = fakePool({
    coherency: async () => {
      throw new AnalysisError('user', `${modelPath}: cannot rescale "conv1": "relu1" (ReLU) caps its output at 6, which is not positively homogeneous`);
    },
  });
  const panels = mock.panels.length;
  errors = await errorsOf(refused.pool);
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /^infodiscard: \/.*model\.json: cannot rescale "conv1": "relu1" \(ReLU\) caps its output at 6, which is not positively homogeneous$/);
  assert.equal(mock.panels.length, panels, 'no panel');

  const crashed = fakePool({
    coherency: async () => {
      throw new AnalysisError('crashed', 'the analysis process stopped unexpectedly (signal SIGKILL; out of memory?)');
    },
  });
  errors = await errorsOf(crashed.pool);
  assert.deepEqual(errors.map((e) => [e.message, e.items]), [['infodiscard: coherency check of net-c failed: the analysis process stopped unexpectedly (signal SIGKILL; out of memory?).', ['Show Log']]]);
});

test('cancel from the notification: the worker is told, nothing opens, no error; a dismissed layer pick runs nothing', async () => {
  configure();
  let phases: CoherencyPhase[] = [];
  const { pool, calls } = fakePool({
    coherency: (_p, h) =>
      new Promise((resolve) => {
        phases = [];
        h.onPhase?.('check');
        phases.push('check');
        h.signal!.addEventListener('abort', () => resolve({ status: 'cancelled' }));
      }),
  });
  pickLayer('conv1', { items: [] });
  mock.messages.length = 0;
  mock.log.length = 0;
  const panels = mock.panels.length;
  const done = withPool(pool, async () => {
    const command = run('infodiscard.checkCoherency', Uri.file(modelPath));
    const t0 = Date.now();
    while (!mock.progress.some((x) => x.options.title?.startsWith('Coherency of') && !x.done) && Date.now() - t0 < 5000) await tick(5);
    assert.deepEqual(ctx.runs.list().map((r) => r.label), ['net-c coherency'], 'listed for Cancel Analysis and the status bar');
    mock.progress.filter((x) => !x.done).at(-1)!.cancel();
    await command;
  });
  await done;
  assert.equal(calls.coherency.length, 1);
  assert.deepEqual(phases, ['check']);
  assert.equal(mock.panels.length, panels);
  assert.deepEqual(mock.messages, []);
  assert.match(mock.log.join('\n'), /net-c: coherency check cancelled after [\d.]+ s; nothing was written/);
  assert.equal(ctx.runs.count, 0);

  const dismissed = fakePool();
  mock.answer.quickPick = undefined;
  await withPool(dismissed.pool, () => run('infodiscard.checkCoherency', Uri.file(modelPath)));
  assert.equal(dismissed.calls.layers.length, 1);
  assert.equal(dismissed.calls.coherency.length, 0);
  assert.deepEqual(mock.messages, []);
});

test('end to end with the real worker: the three files, the compare panel and the verdicts', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 8, samplesPerStep: 2 });
  mock.messages.length = 0;
  mock.log.length = 0;
  const seen: Parameters<typeof pickLayer>[1] = { items: [] };
  pickLayer('conv1', seen);
  await run('infodiscard.checkCoherency', Uri.file(modelPath));
  await tick();
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  assert.deepEqual(seen.items.map((i) => [i.label, i.description]), [['conv1', 'Conv2D [8, 8, 4]'], ['conv2', 'Conv2D [8, 8, 4]']], 'conv3 is the model output: not offered');
  const result = /net-c: coherency check complete in [\d.]+ s -> (.*-result\.json)$/m.exec(mock.log.join('\n'))?.[1];
  assert.ok(result, 'the result path is logged');
  assert.equal(path.dirname(result), path.join(reports, 'coherency'));
  const json = JSON.parse(readFileSync(result, 'utf8'));
  assert.equal(json.kind, 'infodiscard-coherency');
  assert.deepEqual(json.rescale, { first: 'conv1', second: 'conv2', between: [], factor: 4 });
  assert.equal(json.original.settings.maxSteps, 8);
  assert.ok(existsSync(result.replace(/-result\.json$/, '-original.json')));
  assert.ok(existsSync(result.replace(/-result\.json$/, '-rescaled.json')));
  const verdict = mock.messages.filter((m) => m.level === 'info' || m.level === 'warning').pop()!;
  assert.match(verdict.message, /^infodiscard: Coherency: SID (unchanged at \d\/3 layers|changed at)/);
  assert.match(verdict.message, /gradient norm changed at \d layers? (as expected|not as expected)/);
  assert.deepEqual(verdict.items, ['Show Table', 'Open JSON']);
  const panel = mock.panels[mock.panels.length - 1];
  assert.equal(panel.title, 'Compare: original vs rescaled (conv1/4, conv2×4)');
});
