/**
 * BatchNorm folding (src/engine/loaders/foldBatchNorm.ts): the analysed layers' outputs and their input gradients are
 * unchanged (float rounding aside), convs whose output is analysed or read twice are left alone, and the engine
 * applies it through LoadedModel.optimizeFor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../src/engine/backend';
import { wrapLayersModel } from '../src/engine/loaders/tfjsLayers';

type Sym = tfl.SymbolicTensor;

/** Random BN statistics so that each BN is far from the identity. */
function bn(x: Sym, name: string, seed: number, extra: { center?: boolean; scale?: boolean } = {}): Sym {
  return tfl.layers
    .batchNormalization({
      name,
      epsilon: 1e-3,
      ...extra,
      gammaInitializer: tfl.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed }),
      betaInitializer: tfl.initializers.randomNormal({ stddev: 0.3, seed: seed + 1 }),
      movingMeanInitializer: tfl.initializers.randomNormal({ stddev: 0.3, seed: seed + 2 }),
      movingVarianceInitializer: tfl.initializers.randomUniform({ minval: 0.3, maxval: 2, seed: seed + 3 }),
    })
    .apply(x) as Sym;
}

/**
 * conv_a (no bias) -> bn_a -> relu_a -> conv_b (bias, stride 2, valid) -> bn_b -> relu_b -> conv_c -> bn_c -> add(bn_c, bn_e, conv_e),
 * where conv_e is read by both bn_e and the add (not foldable). `flags` drop bn_b's beta and bn_c's gamma.
 */
function net(flags: { center?: boolean; scale?: boolean } = {}): tfl.LayersModel {
  const k = (seed: number) => tfl.initializers.glorotNormal({ seed });
  const input = tfl.input({ shape: [12, 12, 2] });
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: k(1), name: 'conv_a' }).apply(input) as Sym;
  y = tfl.layers.reLU({ name: 'relu_a' }).apply(bn(y, 'bn_a', 10)) as Sym;
  y = tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'valid', biasInitializer: tfl.initializers.randomNormal({ stddev: 0.2, seed: 3 }), kernelInitializer: k(2), name: 'conv_b' }).apply(y) as Sym;
  const b = tfl.layers.reLU({ name: 'relu_b' }).apply(bn(y, 'bn_b', 20, { center: flags.center })) as Sym;
  const c = bn(tfl.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: k(4), name: 'conv_c' }).apply(b) as Sym, 'bn_c', 30, { scale: flags.scale });
  const e = tfl.layers.conv2d({ filters: 6, kernelSize: 1, useBias: false, kernelInitializer: k(5), name: 'conv_e' }).apply(b) as Sym;
  const out = tfl.layers.add({ name: 'out' }).apply([c, bn(e, 'bn_e', 40), e]) as Sym;
  return tfl.model({ inputs: input, outputs: out });
}

test('folded BatchNorms: same outputs and input gradients at every analysed layer; analysed or shared convs stay', async () => {
  await selectBackend('wasm');
  const x = tf.randomUniform([3, 12, 12, 2], 0, 1, 'float32', 9) as tf.Tensor4D;
  const analysed = ['conv_a', 'relu_a', 'bn_b', 'relu_b', 'out'];
  const measure = (m: ReturnType<typeof wrapLayersModel>) =>
    analysed.map((name) => {
      const probe = m.probe(name);
      const value = tf.tidy(() => Array.from(probe(x).dataSync()));
      const grad = tf.tidy(() => Array.from(tf.grad((z: tf.Tensor) => tf.sum(tf.square(probe(z as tf.Tensor4D))))(x).dataSync()));
      return { name, value, grad };
    });
  const reference = wrapLayersModel(net(), 'ref', 'tfjs-layers', 'x');
  const before = measure(reference);
  reference.dispose();

  const model = wrapLayersModel(net(), 'folded', 'tfjs-layers', 'x');
  const folded = model.optimizeFor!(analysed);
  // conv_a is analysed: its BN stays. conv_e feeds bn_e and the add: stays. conv_b and conv_c fold.
  assert.deepEqual(folded, ['conv_b -> bn_b', 'conv_c -> bn_c']);
  assert.deepEqual(model.optimizeFor!(analysed), [], 'folding happens once');
  const after = measure(model);
  for (const [i, a] of after.entries()) {
    const b = before[i];
    const scale = Math.max(...b.value.map(Math.abs));
    const gscale = Math.max(...b.grad.map(Math.abs));
    const worst = Math.max(...a.value.map((v, j) => Math.abs(v - b.value[j])));
    const gworst = Math.max(...a.grad.map((v, j) => Math.abs(v - b.grad[j])));
    assert.ok(worst <= 1e-5 * scale, `${a.name}: output differs by ${worst} (scale ${scale})`);
    assert.ok(gworst <= 1e-4 * gscale, `${a.name}: gradient differs by ${gworst} (scale ${gscale})`);
  }
  const tensorsBefore = tf.memory().numTensors;
  model.dispose();
  assert.ok(tf.memory().numTensors < tensorsBefore, 'the folded kernels are freed with the model');
  x.dispose();
});

test('BatchNorms without beta or gamma fold too (forward values; tfjs cannot differentiate those BNs unfolded)', async () => {
  await selectBackend('wasm');
  const x = tf.randomUniform([2, 12, 12, 2], 0, 1, 'float32', 4) as tf.Tensor4D;
  const flags = { center: false, scale: false };
  const reference = wrapLayersModel(net(flags), 'ref', 'tfjs-layers', 'x');
  const want = tf.tidy(() => Array.from(reference.probe('out')(x).dataSync()));
  reference.dispose();
  const model = wrapLayersModel(net(flags), 'folded', 'tfjs-layers', 'x');
  assert.deepEqual(model.optimizeFor!(['out']), ['conv_a -> bn_a', 'conv_b -> bn_b', 'conv_c -> bn_c']);
  const got = tf.tidy(() => Array.from(model.probe('out')(x).dataSync()));
  const scale = Math.max(...want.map(Math.abs));
  assert.ok(Math.max(...got.map((v, j) => Math.abs(v - want[j]))) <= 1e-5 * scale);
  const grad = tf.tidy(() => tf.grad((z: tf.Tensor) => tf.sum(model.probe('out')(z as tf.Tensor4D)))(x).dataSync());
  assert.ok(grad.every(Number.isFinite), 'the folded model is differentiable');
  model.dispose();
  x.dispose();
});
