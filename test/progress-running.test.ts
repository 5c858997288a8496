/**
 * Progress with several layers at once (issue 13, timed first use): with two workers two layers run together, and the
 * progress notification, the status bar and the CLI line name every running layer (at most two, then "+N"), short
 * labels for long exported names. The tracker keeps each running layer's images apart, so interleaved steps of two
 * layers do not mix their estimates.
 */
import './helpers/vscode-mock';
import { mock } from './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import os from 'node:os';
import { ProgressTracker, runningLayersText } from '../src/engine/progressEstimate';
import type { AnalysisEvent } from '../src/engine/events';
import type { LayerResult } from '../src/engine/report';
import { runAnalysis } from '../src/extension/analysis';
import type { Ctx } from '../src/extension/ctx';
import { Runs } from '../src/extension/runs';

const A = '/layer1/layer1.0/relu_1/Relu_output_0';
const B = '/layer1/layer1.1/relu_1/Relu_output_0';
const C = '/layer2/layer2.0/relu_1/Relu_output_0';

test('runningLayersText: every running layer up to two, then "+N"; short labels', () => {
  assert.equal(runningLayersText([]), '');
  assert.equal(runningLayersText(['conv1']), 'conv1');
  assert.equal(runningLayersText([A, B]), 'layer1.0/relu_1, layer1.1/relu_1');
  assert.equal(runningLayersText([A, B, C]), 'layer1.0/relu_1, layer1.1/relu_1 +1');
  assert.equal(runningLayersText([A, B, C], 1), 'layer1.0/relu_1 +2');
});

test('progress tracker: two layers at once are both running, and their images do not mix', () => {
  const t = new ProgressTracker();
  t.started(4, 1);
  t.layerStarted(A);
  t.layerStarted(B);
  assert.deepEqual(t.running(), [A, B]);
  // Layer A, image 0 at step 40 after 2 s; then layer B's image 0 at step 10: B's estimate is B's own.
  t.step({ layer: A, image: 0, step: 40, maxSteps: 200, elapsedMs: 2000 });
  const b = t.step({ layer: B, image: 0, step: 10, maxSteps: 200, elapsedMs: 1000 });
  assert.equal(b.layerSeconds, (190 * 100) / 1000, "B's 100 ms a step, not A's steps counted as B's finished images");
  const a = t.step({ layer: A, image: 0, step: 50, maxSteps: 200, elapsedMs: 2500 });
  assert.equal(a.layerSeconds, (150 * 50) / 1000);
  t.layerEnded([{ steps: 60, seconds: 3 }], A);
  assert.deepEqual(t.running(), [B]);
  t.layerStarted(C);
  assert.deepEqual(t.running(), [B, C]);
  t.layerEnded(undefined, B);
  t.layerEnded(undefined, C);
  assert.deepEqual(t.running(), []);
  // Callers without layer names (one layer at a time) work as before.
  const old = new ProgressTracker();
  old.started(2, 1);
  old.layerStarted();
  assert.equal(old.step({ image: 0, step: 10, maxSteps: 200, elapsedMs: 500 }).layerSeconds, (190 * 50) / 1000);
  old.layerEnded();
  assert.deepEqual(old.running(), []);
});

const result = (name: string): LayerResult => ({ name, kind: 'Relu', sid: { mean: 1, std: 0.1 }, perImage: [{ image: 0, steps: 30, seconds: 1, constraintRatio: 1, lambda: 1, stopReason: 'converged' }] } as unknown as LayerResult);

test('the progress notification and the status bar name every running layer', async () => {
  mock.reset();
  const runs = new Runs();
  const seen: { event: string; status: string }[] = [];
  const events: AnalysisEvent[] = [
    { type: 'started', layers: [A, B, C], images: 2, backend: 'wasm, 2 worker processes' },
    { type: 'layerStarted', layer: A, index: 0, total: 3 },
    { type: 'layerStarted', layer: B, index: 1, total: 3 },
    { type: 'step', layer: B, image: 0, step: 12, maxSteps: 200, ratio: 1, entropy: 0, elapsedMs: 600 },
    { type: 'layerStarted', layer: C, index: 2, total: 3 },
    { type: 'layerDone', layer: A, index: 0, total: 3, result: result(A) },
    { type: 'layerDone', layer: B, index: 1, total: 3, result: result(B) },
    { type: 'layerDone', layer: C, index: 2, total: 3, result: result(C) },
  ];
  const pool = {
    async run(_params: unknown, handlers: { onEvent?: (e: AnalysisEvent) => void }) {
      for (const e of events) {
        handlers.onEvent?.(e);
        seen.push({ event: `${e.type}${'layer' in e ? ` ${e.layer}` : ''}`, status: runs.list()[0]?.progress ?? '' });
      }
      return { status: 'complete' as const, reportPath: path.join(os.tmpdir(), 'infodiscard-no-such-report.json') };
    },
  };
  const log = { info() {}, warn() {}, error() {}, show() {} };
  const ctx = { log, runs, pool: () => pool, fireReportChanged() {}, releaseWorkersIfUnused() {} } as unknown as Ctx;
  const outcome = await runAnalysis(ctx, { modelPath: '/m/resnet18.onnx', label: 'resnet18', reportPath: path.join(os.tmpdir(), 'infodiscard-no-such-report.json'), images: ['/i/a.png'], settings: { alpha: 10 } as never, pool: { workers: 1, splitSamples: 'auto' } });
  assert.equal(outcome.status, 'complete', JSON.stringify(mock.messages));
  const messages = mock.progress[0].reports.map((r) => r.message).filter((m): m is string => !!m);
  assert.ok(messages.includes('layer1.0/relu_1 (1/3)'), messages.join('\n'));
  assert.ok(messages.includes('layer1.0/relu_1, layer1.1/relu_1 (2/3)'), messages.join('\n'));
  const step = messages.find((m) => m.includes('step 12'));
  assert.match(step ?? '', /^layer1\.0\/relu_1, layer1\.1\/relu_1 · image 1\/2 · step 12 \(at most 200\)/);
  assert.ok(messages.includes('layer1.0/relu_1, layer1.1/relu_1 +1 (3/3)'), messages.join('\n'));
  assert.ok(messages.includes('layer1.0/relu_1 done (1/3) · running layer1.1/relu_1, layer2.0/relu_1'), messages.join('\n'));
  assert.ok(messages.includes('layer2.0/relu_1 done (3/3)'), messages.join('\n'));
  const status = (event: string) => seen.find((s) => s.event === event)?.status;
  assert.equal(status(`layerStarted ${B}`), 'layer1.0/relu_1, layer1.1/relu_1 2/3');
  assert.equal(status(`layerDone ${A}`), 'layer1.1/relu_1, layer2.0/relu_1 · 1/3 done');
  runs.dispose();
});

test('progress tracker: with two layers at once, the layers still to come are shared between the two', () => {
  const t = new ProgressTracker();
  t.started(6, 1);
  for (const name of [A, B]) t.layerStarted(name);
  for (const name of [A, B]) t.layerEnded([{ steps: 40, seconds: 2 }], name);
  t.layerStarted(C);
  t.layerStarted('/layer2/layer2.1/relu_1/Relu_output_0');
  const e = t.step({ layer: C, image: 0, step: 10, maxSteps: 200, elapsedMs: 500 });
  // This layer: 30 steps left at 50 ms. After it and the one beside it: 2 layers of 40 steps, two at a time.
  assert.equal(e.layerSeconds, 1.5);
  assert.equal(e.totalSeconds, 1.5 + (2 * 40 * 50) / 2 / 1000);
});
