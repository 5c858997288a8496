/**
 * The model families of media/families (scripts/families/train_families.py): every model in manifest.json loads
 * through the ONNX loader, has its family's layers with PyTorch's shapes, and computes what PyTorch computed on
 * the eight images of media/families/images (logits, or the auto-encoder's pooled reconstruction, within 1e-3;
 * the per-image mean of every named layer, which also checks that the renamed layers are the right tensors).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { loadImages } from '../src/engine/images';
import { onnxLoader } from '../src/engine/loaders/onnx';
import type { LoadedModel } from '../src/engine/loaders/types';

/** FAMILIES_DIR: check another output of the script (e.g. a --quick run in out/families-quick). */
const DIR = process.env.FAMILIES_DIR ? path.resolve(process.env.FAMILIES_DIR) : path.join(__dirname, '..', 'media', 'families');
const FINDINGS = ['depth', 'damage', 'compression', 'distillation', 'epochs', 'task'];

interface ModelEntry {
  name: string;
  file: string;
  x: number;
  testAccuracy: number | null;
  params: number;
  role?: string;
  logits?: number[][];
  outputs?: number[][];
  layerShapes: Record<string, number[]>;
  layerMeans: Record<string, number[]>;
}
interface Family {
  id: string;
  finding: string;
  layers: string[];
  models: ModelEntry[];
}
interface Manifest {
  images: string;
  boxes: string;
  imageFiles: string[];
  families: Family[];
}

const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as Manifest;
/** Each file once, with the layers every family that lists it compares. */
const files = new Map<string, { entry: ModelEntry; layers: Set<string> }>();
for (const family of manifest.families) {
  for (const m of family.models) {
    const seen = files.get(m.file) ?? { entry: m, layers: new Set<string>() };
    for (const l of family.layers) seen.layers.add(l);
    files.set(m.file, seen);
  }
}

let images: tf.Tensor4D;

before(async () => {
  await selectBackend('wasm');
  const paths = manifest.imageFiles.map((f) => path.join(DIR, manifest.images, f));
  const prepared = loadImages(paths, 28, 28, 1);
  images = tf.tensor4d(Float32Array.from(prepared.flatMap((p) => [...p.pixels])), [prepared.length, 28, 28, 1]);
});
after(() => images?.dispose());

test('families manifest: findings, layers, images and boxes, total size', () => {
  assert.equal(manifest.imageFiles.length, 8);
  const boxes = JSON.parse(readFileSync(path.join(DIR, manifest.boxes), 'utf8')) as Record<string, { bbox: number[] }>;
  for (const f of manifest.imageFiles) {
    assert.ok(existsSync(path.join(DIR, manifest.images, f)), `${f} exists`);
    const [x, y, w, h] = boxes[f]?.bbox ?? [];
    assert.ok(w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= 28 && y + h <= 28, `${f}: bbox ${boxes[f]?.bbox}`);
  }
  const ids = new Set<string>();
  for (const family of manifest.families) {
    assert.ok(!ids.has(family.id), `family id ${family.id} is unique`);
    ids.add(family.id);
    assert.ok(FINDINGS.includes(family.finding), `${family.id}: finding ${family.finding}`);
    assert.ok(family.layers.length > 0 && family.models.length >= 2, `${family.id}: layers and models`);
    for (const m of family.models) {
      assert.equal(typeof m.x, 'number', `${m.name}: x`);
      for (const l of family.layers) assert.ok(m.layerShapes[l], `${family.id}/${m.name}: PyTorch has layer ${l}`);
    }
  }
  let total = 0;
  for (const file of files.keys()) {
    assert.ok(existsSync(path.join(DIR, file)), `${file} exists`);
    total += statSync(path.join(DIR, file)).size;
  }
  assert.ok(total <= 4.5e6, `the models take ${(total / 1e6).toFixed(2)} MB`);
});

function close(got: ArrayLike<number>, want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst <= tol, `${what}: differs from PyTorch by ${worst}`);
}

for (const [file, { entry, layers }] of files) {
  test(`families: ${file} (${entry.name}) loads, has its layers, and matches PyTorch on the 8 images`, async () => {
    const model: LoadedModel = await onnxLoader.load(path.join(DIR, file), undefined);
    try {
      assert.deepEqual(model.input, { height: 28, width: 28, channels: 1, flat: false, shape: [1, 28, 28] });
      const listed = new Map(model.layers.map((l) => [l.name, l.outputShape]));
      for (const name of new Set([...layers, ...Object.keys(entry.layerShapes)])) {
        assert.ok(listed.has(name), `no layer "${name}" in ${file}`);
        assert.deepEqual(listed.get(name), entry.layerShapes[name], `${name}: shape`);
        const mean = tf.tidy(() => tf.mean(tf.reshape(model.probe(name)(images), [images.shape[0], -1]), 1));
        close(await mean.data(), entry.layerMeans[name], 1e-3, `${file} ${name}: per-image mean`);
        mean.dispose();
      }
      if (entry.logits) {
        const y = tf.tidy(() => model.probe('logits')(images));
        assert.deepEqual(y.shape, [8, 10]);
        close(await y.data(), entry.logits.flat(), 1e-3, `${file}: logits`);
        y.dispose();
      } else {
        assert.ok(entry.outputs, `${file}: logits or outputs`);
        // The reconstruction [8,1,28,28], average-pooled 4x4 like the script does.
        const pooled = tf.tidy(() => {
          const y = model.probe('recon')(images) as tf.Tensor4D;
          assert.deepEqual(y.shape, [8, 1, 28, 28]);
          return tf.avgPool(tf.reshape(y, [8, 28, 28, 1]) as tf.Tensor4D, 4, 4, 'valid');
        });
        close(await pooled.data(), entry.outputs.flat(), 1e-3, `${file}: reconstruction`);
        pooled.dispose();
      }
    } finally {
      model.dispose();
    }
  });
}
