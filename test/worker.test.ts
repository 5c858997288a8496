/**
 * The analysis worker (the built dist/worker.js, really forked) and the pool that drives it: the protocol,
 * cancel, user errors, a worker killed mid-analysis, concurrent analyses kept apart, and no process left behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import type { AnalysisEvent } from '../src/engine/events';
import type { Report } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { AnalysisError, AnalysisPool, type RunResult } from '../src/worker/client';
import type { CoherencyResult } from '../src/engine/coherency';
import type { AnalyzeParams, CoherencyParams, CoherencyPhase, CoherencyRun, FromWorker, ToWorker } from '../src/protocol';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

const WORKER = path.resolve('dist/worker.js');
const dir = tempDir('infodiscard-worker-');
const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, samples: 8, maxSteps: 30 };
let model: string;
let images: string[];
let reportNo = 0;

before(async () => {
  model = await saveLayersModel(reluConvNet(8, 1), path.join(dir, 'model'));
  images = [0, 1].map((i) => writeGrayPng(path.join(dir, `x${i}.png`), 8, 8, (x, y) => ((x + 2 * y + 5 * i) % 21) / 21));
});

/** One image: a quick run. `slow` uses two images, so after the first layer a second or more remains. */
function params(extra: Partial<AnalyzeParams> = {}, slow = false): AnalyzeParams {
  return { modelPath: model, images: slow ? images.slice(0, 2) : images.slice(0, 1), settings, reportPath: path.join(dir, `r${++reportNo}.json`), ...extra };
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Report;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ESRCH');
    return false;
  }
}

const pools: AnalysisPool[] = [];
function pool(size = 1): AnalysisPool {
  const p = new AnalysisPool(WORKER, { size, log: (line) => logs.push(line) });
  pools.push(p);
  return p;
}
const logs: string[] = [];
after(() => Promise.all(pools.map((p) => p.dispose())));

/** Asserts a valid event sequence for the given layers. */
function checkSequence(events: AnalysisEvent[], layers: string[]): void {
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'started');
  assert.equal(types.at(-1), 'done');
  assert.deepEqual((events[0] as Extract<AnalysisEvent, { type: 'started' }>).layers, layers);
  const structure = events.filter((e) => e.type === 'layerStarted' || e.type === 'layerDone').map((e) => `${e.type}:${(e as { layer: string }).layer}`);
  assert.deepEqual(structure, layers.flatMap((l) => [`layerStarted:${l}`, `layerDone:${l}`]));
  // Every step belongs to the layer that is running.
  let running = '';
  for (const e of events) {
    if (e.type === 'layerStarted') running = e.layer;
    if (e.type === 'step') assert.equal(e.layer, running);
  }
}

test('protocol: ready with pid, every message carries the request id, steps throttled, exit on disconnect', async () => {
  const child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  child.stdout!.resume();
  child.stderr!.resume();
  const messages: { at: number; m: FromWorker }[] = [];
  const finished = new Promise<void>((resolve) =>
    child.on('message', (m: FromWorker) => {
      messages.push({ at: performance.now(), m });
      if (m.kind === 'ready') child.send({ kind: 'analyze', id: 42, params: p } satisfies ToWorker);
      if (m.kind === 'finished' || m.kind === 'failed') resolve();
    }),
  );
  const p = params({}, true);
  await finished;
  assert.deepEqual(messages[0].m, { kind: 'ready', pid: child.pid });
  const rest = messages.slice(1).map((x) => x.m);
  for (const m of rest) assert.equal((m as { id: number }).id, 42);
  assert.deepEqual(rest.at(-1), { kind: 'finished', id: 42, status: 'complete', reportPath: p.reportPath });
  const events = rest.filter((m) => m.kind === 'event').map((m) => (m as { event: AnalysisEvent }).event);
  checkSequence(events, ['conv1', 'conv2', 'conv3']);
  // Throttled to ~10 per second (IPC may bunch arrivals, so count rather than measure gaps).
  const steps = events.filter((e) => e.type === 'step').length;
  const seconds = (messages.at(-1)!.at - messages[0].at) / 1000;
  assert.ok(steps >= 1 && steps <= 10 * seconds + 3, `${steps} step events in ${seconds.toFixed(1)} s`);

  child.disconnect();
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

test('round trip: events in order, complete, the report on disk has every layer', async () => {
  const events: AnalysisEvent[] = [];
  const p = params();
  const r = await pool().run(p, { onEvent: (e) => events.push(e) });
  assert.deepEqual(r, { status: 'complete', reportPath: p.reportPath });
  checkSequence(events, ['conv1', 'conv2', 'conv3']);
  const report = readJson(p.reportPath);
  assert.equal(report.status, 'complete');
  assert.deepEqual(report.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  assert.deepEqual((events.at(-1) as Extract<AnalysisEvent, { type: 'done' }>).report.layers.length, 3);
});

test('cancel after the first layer: cancelled within 2 s, partial report, the worker is reused', async () => {
  const pl = pool();
  const controller = new AbortController();
  let abortedAt = 0;
  const p = params({}, true);
  const r = await pl.run(p, {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'layerDone' && !abortedAt) {
        abortedAt = performance.now();
        controller.abort();
      }
    },
  });
  const took = performance.now() - abortedAt;
  assert.equal(r.status, 'cancelled');
  assert.ok(took < 2000, `cancel took ${took.toFixed(0)} ms`);
  const report = readJson(p.reportPath);
  assert.equal(report.status, 'cancelled');
  assert.ok(report.layers.length >= 1 && report.layers.length < 3, `${report.layers.length} layers`);

  const [pid] = pl.pids;
  assert.equal((await pl.run(params())).status, 'complete');
  assert.deepEqual(pl.pids, [pid], 'the same worker ran the next analysis');

  // Aborted before it was sent: cancelled without running.
  assert.equal((await pl.run(params(), { signal: AbortSignal.abort() })).status, 'cancelled');
});

test('a worker that does not stop after a cancel is killed, the run resolves cancelled, the next run gets a new worker', async () => {
  const pl = new AnalysisPool(WORKER, { cancelTimeoutMs: 300, log: (line) => logs.push(line) });
  pools.push(pl);
  const controller = new AbortController();
  let frozen = 0;
  const r = await pl.run(params({}, true), {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'layerDone' && !frozen) {
        // A stopped process cannot read the cancel: it stands for a worker stuck in one long operation.
        frozen = pl.pids[0];
        process.kill(frozen, 'SIGSTOP');
        controller.abort();
      }
    },
  });
  assert.equal(r.status, 'cancelled');
  assert.equal((await pl.run(params({ layers: ['conv1'] }))).status, 'complete');
  assert.notEqual(pl.pids[0], frozen);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(alive(frozen), false, 'the stuck worker was killed');
});

test('user errors reject with code "user" and one line; the worker stays usable', async () => {
  const pl = pool();
  const rejects = async (p: AnalyzeParams, pattern: RegExp) => {
    const e = await pl.run(p).then(() => assert.fail('expected a rejection'), (e: unknown) => e);
    assert.ok(e instanceof AnalysisError, String(e));
    assert.equal(e.code, 'user');
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/);
  };
  await rejects(params({ layers: ['conv1', 'nope'] }), /no layer named "nope"/);
  await rejects(params({ images: [path.join(dir, 'missing.png')] }), /missing\.png/);
  assert.equal((await pl.run(params({ layers: ['conv3'] }))).status, 'complete');
});

test('a worker killed mid-analysis rejects with "crashed", keeps the partial report, and is replaced', async () => {
  const pl = pool();
  const p = params({}, true);
  let killed = 0;
  const e = await pl
    .run(p, {
      onEvent: (ev) => {
        if (ev.type === 'layerDone' && !killed) {
          killed = pl.pids[0];
          process.kill(killed, 'SIGKILL');
        }
      },
    })
    .then(() => assert.fail('expected a rejection'), (err: unknown) => err);
  assert.ok(e instanceof AnalysisError, String(e));
  assert.equal(e.code, 'crashed');
  assert.equal(e.message, `the analysis process stopped unexpectedly (signal SIGKILL; out of memory?); the finished layers are kept in ${p.reportPath}`);
  assert.equal(e.reportPath, p.reportPath);
  assert.ok(readJson(p.reportPath).layers.length >= 1);
  assert.ok(logs.includes(`worker ${killed}: exited (signal SIGKILL)`), 'the exit is logged');

  assert.equal((await pl.run(params())).status, 'complete');
  assert.equal(pl.pids.length, 1);
  assert.notEqual(pl.pids[0], killed);
});

/** Starts two analyses at once on different layers; each must see only its own events and get its own report. */
async function twoAtOnce(pl: AnalysisPool): Promise<string[]> {
  const a: AnalysisEvent[] = [];
  const b: AnalysisEvent[] = [];
  const arrivals: string[] = [];
  const pa = params({ layers: ['conv1', 'conv2'] });
  const pb = params({ layers: ['conv3'] });
  const results: RunResult[] = await Promise.all([
    pl.run(pa, { onEvent: (e) => a.push(e) && arrivals.push(`a:${e.type}`) }),
    pl.run(pb, { onEvent: (e) => b.push(e) && arrivals.push(`b:${e.type}`) }),
  ]);
  assert.deepEqual(results, [
    { status: 'complete', reportPath: pa.reportPath },
    { status: 'complete', reportPath: pb.reportPath },
  ]);
  checkSequence(a, ['conv1', 'conv2']);
  checkSequence(b, ['conv3']);
  assert.deepEqual(readJson(pa.reportPath).layers.map((l) => l.name), ['conv1', 'conv2']);
  assert.deepEqual(readJson(pb.reportPath).layers.map((l) => l.name), ['conv3']);
  return arrivals;
}

test('two analyses with one worker: the second waits, events stay apart', async () => {
  const pl = pool(1);
  const arrivals = await twoAtOnce(pl);
  assert.equal(pl.pids.length, 1);
  assert.ok(arrivals.indexOf('b:started') > arrivals.indexOf('a:done'), 'the second started after the first was done');
});

test('two analyses with two workers run side by side, events stay apart', async () => {
  const pl = pool(2);
  await twoAtOnce(pl);
  assert.equal(pl.pids.length, 2, 'one worker each');
});

test('dispose stops every worker, running analyses resolve cancelled', async () => {
  const pl = pool(2);
  const slow = params({}, true);
  let firstLayer!: () => void;
  const first = new Promise<void>((resolve) => (firstLayer = resolve));
  const running = pl.run(slow, { onEvent: (e) => e.type === 'layerDone' && firstLayer() });
  const idle = pl.run(params({ layers: ['conv1'] }));
  await first;
  assert.equal((await idle).status, 'complete');
  const pids = pl.pids;
  assert.equal(pids.length, 2);
  await pl.dispose();
  assert.equal((await running).status, 'cancelled');
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} is gone`);
  // The worker had time to mark its report cancelled before it exited.
  assert.equal(readJson(slow.reportPath).status, 'cancelled');
  await assert.rejects(pl.run(params()), /shut down/);
});

// ---------------------------------------------------------------------------------------------------------------
// Layer listing and the coherency check

test('layers: names, kinds and shapes; which conv layers can be rescaled and with which partner; the worker stays usable', async () => {
  const pl = pool();
  const r = await pl.listLayers({ modelPath: model, backend: 'wasm' });
  assert.equal(r.status, 'complete');
  if (r.status !== 'complete') return;
  assert.equal(r.model.modelPath, model);
  assert.equal(r.model.format, 'tfjs-layers');
  assert.deepEqual(r.model.input, { height: 8, width: 8, channels: 1 });
  assert.equal(r.model.rescaleUnsupported, undefined);
  assert.deepEqual(r.model.layers.map((l) => [l.name, l.kind, l.outputShape, l.conv]), [
    ['conv1', 'Conv2D', [8, 8, 4], true],
    ['conv2', 'Conv2D', [8, 8, 4], true],
    ['conv3', 'Conv2D', [4, 4, 2], true],
  ]);
  assert.deepEqual(r.model.layers[0].rescale, { second: 'conv2', between: [] });
  assert.deepEqual(r.model.layers[1].rescale, { second: 'conv3', between: [] });
  assert.equal(r.model.layers[2].rescale, undefined);
  assert.match(r.model.layers[2].notRescalable ?? '', /^cannot rescale "conv3": its output is a model output/);
  // Listing tried the rescale with factor 1 on its own copy: an analysis afterwards sees the original weights.
  const p = params({ layers: ['conv1'] });
  assert.equal((await pl.run(p)).status, 'complete');
  const e = await pl.listLayers({ modelPath: path.join(dir, 'nope', 'model.json'), backend: 'wasm' }).then(() => assert.fail('expected a rejection'), (err: unknown) => err);
  assert.ok(e instanceof AnalysisError, String(e));
  assert.equal(e.code, 'user');
  assert.match(e.message, /nope[\\/]model\.json/);
  assert.equal(e.reportPath, undefined);
  assert.equal((await pl.listLayers({ modelPath: model, backend: 'wasm' })).status, 'complete');
  // Names only (the parallel runner): no trial rescale, so no rescale facts.
  const names = await pl.listLayers({ modelPath: model, backend: 'wasm', checkRescale: false });
  assert.ok(names.status === 'complete');
  assert.deepEqual(names.model.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  assert.ok(names.model.layers.every((l) => l.rescale === undefined && l.notRescalable === undefined));
});

function coherencyParams(extra: Partial<CoherencyParams> = {}): CoherencyParams {
  const n = ++reportNo;
  return {
    modelPath: model,
    images: images.slice(0, 1),
    settings: { ...settings, maxSteps: 20, samples: 4, metrics: ['sid', 'baselines'] },
    first: 'conv1',
    factor: 4,
    resultPath: path.join(dir, 'coherency', `c${n}-result.json`),
    originalReportPath: path.join(dir, 'coherency', `c${n}-original.json`),
    rescaledReportPath: path.join(dir, 'coherency', `c${n}-rescaled.json`),
    ...extra,
  };
}

test('coherency: phases, events tagged by run, the result and both reports written, the verdicts sent back', { timeout: 120_000 }, async () => {
  const pl = pool();
  const p = coherencyParams();
  const phases: CoherencyPhase[] = [];
  const events: { run: CoherencyRun | undefined; event: AnalysisEvent }[] = [];
  const r = await pl.runCoherency(p, { onPhase: (ph) => phases.push(ph), onEvent: (event, run) => events.push({ run, event }) });
  assert.equal(r.status, 'complete');
  if (r.status !== 'complete') return;
  assert.deepEqual(phases, ['check', 'original', 'rescaled']);
  assert.ok(events.every((e) => e.run === 'original' || e.run === 'rescaled'), 'every event says which run');
  for (const run of ['original', 'rescaled'] as const) {
    checkSequence(events.filter((e) => e.run === run).map((e) => e.event), ['conv1', 'conv2', 'conv3']);
  }
  const runs = events.map((e) => e.run);
  assert.ok(runs.indexOf('rescaled') > runs.lastIndexOf('original'), 'the runs do not interleave');

  assert.deepEqual(
    { resultPath: r.resultPath, originalReportPath: r.originalReportPath, rescaledReportPath: r.rescaledReportPath },
    { resultPath: p.resultPath, originalReportPath: p.originalReportPath, rescaledReportPath: p.rescaledReportPath },
  );
  const result = JSON.parse(readFileSync(p.resultPath, 'utf8')) as CoherencyResult;
  assert.equal(result.kind, 'infodiscard-coherency');
  assert.deepEqual(result.rescale, { first: 'conv1', second: 'conv2', between: [], factor: 4 });
  assert.deepEqual(r.outcome.rescale, result.rescale);
  assert.deepEqual(r.outcome.summary, result.summary);
  assert.deepEqual(r.outcome.outputCheck, result.outputCheck);
  assert.equal(r.outcome.coherent, result.coherent);
  assert.equal(r.outcome.outputCheck.passed, true);
  assert.deepEqual(r.outcome.summary.map((s) => s.metric), ['sid', 'gradNorm', 'gradCam']);
  assert.match(r.outcome.table, /^Coherency check of .*model\.json \(tfjs-layers\)\nRescaled: "conv1" kernel and bias \/ 4, "conv2" kernel x 4/);
  assert.match(r.outcome.table, /\nSID: unchanged at \d\/3 layers/);
  const original = readJson(p.originalReportPath);
  const rescaled = readJson(p.rescaledReportPath);
  assert.deepEqual(original, JSON.parse(JSON.stringify(result.original)));
  assert.deepEqual(rescaled, JSON.parse(JSON.stringify(result.rescaled)));
  for (const rep of [original, rescaled]) {
    assert.equal(rep.status, 'complete');
    assert.deepEqual(rep.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
    assert.ok(rep.layers.every((l) => l.baselines), 'baselines measured');
  }
  // The gradient at conv1 grows by the factor (its feature shrank by it); the output layer's does not move.
  const g = (rep: Report, layer: string) => rep.layers.find((l) => l.name === layer)!.baselines!.gradNorm.mean;
  assert.ok(Math.abs(g(rescaled, 'conv1') / g(original, 'conv1') - 4) < 0.05, `${g(rescaled, 'conv1') / g(original, 'conv1')}`);
  assert.ok(Math.abs(g(rescaled, 'conv3') / g(original, 'conv3') - 1) < 0.05);
});

test('coherency: cancel stops it within 2 s and writes nothing; bad input is one line naming the model; the worker is reused', { timeout: 120_000 }, async () => {
  const pl = pool();
  const controller = new AbortController();
  let abortedAt = 0;
  const p = coherencyParams({ images: images.slice(0, 2) });
  const r = await pl.runCoherency(p, {
    signal: controller.signal,
    onEvent: (e, run) => {
      if (run === 'original' && e.type === 'layerDone' && !abortedAt) {
        abortedAt = performance.now();
        controller.abort();
      }
    },
  });
  const took = performance.now() - abortedAt;
  assert.deepEqual(r, { status: 'cancelled' });
  assert.ok(took < 2000, `cancel took ${took.toFixed(0)} ms`);
  for (const f of [p.resultPath, p.originalReportPath, p.rescaledReportPath]) assert.equal(existsSync(f), false, `${f} written`);
  const [pid] = pl.pids;

  const e = await pl.runCoherency(coherencyParams({ first: 'conv3' })).then(() => assert.fail('expected a rejection'), (err: unknown) => err);
  assert.ok(e instanceof AnalysisError, String(e));
  assert.equal(e.code, 'user');
  assert.ok(e.message.startsWith(`${model}: `), e.message);
  assert.match(e.message, /cannot rescale "conv3": its output is a model output/);
  assert.doesNotMatch(e.message, /\n/);
  assert.deepEqual(pl.pids, [pid], 'the same worker');
  assert.deepEqual(await pl.runCoherency(coherencyParams(), { signal: AbortSignal.abort() }), { status: 'cancelled' });
});

test('protocol: a coherency request streams events with its id and run, then coherencyFinished', { timeout: 120_000 }, async () => {
  const child = fork(WORKER, [], { execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  child.stdout!.resume();
  child.stderr!.resume();
  const p = coherencyParams({ settings: { ...settings, maxSteps: 5, samples: 2, metrics: ['sid'] }, layers: ['conv1', 'conv2'] });
  const messages: FromWorker[] = [];
  await new Promise<void>((resolve) =>
    child.on('message', (m: FromWorker) => {
      messages.push(m);
      if (m.kind === 'ready') {
        child.send({ kind: 'layers', id: 6, params: { modelPath: model, backend: 'wasm' } } satisfies ToWorker);
        child.send({ kind: 'coherency', id: 7, params: p } satisfies ToWorker);
      }
      if (m.kind === 'coherencyFinished' || m.kind === 'failed') resolve();
    }),
  );
  const layers = messages.find((m) => m.kind === 'layers');
  assert.ok(layers && layers.kind === 'layers' && layers.id === 6 && layers.status === 'complete' && layers.model.layers.length === 3);
  const rest = messages.filter((m) => m.kind !== 'ready' && m.kind !== 'layers');
  for (const m of rest) assert.equal((m as { id: number }).id, 7);
  assert.deepEqual(rest.filter((m) => m.kind === 'coherencyPhase').map((m) => (m as { phase: string }).phase), ['check', 'original', 'rescaled']);
  const events = rest.filter((m) => m.kind === 'event') as Extract<FromWorker, { kind: 'event' }>[];
  assert.deepEqual(events.filter((m) => m.event.type === 'started').map((m) => m.run), ['original', 'rescaled']);
  const last = rest.at(-1)!;
  assert.equal(last.kind, 'coherencyFinished');
  assert.equal(last.kind === 'coherencyFinished' && last.status, 'complete');
  assert.ok(existsSync(p.resultPath));
  child.disconnect();
  await once(child, 'exit');
});

/** Map, steps and ratio of every layer (the numbers a team must reproduce). */
function answers(report: Report) {
  return report.layers.map((l) => ({ name: l.name, steps: l.perImage[0].steps, sid: l.sid.mean, ratio: l.perImage[0].constraintRatio, map: l.perImage[0].map.flat() }));
}

function assertSameAnswers(team: Report, one: Report): void {
  const a = answers(team);
  const b = answers(one);
  assert.deepEqual(a.map((l) => [l.name, l.steps]), b.map((l) => [l.name, l.steps]), 'the same layers in the same steps');
  for (const [i, l] of a.entries()) {
    assert.ok(Math.abs(l.sid - b[i].sid) < 1e-4, `${l.name}: SID ${l.sid} vs ${b[i].sid}`);
    assert.ok(Math.abs(l.ratio / b[i].ratio - 1) < 1e-4, `${l.name}: ratio ${l.ratio} vs ${b[i].ratio}`);
    const worst = Math.max(...l.map.map((h, j) => Math.abs(h - b[i].map[j])));
    assert.ok(worst < 2e-3, `${l.name}: worst pixel differs by ${worst} nats`);
  }
}

test('runTeam: two workers split every layer\'s samples; the answer of one worker, one event stream, both processes in the report', async () => {
  const one = params();
  await pool().run(one);
  const pl = pool(2);
  const events: AnalysisEvent[] = [];
  const p = params();
  const r = await pl.runTeam(p, 2, { onEvent: (e) => events.push(e) });
  assert.deepEqual(r, { status: 'complete', reportPath: p.reportPath });
  checkSequence(events, ['conv1', 'conv2', 'conv3']);
  const report = readJson(p.reportPath);
  assertSameAnswers(report, readJson(one.reportPath));
  assert.equal(new Set(report.run!.processes.map((q) => q.pid)).size, 2, 'both members\' processes');
  assert.deepEqual(report.run!.processes.map((q) => q.pid).sort(), [...pl.pids].sort());
  assert.ok(!existsSync(`${p.reportPath}.member1`), 'the member\'s copy is removed');
});

test('runTeam: a cancel stops both members within 2 s; a killed member fails the team, the other stops, the workers are replaced or reused', async () => {
  const pl = pool(2);
  const controller = new AbortController();
  let abortedAt = 0;
  const p = params({}, true);
  const r = await pl.runTeam(p, 2, {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'layerDone' && !abortedAt) {
        abortedAt = performance.now();
        controller.abort();
      }
    },
  });
  assert.equal(r.status, 'cancelled');
  assert.ok(performance.now() - abortedAt < 2000, 'cancelled within 2 s');
  assert.equal(readJson(p.reportPath).status, 'cancelled');
  assert.ok(readJson(p.reportPath).layers.length >= 1, 'the finished layer is kept');

  let killed = 0;
  const q = params({}, true);
  const t0 = performance.now();
  const e = await pl
    .runTeam(q, 2, {
      onEvent: (ev) => {
        if (ev.type === 'layerDone' && !killed) {
          killed = pl.pids[1];
          process.kill(killed, 'SIGKILL');
        }
      },
    })
    .then(() => assert.fail('expected a rejection'), (err: unknown) => err);
  assert.ok(e instanceof AnalysisError, String(e));
  assert.equal(e.code, 'crashed');
  assert.ok(performance.now() - t0 < 30_000, 'the surviving member did not wait for the dead one');
  assert.ok(readJson(q.reportPath).layers.length >= 1, 'the leader\'s finished layers are kept');
  assert.equal((await pl.runTeam(params(), 2)).status, 'complete', 'the pool runs a team again');
  assert.ok(!pl.pids.includes(killed));
});
