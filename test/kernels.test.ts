/**
 * The wasm kernels and gradient fixes of src/engine/kernels: each kernel against the cpu backend on random
 * shapes, strides, paddings, dilations and channel counts; the gradient fixes against independent
 * references (adjoint identities, equivalent undilated convs, explicit formulas); input gradients of small
 * layers and graph models with every layer type, wasm against cpu; and no tensor or wasm-memory growth.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-converter';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { clearDerivedCache, derivedCacheSize, installFusedGradMode, registerWasmKernels, unfuseGraphModel, uninstallFusedGradMode } from '../src/engine/kernels';
import { subPixelDim, tapOf, tapRange } from '../src/engine/kernels/conv2dBackpropInput';

type Pad = 'same' | 'valid' | tf.backend_util.ExplicitPadding;

before(async () => {
  setWasmPaths(path.resolve(__dirname, '../node_modules/@tensorflow/tfjs-backend-wasm/dist') + '/');
  assert.ok(await tf.setBackend('wasm'));
  await tf.ready();
  registerWasmKernels();
  registerWasmKernels(); // idempotent
});

// ---------- helpers ----------

/** Deterministic values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const T = (shape: number[], seed: number) => tf.tensor(rand(size(shape), seed), shape);

/** f's values, with every tensor freed. Read outside tidy: tidy walks what it returns, element by element for a typed array. */
function read(f: () => tf.Tensor): Float32Array {
  const t = tf.tidy(f);
  const v = Float32Array.from(t.dataSync());
  t.dispose();
  return v;
}

/** Runs f on one backend, returns a copy of its values. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend(backend);
  try {
    return read(f);
  } finally {
    await tf.setBackend('wasm');
  }
}

/** f on cpu and on wasm; f must create its tensors itself (from arrays) so each backend computes from scratch. */
async function both(f: () => tf.Tensor): Promise<[cpu: Float32Array, wasm: Float32Array]> {
  return [await on('cpu', f), await on('wasm', f)];
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string, tol = 1e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
  }
  const rel = maxDiff / (maxRef + 1e-6);
  assert.ok(rel <= tol, `${what}: relative error ${rel.toExponential(2)} > ${tol}`);
}

/** tf.grad for functions of a 4-D tensor. */
function grad4(f: (v: tf.Tensor4D) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  return tf.grad((v: tf.Tensor) => f(v as tf.Tensor4D));
}

function runKernel(name: string, inputs: Record<string, tf.Tensor>, attrs: object): tf.Tensor {
  return tf.engine().runKernel(name, inputs as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** Small deterministic generator for test configurations. */
function configs<C>(n: number, seed: number, make: (r: (k: number) => number) => C | null): C[] {
  const vals = rand(n * 64, seed);
  let j = 0;
  const r = (k: number) => Math.floor(((vals[j++ % vals.length] + 1) / 2) * k);
  const out: C[] = [];
  for (let i = 0; out.length < n && i < n * 20; i++) {
    const c = make(r);
    if (c) out.push(c);
  }
  return out;
}

function explicitPad(t: number, b: number, l: number, r: number): tf.backend_util.ExplicitPadding {
  return [[0, 0], [t, b], [l, r], [0, 0]] as tf.backend_util.ExplicitPadding;
}

function wasmBackend(): BackendWasm {
  return tf.findBackend('wasm') as BackendWasm;
}

// ---------- conv kernels against cpu ----------

interface ConvCase {
  B: number; H: number; W: number; cin: number; cout: number; kh: number; kw: number;
  s: [number, number]; d: [number, number]; pad: Pad;
}

function convCase(r: (k: number) => number, depthwise: boolean, allowDilation: boolean): ConvCase | null {
  const kh = 1 + r(5);
  const kw = 1 + r(4);
  const stride = [1, 2, 3][r(3)];
  const s: [number, number] = r(8) === 0 ? [1, 2] : [stride, stride];
  const dil = allowDilation && s[0] === 1 && s[1] === 1 && r(2) === 0 ? 2 : 1;
  const d: [number, number] = [dil, dil];
  const H = 3 + r(8);
  const W = 3 + r(8);
  const padKind = r(3);
  const pad: Pad = padKind === 0 ? 'same' : padKind === 1 ? 'valid' : explicitPad(r(kh), r(kh), r(kw), r(kw));
  const c: ConvCase = { B: 1 + r(2), H, W, cin: 1 + r(5), cout: depthwise ? 1 + r(3) : 1 + r(6), kh, kw, s, d, pad };
  const info = tf.backend_util.computeConv2DInfo([c.B, H, W, c.cin], [kh, kw, c.cin, c.cout], s, d, pad, undefined, depthwise);
  return info.outHeight > 0 && info.outWidth > 0 ? c : null;
}

function outShape(c: ConvCase, depthwise: boolean): number[] {
  const info = tf.backend_util.computeConv2DInfo([c.B, c.H, c.W, c.cin], [c.kh, c.kw, c.cin, c.cout], c.s, c.d, c.pad, undefined, depthwise);
  return info.outShape;
}

const label = (c: ConvCase) => JSON.stringify(c);

/** Filter with (d-1) zeros between taps: a conv with it equals the dilated conv. */
function dilateFilter(w: tf.Tensor4D, d: number): tf.Tensor4D {
  const [kh, kw, a, b] = w.shape;
  const buf = tf.buffer([(kh - 1) * d + 1, (kw - 1) * d + 1, a, b]);
  const v = w.arraySync();
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let p = 0; p < a; p++) for (let q = 0; q < b; q++) buf.set(v[i][j][p][q], i * d, j * d, p, q);
  return buf.toTensor() as tf.Tensor4D;
}

/** The taps of a gradient w.r.t. a dilated filter that belong to the original filter. */
function undilate(g: tf.Tensor4D, d: number, kh: number, kw: number): tf.Tensor4D {
  return tf.stridedSlice(g, [0, 0, 0, 0], [(kh - 1) * d + 1, (kw - 1) * d + 1, g.shape[2], g.shape[3]], [d, d, 1, 1]) as tf.Tensor4D;
}

/** The explicit padding of a (possibly dilated) conv case, for the equivalent undilated conv. */
function undilatedPad(c: ConvCase): tf.backend_util.ExplicitPadding {
  const { top, bottom, left, right } = tf.backend_util.computeConv2DInfo([c.B, c.H, c.W, c.cin], [c.kh, c.kw, c.cin, c.cout], c.s, c.d, c.pad, undefined, true).padInfo;
  return explicitPad(top, bottom, left, right);
}


describe('conv gradient kernels match cpu', () => {
  test('Conv2DBackpropInput (replaced: sub-pixel conv on XNNPACK)', async () => {
    const cases = configs(80, 1, (r) => convCase(r, false, false));
    // ResNet-like shapes, and a padding beyond the filter (falls back to the stock kernel).
    cases.push({ B: 2, H: 8, W: 8, cin: 16, cout: 32, kh: 3, kw: 3, s: [2, 2], d: [1, 1], pad: 'same' });
    cases.push({ B: 2, H: 8, W: 8, cin: 16, cout: 32, kh: 1, kw: 1, s: [2, 2], d: [1, 1], pad: 'valid' });
    cases.push({ B: 1, H: 5, W: 5, cin: 2, cout: 3, kh: 1, kw: 1, s: [1, 1], d: [1, 1], pad: explicitPad(1, 1, 0, 2) });
    // filters smaller than the stride (phases without taps), unequal strides
    cases.push({ B: 2, H: 9, W: 7, cin: 3, cout: 2, kh: 2, kw: 1, s: [3, 3], d: [1, 1], pad: 'valid' });
    cases.push({ B: 1, H: 8, W: 9, cin: 20, cout: 4, kh: 3, kw: 2, s: [1, 3], d: [1, 1], pad: 'same' });
    // Strided with 16+ input channels: one conv per phase (PER_PHASE_MIN_CHANNELS), incl. a 7x7 stem-like filter,
    // odd sizes, phases without taps, and a padding whose first tap lies past the phase grid's (stacked instead).
    cases.push({ B: 2, H: 9, W: 9, cin: 16, cout: 8, kh: 7, kw: 7, s: [2, 2], d: [1, 1], pad: explicitPad(3, 3, 3, 3) });
    cases.push({ B: 1, H: 7, W: 11, cin: 17, cout: 6, kh: 3, kw: 3, s: [2, 2], d: [1, 1], pad: 'same' });
    cases.push({ B: 2, H: 9, W: 7, cin: 16, cout: 3, kh: 2, kw: 1, s: [3, 3], d: [1, 1], pad: 'valid' });
    cases.push({ B: 1, H: 8, W: 8, cin: 16, cout: 4, kh: 3, kw: 3, s: [2, 2], d: [1, 1], pad: explicitPad(2, 0, 2, 0) });
    cases.push({ B: 1, H: 10, W: 10, cin: 32, cout: 8, kh: 3, kw: 3, s: [2, 2], d: [1, 1], pad: explicitPad(1, 1, 1, 1) });
    for (const c of cases) {
      const dyShape = outShape(c, false);
      const [cpu, wasm] = await both(() =>
        runKernel(tf.Conv2DBackpropInput, { dy: T(dyShape, 2), filter: T([c.kh, c.kw, c.cin, c.cout], 3) }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', inputShape: [c.B, c.H, c.W, c.cin],
        }));
      assertClose(wasm, cpu, label(c));
    }
  });

  test('sub-pixel geometry: every (phase, tap) pair used exactly once, inactive phases have no taps', () => {
    for (let s = 1; s <= 4; s++) {
      for (let k = 1; k <= 7; k++) {
        for (let p = 0; p < k; p++) {
          const g = subPixelDim(s, k, p)!;
          const used = new Set<number>();
          for (let r = 0; r < s; r++) {
            for (let j = 0; j < g.F; j++) {
              const t = tapOf(g, r, j);
              if (t < 0 || t >= k) continue;
              assert.ok(g.phases.includes(r), `s=${s} k=${k} p=${p}: phase ${r} has a tap`);
              assert.ok(!used.has(r * 100 + t));
              used.add(r * 100 + t);
            }
          }
          let expected = 0;
          for (let r = 0; r < s; r++) for (let t = 0; t < k; t++) if ((((t - r - p) % s) + s) % s === 0) expected++;
          assert.equal(used.size, expected, `s=${s} k=${k} p=${p}`);
          // The per-phase convs (strided case): a phase's taps are one run of positions, and nothing outside it.
          for (let r = 0; r < s; r++) {
            const run = tapRange(g, r);
            const taps = Array.from({ length: g.F }, (_, j) => j).filter((j) => tapOf(g, r, j) >= 0 && tapOf(g, r, j) < k);
            assert.deepEqual(run ? Array.from({ length: run.hi - run.lo + 1 }, (_, i) => run.lo + i) : [], taps, `s=${s} k=${k} p=${p} r=${r}`);
          }
        }
      }
    }
  });

  // cpu's depthwise backprop kernels ignore dilations; for d > 1 the reference runs them on the
  // zero-inserted filter (an equivalent undilated conv) instead.
  test('DepthwiseConv2dNativeBackpropInput (added)', async () => {
    for (const c of configs(50, 4, (r) => convCase(r, true, true))) {
      if (c.s[0] !== c.s[1]) continue; // tfjs depthwise requires equal strides
      const dyShape = outShape(c, true);
      const dy = () => T(dyShape, 5);
      const filter = () => T([c.kh, c.kw, c.cin, c.cout], 6) as tf.Tensor4D;
      const attrs = { strides: c.s, dilations: c.d, pad: c.pad, inputShape: [c.B, c.H, c.W, c.cin] };
      const wasm = await on('wasm', () => runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy: dy(), filter: filter() }, attrs));
      const cpu = await on('cpu', () => runKernel(tf.DepthwiseConv2dNativeBackpropInput, { dy: dy(), filter: dilateFilter(filter(), c.d[0]) },
        { ...attrs, dilations: 1, pad: undilatedPad(c) }));
      assertClose(wasm, cpu, label(c));
    }
  });

  test('Conv2DBackpropFilter (added)', async () => {
    for (const c of configs(40, 7, (r) => convCase(r, false, false))) {
      const dyShape = outShape(c, false);
      const [cpu, wasm] = await both(() =>
        runKernel(tf.Conv2DBackpropFilter, { x: T([c.B, c.H, c.W, c.cin], 8), dy: T(dyShape, 9) }, {
          strides: c.s, pad: c.pad, dataFormat: 'NHWC', filterShape: [c.kh, c.kw, c.cin, c.cout],
        }));
      assertClose(wasm, cpu, label(c));
    }
  });

  test('DepthwiseConv2dNativeBackpropFilter (added)', async () => {
    for (const c of configs(40, 10, (r) => convCase(r, true, true))) {
      if (c.s[0] !== c.s[1]) continue;
      const dyShape = outShape(c, true);
      const x = () => T([c.B, c.H, c.W, c.cin], 11);
      const dy = () => T(dyShape, 12);
      const d = c.d[0];
      const wasm = await on('wasm', () => runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: x(), dy: dy() }, {
        strides: c.s, dilations: c.d, pad: c.pad, filterShape: [c.kh, c.kw, c.cin, c.cout],
      }));
      const cpu = await on('cpu', () => undilate(runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x: x(), dy: dy() }, {
        strides: c.s, dilations: 1, pad: undilatedPad(c), filterShape: [(c.kh - 1) * d + 1, (c.kw - 1) * d + 1, c.cin, c.cout],
      }) as tf.Tensor4D, d, c.kh, c.kw));
      assertClose(wasm, cpu, label(c));
    }
  });
});

// ---------- other replaced kernels ----------

describe('replaced kernels', () => {
  test('MaxPoolGrad matches cpu, including negative windows and ties', async () => {
    const cases: [number[], number, number, 'same' | 'valid'][] = [
      [[2, 8, 8, 3], 2, 2, 'valid'], [[1, 7, 9, 2], 3, 2, 'same'], [[2, 6, 6, 4], 3, 1, 'same'], [[1, 5, 5, 1], 2, 1, 'valid'],
    ];
    for (const [shape, f, s, pad] of cases) {
      for (const kind of ['normal', 'negative', 'ties', 'relu']) {
        const make = () => {
          let x = T(shape, 13);
          if (kind === 'negative') x = tf.sub(tf.abs(x), 1.01);
          if (kind === 'ties') x = tf.div(tf.round(tf.mul(x, 2)), 2);
          if (kind === 'relu') x = tf.relu(x);
          const w = T(tf.maxPool(x as tf.Tensor4D, f, s, pad).shape, 14);
          return grad4((v) => tf.sum(tf.mul(tf.maxPool(v, f, s, pad), w)))(x as tf.Tensor4D);
        };
        const [cpu, wasm] = await both(make);
        assertClose(wasm, cpu, `${shape} f=${f} s=${s} ${pad} ${kind}`, 1e-6); // only summation order differs
      }
    }
  });

  test('AvgPoolGrad: equals cpu for valid padding, and is the adjoint of the forward pool for same padding', async () => {
    const cases: [number[], number, number, 'same' | 'valid'][] = [
      [[2, 8, 8, 3], 2, 2, 'valid'], [[1, 7, 9, 20], 3, 2, 'valid'], [[2, 6, 7, 4], 3, 1, 'same'], [[1, 5, 5, 2], 2, 2, 'same'], [[2, 9, 9, 3], 3, 2, 'same'],
    ];
    for (const [shape, f, s, pad] of cases) {
      const pool = (v: tf.Tensor4D) => tf.avgPool(v, f, s, pad);
      if (pad === 'valid') {
        const [cpu, wasm] = await both(() => grad4((v) => tf.sum(tf.mul(pool(v), T(pool(v).shape, 61))))(T(shape, 60)));
        assertClose(wasm, cpu, `${shape} f=${f} s=${s} ${pad}`);
      }
      // cpu's (and stock wasm's) gradient divides by the full window at 'same' borders: check the adjoint.
      tf.tidy(() => {
        const x = T(shape, 60) as tf.Tensor4D;
        const dy = T(pool(x).shape, 61);
        const g = grad4((v) => tf.sum(tf.mul(pool(v), dy)))(x);
        const lhs = tf.sum(tf.mul(pool(x), dy)).dataSync()[0];
        const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
        assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `${shape} f=${f} s=${s} ${pad}: ${lhs} vs ${rhs}`);
      });
    }
  });

  test('ResizeNearestNeighborGrad is the adjoint of the forward resize (batch > 1)', async () => {
    // cpu's kernel (like wasm's stock one) is wrong for batch > 1, so check <resize(x), dy> = <x, grad(dy)>.
    for (const [inS, outS] of [[[4, 4], [8, 8]], [[3, 5], [7, 4]], [[6, 6], [3, 4]]] as [number[], number[]][]) {
      for (const [ac, hp] of [[false, false], [true, false], [false, true]]) {
        tf.tidy(() => {
          const x = T([3, inS[0], inS[1], 2], 15);
          const dy = T([3, outS[0], outS[1], 2], 16);
          const resize = (v: tf.Tensor4D) => tf.image.resizeNearestNeighbor(v, outS as [number, number], ac, hp);
          const g = grad4((v) => tf.sum(tf.mul(resize(v), dy)))(x as tf.Tensor4D);
          const lhs = tf.sum(tf.mul(resize(x as tf.Tensor4D), dy)).dataSync()[0];
          const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
          assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `${inS}->${outS} ac=${ac} hp=${hp}: ${lhs} vs ${rhs}`);
        });
      }
    }
    // and equal to cpu where cpu is right (batch 1, 2x)
    const [cpu, wasm] = await both(() =>
      grad4((v) => tf.sum(tf.mul(tf.image.resizeNearestNeighbor(v, [8, 10]), T([1, 8, 10, 3], 18))))(T([1, 4, 5, 3], 17) as tf.Tensor4D));
    assertClose(wasm, cpu, 'batch 1');
  });

  // cpu's (and stock wasm's) kernel ignores half_pixel_centers (TF2's default in tf.image.resize), and cpu's
  // returns a transposed shape for non-square images: there, only the adjoint identity is a valid reference.
  test('ResizeBilinearGrad is the adjoint of the forward resize, and matches cpu without half-pixel centers', async () => {
    for (const [inS, outS] of [[[4, 4], [8, 8]], [[3, 5], [7, 4]], [[6, 6], [3, 4]], [[5, 7], [16, 9]]] as [number[], number[]][]) {
      for (const [ac, hp] of [[false, false], [true, false], [false, true]]) {
        const resize = (v: tf.Tensor4D) => tf.image.resizeBilinear(v, outS as [number, number], ac, hp);
        if (!hp && inS[0] === inS[1]) {
          const [cpu, wasm] = await both(() => grad4((v) => tf.sum(tf.mul(resize(v), T([2, outS[0], outS[1], 17], 63))))(T([2, inS[0], inS[1], 17], 62)));
          assertClose(wasm, cpu, `${inS}->${outS} ac=${ac}`);
        }
        tf.tidy(() => {
          const x = T([2, inS[0], inS[1], 3], 64) as tf.Tensor4D;
          const dy = T([2, outS[0], outS[1], 3], 65);
          const g = grad4((v) => tf.sum(tf.mul(resize(v), dy)))(x);
          const lhs = tf.sum(tf.mul(resize(x), dy)).dataSync()[0];
          const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
          assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `adjoint ${inS}->${outS} ac=${ac} hp=${hp}: ${lhs} vs ${rhs}`);
        });
      }
    }
  });

  test('Tile matches cpu (ranks 1-5, float32/int32/bool)', async () => {
    const cases: [number[], number[]][] = [[[5], [3]], [[2, 3], [2, 1]], [[1, 1, 1, 4], [3, 2, 2, 1]], [[2, 1, 3], [1, 4, 2]], [[2, 2, 1, 2, 3], [2, 1, 3, 1, 2]], [[3, 2], [1, 1]]];
    for (const [shape, reps] of cases) {
      for (const dtype of ['float32', 'int32', 'bool'] as const) {
        // (built from arrays: wasm's own Cast to bool is wrong for values other than 0 and 1)
        const vals = Array.from(rand(size(shape), 19), (v) => Math.round(v * 3));
        const make = () => (dtype === 'bool' ? tf.tensor(vals.map((v) => v > 0), shape, 'bool') : tf.tensor(vals, shape, dtype));
        const [cpu, wasm] = await both(() => tf.cast(tf.tile(make(), reps), 'float32'));
        assertClose(wasm, cpu, `${shape} x ${reps} ${dtype}`, 0);
      }
    }
  });

  test('Slice matches cpu (ranks 1-5, partial and whole dims, int32)', async () => {
    const cases: [number[], number[], number[]][] = [
      [[10], [3], [5]], [[4, 6], [1, 2], [2, 3]], [[4, 6], [1, 0], [2, 6]], [[2, 5, 6, 3], [0, 1, 1, 0], [2, 3, 4, 3]],
      [[2, 5, 6, 3], [1, 0, 0, 0], [1, 5, 6, 3]], [[2, 5, 6, 3], [0, 0, 0, 1], [2, 5, 6, 2]], [[2, 3, 4, 5, 2], [1, 1, 0, 2, 0], [1, 2, 4, 3, 2]],
    ];
    for (const [shape, begin, sz] of cases) {
      for (const dtype of ['float32', 'int32'] as const) {
        const [cpu, wasm] = await both(() => tf.cast(tf.slice(tf.cast(tf.mul(T(shape, 50), 100), dtype), begin, sz), 'float32'));
        assertClose(wasm, cpu, `${shape} [${begin}] [${sz}] ${dtype}`, 0);
      }
    }
  });

  test('Cast: same dtype shares data, to bool is x != 0 (stock wasm: 0.5 -> false), numbers match cpu', async () => {
    for (const to of ['bool', 'int32', 'float32'] as const) {
      for (const from of ['float32', 'int32'] as const) {
        const vals = [0, 0.5, -0.5, 1, -1, 2.7, -300, 255, 256];
        const [cpu, wasm] = await both(() => tf.cast(tf.cast(tf.cast(tf.tensor(vals), from), to), 'float32'));
        assertClose(wasm, cpu, `${from} -> ${to}`, 0);
      }
    }
    const backend = wasmBackend();
    const ids0 = backend.numDataIds();
    const x = T([3, 4], 51);
    const y = tf.cast(x, 'float32');
    assert.equal(backend.numDataIds(), ids0 + 1);
    x.dispose();
    assert.equal(y.dataSync().length, 12);
    y.dispose();
    assert.equal(backend.numDataIds(), ids0);
  });

  test('BatchMatMul / _FusedMatMul with transposed operands match cpu (and repeated weights are cached)', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7], [7, 3], false, false], [[7, 5], [7, 3], true, false], [[5, 7], [3, 7], false, true], [[7, 5], [3, 7], true, true],
      [[2, 40, 33], [2, 40, 35], true, false], [[2, 33, 40], [1, 35, 40], false, true],
    ];
    for (const [as, bs, ta, tb] of cases) {
      const b = T(bs, 53);
      for (let rep = 0; rep < 3; rep++) { // the same b: second use is served from the cache
        const [cpu, wasm] = await both(() => tf.matMul(T(as, 52 + rep), b, ta, tb));
        assertClose(wasm, cpu, `matMul ${as} ${bs} ${ta} ${tb}`);
      }
      if (as.length === 2) {
        const bias = T([ta ? as[1] : as[0], tb ? bs[0] : bs[1]].slice(1), 54);
        const [cpu, wasm] = await both(() => tf.fused.matMul({ a: T(as, 55), b: T(bs, 56), transposeA: ta, transposeB: tb, bias, activation: 'relu' }));
        assertClose(wasm, cpu, `fused matMul ${as} ${bs} ${ta} ${tb}`);
      }
      b.dispose();
    }
  });

  test('Identity shares data: clones stay valid after the source is disposed, nothing leaks', () => {
    const backend = wasmBackend();
    const ids0 = backend.numDataIds();
    const x = T([4, 5], 20);
    const y = tf.clone(x);
    const ref = Float32Array.from(x.dataSync());
    x.dispose();
    assertClose(y.dataSync() as Float32Array, ref, 'clone', 0);
    y.dispose();
    assert.equal(backend.numDataIds(), ids0);
  });
});

// ---------- gradient fixes against independent references ----------

describe('gradient fixes', () => {
  test('dilated Conv2D: input and filter gradients equal those of the zero-inserted filter', async () => {
    for (const [pad, d, k] of [['same', 2, 3], ['valid', 2, 3], ['same', 3, 2]] as ['same' | 'valid', number, number][]) {
      const x = () => T([2, 9, 8, 3], 21) as tf.Tensor4D;
      const w = () => T([k, k, 3, 4], 22) as tf.Tensor4D;
      const dyW = (shape: number[]) => T(shape, 23);
      const loss = (xx: tf.Tensor4D, ww: tf.Tensor4D, dil: number) => {
        const y = tf.conv2d(xx, ww, 1, pad, 'NHWC', dil);
        return tf.sum(tf.mul(y, dyW(y.shape)));
      };
      for (const which of [0, 1]) {
        const wasm = await on('wasm', () => tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx as tf.Tensor4D, ww as tf.Tensor4D, d))([x(), w()])[which]);
        const ref = await on('cpu', () => {
          const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx as tf.Tensor4D, ww as tf.Tensor4D, 1))([x(), dilateFilter(w(), d)]);
          return which === 0 ? g[0] : undilate(g[1] as tf.Tensor4D, d, k, k);
        });
        assertClose(wasm, ref, `conv2d ${pad} d=${d} k=${k} ${which ? 'filter' : 'x'}`);
      }
    }
  });

  test('dilated depthwise conv: input and filter gradients equal those of the zero-inserted filter', async () => {
    for (const [pad, d, M] of [['same', 2, 1], ['valid', 2, 2], ['same', 3, 3]] as ['same' | 'valid', number, number][]) {
      const x = () => T([2, 9, 9, 3], 24) as tf.Tensor4D;
      const w = () => T([3, 3, 3, M], 25) as tf.Tensor4D;
      const loss = (xx: tf.Tensor4D, ww: tf.Tensor4D, dil: number) => {
        const y = tf.depthwiseConv2d(xx, ww, 1, pad, 'NHWC', dil);
        return tf.sum(tf.mul(y, T(y.shape, 26)));
      };
      for (const which of [0, 1]) {
        const wasm = await on('wasm', () => tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx as tf.Tensor4D, ww as tf.Tensor4D, d))([x(), w()])[which]);
        const ref = await on('cpu', () => {
          const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => loss(xx as tf.Tensor4D, ww as tf.Tensor4D, 1))([x(), dilateFilter(w(), d)]);
          return which === 0 ? g[0] : undilate(g[1] as tf.Tensor4D, d, 3, 3);
        });
        assertClose(wasm, ref, `depthwise ${pad} d=${d} M=${M} ${which ? 'filter' : 'x'}`);
      }
    }
  });

  test('FusedBatchNorm gradient equals that of the explicit formula (all five inputs)', () => {
    tf.tidy(() => {
      const x = T([2, 4, 4, 3], 27);
      const mean = T([3], 28);
      const variance = tf.add(tf.abs(T([3], 29)), 0.1);
      const scale = T([3], 30);
      const offset = T([3], 31);
      const w = T([2, 4, 4, 3], 32);
      const eps = 1e-3;
      const fused = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
        tf.sum(tf.mul(tf.batchNorm(a, m, v, o, s, eps), w)))([x, mean, variance, scale, offset]);
      const explicit = tf.grads((a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, s: tf.Tensor, o: tf.Tensor) =>
        tf.sum(tf.mul(tf.add(tf.mul(tf.mul(tf.sub(a, m), tf.rsqrt(tf.add(v, eps))), s), o), w)))([x, mean, variance, scale, offset]);
      ['x', 'mean', 'variance', 'scale', 'offset'].forEach((n, i) =>
        assertClose(fused[i].dataSync() as Float32Array, explicit[i].dataSync() as Float32Array, n));
    });
  });

  test('StridedSlice gradient is the adjoint of the slice (masks, negative strides)', () => {
    const cases: [number[], number[], number[], number[], number, number, number, number, number][] = [
      [[2, 5, 6, 3], [0, 1, 0, 0], [2, 5, 6, 3], [1, 2, 1, 1], 0, 0, 0, 0, 0],
      [[2, 5, 6, 3], [0, 0, 0, 2], [0, 0, 0, 0], [1, 1, 1, -1], 7, 15, 0, 0, 0], // x[..., ::-1]
      [[2, 5, 6, 3], [0, 1, 1, 0], [0, -1, -1, 0], [1, 1, 1, 1], 9, 9, 0, 0, 0], // crop 1 px
      [[4, 6], [1, 1], [3, 5], [1, 1], 0, 0, 0, 0, 1], // shrink axis 0 (tfjs's forward is wrong with shrink + stride > 1)
      [[3, 4, 5], [0, 1], [0, 3], [1, 1], 0, 0, 1, 0, 0], // ellipsis
      [[3, 4], [0, 0, 1], [3, 0, 4], [1, 1, 2], 0, 0, 0, 2, 0], // new axis
      [[2, 6], [0, 5], [2, 0], [1, -2], 0, 0, 0, 0, 0],
    ];
    for (const [shape, b, e, s, bm, em, ell, na, sh] of cases) {
      tf.tidy(() => {
        const f = (v: tf.Tensor) => tf.stridedSlice(v, b, e, s, bm, em, ell, na, sh);
        const x = T(shape, 33);
        const dy = T(f(x).shape, 34);
        const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), dy)))(x);
        const lhs = tf.sum(tf.mul(f(x), dy)).dataSync()[0];
        const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
        assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `${shape} ${b}:${e}:${s}: ${lhs} vs ${rhs}`);
        assert.deepEqual(g.shape, shape);
      });
    }
  });

  test('DepthToSpace gradient is the adjoint (NHWC)', () => {
    tf.tidy(() => {
      const x = T([2, 3, 4, 8], 35) as tf.Tensor4D;
      const f = (v: tf.Tensor4D) => tf.depthToSpace(v, 2, 'NHWC');
      const dy = T(f(x).shape, 36);
      const g = grad4((v) => tf.sum(tf.mul(f(v), dy)))(x);
      const lhs = tf.sum(tf.mul(f(x), dy)).dataSync()[0];
      const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
      assert.ok(Math.abs(lhs - rhs) < 1e-4 * (1 + Math.abs(lhs)), `${lhs} vs ${rhs}`);
    });
  });

  test('fused ops under tf.grad: same input gradient, and no filter gradient is computed', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [6, 6, 3], filters: 4, kernelSize: 3, padding: 'same' }),
        tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, activation: 'relu' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, activation: 'relu' }),
        tfl.layers.dense({ units: 2 }),
      ],
    });
    const x = T([2, 6, 6, 3], 37);
    const g = () => tf.grad((v: tf.Tensor) => tf.sum(tf.square(model.apply(v, { training: false }) as tf.Tensor)))(x);
    const kernels = async () => new Set((await tf.profile(() => { g().dataSync(); })).kernelNames);
    const patched = read(g);
    assert.ok(!(await kernels()).has(tf.Conv2DBackpropFilter));
    uninstallFusedGradMode();
    try {
      const stock = read(g);
      assert.ok((await kernels()).has(tf.Conv2DBackpropFilter)); // what tfjs's fused custom gradient does
      assertClose(patched, stock, 'patched vs stock fused gradient');
    } finally {
      installFusedGradMode();
    }
    model.dispose();
    x.dispose();
  });
});

// ---------- end to end: input gradients of layers models, wasm vs cpu ----------

type LayerMaker = (inputShape: number[]) => tfl.layers.Layer[];
const I = [8, 8, 4];
const one = (f: (s: number[]) => tfl.layers.Layer): LayerMaker => (s) => [f(s)];
const LAYERS: [string, LayerMaker, number[]?][] = [
  ['Conv2D same s1 bias', one((s) => tfl.layers.conv2d({ inputShape: s, filters: 5, kernelSize: 3, padding: 'same' }))],
  ['Conv2D valid s2 no bias', one((s) => tfl.layers.conv2d({ inputShape: s, filters: 5, kernelSize: 3, strides: 2, useBias: false }))],
  ['Conv2D 1x1 s2', one((s) => tfl.layers.conv2d({ inputShape: s, filters: 6, kernelSize: 1, strides: 2 }))],
  ['Conv2D dilated', one((s) => tfl.layers.conv2d({ inputShape: s, filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' }))],
  ['Conv2D relu', one((s) => tfl.layers.conv2d({ inputShape: s, filters: 3, kernelSize: 5, padding: 'same', activation: 'relu' }))],
  ['DepthwiseConv2D', one((s) => tfl.layers.depthwiseConv2d({ inputShape: s, kernelSize: 3, padding: 'same' }))],
  ['DepthwiseConv2D s2 x2', one((s) => tfl.layers.depthwiseConv2d({ inputShape: s, kernelSize: 3, strides: 2, depthMultiplier: 2 }))],
  ['SeparableConv2D', one((s) => tfl.layers.separableConv2d({ inputShape: s, filters: 5, kernelSize: 3, padding: 'same' }))],
  ['SeparableConv2D dilated', one((s) => tfl.layers.separableConv2d({ inputShape: s, filters: 5, kernelSize: 3, dilationRate: 2, padding: 'same' }))],
  ['Conv2DTranspose s2', one((s) => tfl.layers.conv2dTranspose({ inputShape: s, filters: 3, kernelSize: 3, strides: 2, padding: 'same' }))],
  ['Conv2DTranspose valid', one((s) => tfl.layers.conv2dTranspose({ inputShape: s, filters: 3, kernelSize: 4, strides: 1 }))],
  ['BatchNormalization', one((s) => tfl.layers.batchNormalization({ inputShape: s, movingVarianceInitializer: 'ones', gammaInitializer: 'randomNormal', movingMeanInitializer: 'randomNormal' }))],
  ['MaxPooling2D', one((s) => tfl.layers.maxPooling2d({ inputShape: s, poolSize: 2 }))],
  ['MaxPooling2D 3x3 s2 same', one((s) => tfl.layers.maxPooling2d({ inputShape: s, poolSize: 3, strides: 2, padding: 'same' }))],
  ['AveragePooling2D', one((s) => tfl.layers.averagePooling2d({ inputShape: s, poolSize: 2 }))],
  ['AveragePooling2D 3x3 s1 valid', one((s) => tfl.layers.averagePooling2d({ inputShape: s, poolSize: 3, strides: 1 }))],
  ['GlobalAveragePooling2D', one((s) => tfl.layers.globalAveragePooling2d({ inputShape: s }))],
  ['GlobalMaxPooling2D', one((s) => tfl.layers.globalMaxPooling2d({ inputShape: s }))],
  ['Dense', one((s) => tfl.layers.dense({ inputShape: s, units: 4 })), [10]],
  ['Dense relu', one((s) => tfl.layers.dense({ inputShape: s, units: 4, activation: 'relu' })), [10]],
  ...(['relu', 'relu6', 'elu', 'selu', 'sigmoid', 'tanh', 'softmax', 'softplus', 'swish', 'hardSigmoid', 'gelu', 'mish'] as const).map(
    (a): [string, LayerMaker] => [`Activation ${a}`, one((s) => tfl.layers.activation({ inputShape: s, activation: a }))]),
  ['LeakyReLU', one((s) => tfl.layers.leakyReLU({ inputShape: s, alpha: 0.2 }))],
  ['PReLU', one((s) => tfl.layers.prelu({ inputShape: s, alphaInitializer: tfl.initializers.constant({ value: 0.3 }) }))],
  ['ReLU max 6', one((s) => tfl.layers.reLU({ inputShape: s, maxValue: 6 }))],
  ['Softmax layer', one((s) => tfl.layers.softmax({ inputShape: s, axis: -1 }))],
  ['ZeroPadding2D', one((s) => tfl.layers.zeroPadding2d({ inputShape: s, padding: [[1, 2], [2, 1]] }))],
  ['Cropping2D', one((s) => tfl.layers.cropping2D({ inputShape: s, cropping: [[1, 2], [0, 1]] }))],
  ['UpSampling2D bilinear', one((s) => tfl.layers.upSampling2d({ inputShape: s, size: [2, 3], interpolation: 'bilinear' }))],
  ['Flatten', one((s) => tfl.layers.flatten({ inputShape: s }))],
  ['Reshape', one((s) => tfl.layers.reshape({ inputShape: s, targetShape: [32, 8] }))],
  ['Dropout', one((s) => tfl.layers.dropout({ inputShape: s, rate: 0.5 }))],
];

function merge(kind: 'add' | 'multiply' | 'concatenate'): tfl.LayersModel {
  const inp = tfl.input({ shape: I });
  const a = tfl.layers.conv2d({ filters: 4, kernelSize: 1 }).apply(inp) as tfl.SymbolicTensor;
  const b = tfl.layers.activation({ activation: 'tanh' }).apply(inp) as tfl.SymbolicTensor;
  const layer = kind === 'add' ? tfl.layers.add() : kind === 'multiply' ? tfl.layers.multiply() : tfl.layers.concatenate();
  return tfl.model({ inputs: inp, outputs: layer.apply([a, b]) as tfl.SymbolicTensor });
}

/** Output weighting for the loss sum(w * y): fixed, so both backends differentiate the same function. */
function weights(shape: number[]): tf.Tensor {
  return tf.reshape(tf.linspace(-1, 1.5, size(shape)), shape);
}

/** Input gradient of sum(w * model(x)). */
function inputGrad(model: tfl.LayersModel, x: tf.Tensor, w?: tf.Tensor): tf.Tensor {
  const $w = w ?? weights((model.apply(x, { training: false }) as tf.Tensor).shape);
  return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.apply(v, { training: false }) as tf.Tensor, $w)))(x);
}

describe('input gradients of layers models: wasm (our kernels) = cpu', () => {
  const models: [string, tfl.LayersModel, number[]][] = [];
  before(() => {
    for (const [name, make, shape = I] of LAYERS) models.push([name, tfl.sequential({ layers: make(shape) }), shape]);
    for (const k of ['add', 'multiply', 'concatenate'] as const) models.push([k, merge(k), I]);
    const up = tfl.sequential({ layers: [tfl.layers.upSampling2d({ inputShape: I, size: [2, 2] })] });
    models.push(['UpSampling2D nearest', up, I]);
  });

  test('every layer type', async () => {
    for (const [name, model, shape] of models) {
      const xs = [2, ...shape];
      const wasm = await on('wasm', () => inputGrad(model, T(xs, 40)));
      // cpu's ResizeNearestNeighborGrad is wrong for batch > 1: use it one image at a time.
      const cpu = name === 'UpSampling2D nearest'
        ? await on('cpu', () => {
          const x = T(xs, 40);
          const w = weights((model.apply(x) as tf.Tensor).shape);
          return tf.concat([0, 1].map((i) => inputGrad(model, tf.slice(x, [i], [1]), tf.slice(w, [i], [1]))));
        })
        : await on('cpu', () => inputGrad(model, T(xs, 40)));
      assertClose(wasm, cpu, name);
    }
  });
});

// ---------- end to end: graph models ----------

const b64 = (s: string) => Buffer.from(s).toString('base64');
const A = {
  s: (v: string) => ({ s: b64(v) }),
  ints: (v: number[]) => ({ list: { i: v.map(String) } }),
  strs: (v: string[]) => ({ list: { s: v.map(b64) } }),
  i: (v: number) => ({ i: String(v) }),
  f: (v: number) => ({ f: v }),
  b: (v: boolean) => ({ b: v }),
  T: { type: 'DT_FLOAT' },
};

/** A minimal graph-model builder (GraphDef JSON + weights in memory). */
class Graph {
  nodes: { name: string; op: string; input?: string[]; attr?: object }[] = [];
  specs: tf.io.WeightsManifestEntry[] = [];
  data: Uint8Array[] = [];
  private n = 0;
  constructor(inputShape: number[]) {
    this.nodes.push({ name: 'x', op: 'Placeholder', attr: { dtype: A.T, shape: { shape: { dim: inputShape.map((d) => ({ size: String(d) })) } } } });
  }
  c(values: Float32Array | Int32Array, shape: number[]): string {
    const name = `c${this.n++}`;
    const int = values instanceof Int32Array;
    const type = int ? 'DT_INT32' : 'DT_FLOAT';
    this.nodes.push({ name, op: 'Const', attr: { dtype: { type }, value: { tensor: { dtype: type, tensorShape: { dim: shape.map((d) => ({ size: String(d) })) } } } } });
    this.specs.push({ name, shape, dtype: int ? 'int32' : 'float32' });
    this.data.push(new Uint8Array(values.slice().buffer));
    return name;
  }
  w(shape: number[], seed: number): string {
    return this.c(rand(size(shape), seed).map((v) => v * 0.5), shape);
  }
  op(op: string, input: string[], attr: object = {}): string {
    const name = `n${this.n++}_${op}`;
    this.nodes.push({ name, op, input, attr: { T: A.T, ...attr } });
    return name;
  }
  async load(unfuse = false): Promise<tfc.GraphModel> {
    const topology = JSON.parse(JSON.stringify({ node: this.nodes, versions: { producer: 1 } }));
    if (unfuse) assert.ok(unfuseGraphModel(topology) > 0);
    const buf = new Uint8Array(this.data.reduce((a, d) => a + d.length, 0));
    let o = 0;
    for (const d of this.data) { buf.set(d, o); o += d.length; }
    return tfc.loadGraphModel(tf.io.fromMemory({
      modelTopology: topology, weightSpecs: this.specs, weightData: buf.buffer, format: 'graph-model',
    }));
  }
}

const convAttrs = (s: number, pad = 'SAME', dil = 1) => ({ strides: A.ints([1, s, s, 1]), padding: A.s(pad), data_format: A.s('NHWC'), dilations: A.ints([1, dil, dil, 1]) });
const fused = (ops: string[]) => ({ num_args: A.i(1), fused_ops: A.strs(ops) });

/** Two graph models that between them use the graph ops a converted vision model uses on the input path. */
function graphs(): [string, Graph, string][] {
  const out: [string, Graph, string][] = [];
  {
    const g = new Graph([-1, 8, 8, 3]);
    let h = g.op('StridedSlice', ['x', g.c(new Int32Array([0, 0, 0, 2]), [4]), g.c(new Int32Array([0, 0, 0, 0]), [4]), g.c(new Int32Array([1, 1, 1, -1]), [4])],
      { Index: { type: 'DT_INT32' }, begin_mask: A.i(7), end_mask: A.i(15), ellipsis_mask: A.i(0), new_axis_mask: A.i(0), shrink_axis_mask: A.i(0) });
    h = g.op('Pad', [h, g.c(new Int32Array([0, 0, 1, 1, 1, 1, 0, 0]), [4, 2])]);
    h = g.op('_FusedConv2D', [h, g.w([3, 3, 3, 8], 1), g.w([8], 2)], { ...convAttrs(2, 'VALID'), ...fused(['BiasAdd']) });
    h = g.op('FusedBatchNormV3', [h, g.w([8], 3), g.w([8], 4), g.w([8], 5), g.c(new Float32Array(8).fill(1.5), [8])], { U: A.T, epsilon: A.f(0.001), data_format: A.s('NHWC'), is_training: A.b(false) });
    h = g.op('Relu6', [h]);
    h = g.op('FusedDepthwiseConv2dNative', [h, g.w([3, 3, 8, 1], 6), g.w([8], 7)], { ...convAttrs(1), ...fused(['BiasAdd']) });
    const skip = g.op('_FusedConv2D', [h, g.w([1, 1, 8, 8], 8), g.w([8], 9)], { ...convAttrs(1), ...fused(['BiasAdd', 'Relu']) });
    h = g.op('AddV2', [h, skip]);
    h = g.op('MaxPool', [h], { ksize: A.ints([1, 3, 3, 1]), strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME'), data_format: A.s('NHWC') });
    const feat = h;
    h = g.op('Mean', [h, g.c(new Int32Array([1, 2]), [2])], { keep_dims: A.b(false), Tidx: { type: 'DT_INT32' } });
    h = g.op('_FusedMatMul', [h, g.w([8, 5], 10), g.w([5], 11)], { transpose_a: A.b(false), transpose_b: A.b(false), ...fused(['BiasAdd']) });
    out.push(['classifier feature', g, feat], ['classifier logits', g, g.op('Softmax', [h])]);
  }
  {
    const g = new Graph([-1, 8, 8, 4]);
    let h = g.op('SpaceToBatchND', ['x', g.c(new Int32Array([2, 2]), [2]), g.c(new Int32Array([2, 2, 2, 2]), [2, 2])]);
    h = g.op('Conv2D', [h, g.w([3, 3, 4, 8], 12)], convAttrs(1, 'VALID'));
    h = g.op('BatchToSpaceND', [h, g.c(new Int32Array([2, 2]), [2]), g.c(new Int32Array([0, 0, 0, 0]), [2, 2])]);
    h = g.op('Conv2D', [h, g.w([3, 3, 8, 8], 13)], convAttrs(1, 'SAME', 2));
    h = g.op('DepthToSpace', [h], { block_size: A.i(2), data_format: A.s('NHWC') });
    // (half_pixel_centers false: cpu's gradient ignores it; our kernel is checked by its adjoint above)
    h = g.op('ResizeBilinear', [h, g.c(new Int32Array([12, 12]), [2])], { align_corners: A.b(false), half_pixel_centers: A.b(false) });
    h = g.op('MirrorPad', [h, g.c(new Int32Array([0, 0, 1, 1, 1, 1, 0, 0]), [4, 2])], { mode: A.s('REFLECT') });
    h = g.op('Conv2DBackpropInput', [g.c(new Int32Array([2, 28, 28, 3]), [4]), g.w([3, 3, 3, 2], 14), h], { strides: A.ints([1, 2, 2, 1]), padding: A.s('SAME'), data_format: A.s('NHWC') });
    out.push(['segmentation head', g, g.op('Sigmoid', [h])]);
  }
  return out;
}

describe('input gradients of graph models: wasm (our kernels) = cpu', () => {
  test('fused convs, depthwise, batch norm, pooling, strided slice, atrous, depth-to-space, resize, transposed conv', async () => {
    for (const [name, g, node] of graphs()) {
      const model = await g.load();
      const shape = [2, ...(g.nodes[0].attr as { shape: { shape: { dim: { size: string }[] } } }).shape.shape.dim.slice(1).map((d) => Number(d.size))];
      const grad = () => tf.grad((v: tf.Tensor) => {
        const y = model.execute(v, node) as tf.Tensor;
        return tf.sum(tf.mul(y, tf.reshape(tf.linspace(-1, 1.5, y.size), y.shape)));
      })(T(shape, 41));
      const [cpu, wasm] = await both(grad);
      assertClose(wasm, cpu, name);
      model.dispose();
    }
  });
});

describe('unfuseGraphModel', () => {
  test('same values and input gradients, no filter gradient, dilated fused convs differentiable', async () => {
    const g = new Graph([-1, 8, 8, 3]);
    let h = g.op('_FusedConv2D', ['x', g.w([3, 3, 3, 6], 51), g.w([6], 52)], { ...convAttrs(1), ...fused(['BiasAdd']) });
    h = g.op('_FusedConv2D', [h, g.w([3, 3, 6, 6], 53), g.w([6], 54)], { ...convAttrs(2), ...fused(['BiasAdd', 'Relu6']) });
    h = g.op('FusedDepthwiseConv2dNative', [h, g.w([3, 3, 6, 1], 55), g.w([6], 56), g.w([6], 57)], { ...convAttrs(1), ...fused(['BiasAdd', 'Prelu']), num_args: A.i(2) });
    h = g.op('_FusedConv2D', [h, g.w([1, 1, 6, 4], 58), g.w([4], 59)], { ...convAttrs(1), ...fused(['BiasAdd', 'LeakyRelu']), leakyrelu_alpha: A.f(0.3) });
    const beforeDilated = h;
    h = g.op('Reshape', [h, g.c(new Int32Array([-1, 64]), [2])]);
    const logits = g.op('_FusedMatMul', [h, g.w([64, 5], 60), g.w([5], 61)], { transpose_a: A.b(false), transpose_b: A.b(false), ...fused(['BiasAdd', 'Elu']) });
    const dilated = g.op('_FusedConv2D', [beforeDilated, g.w([3, 3, 4, 2], 62), g.w([2], 63)], { ...convAttrs(1, 'SAME', 2), ...fused(['BiasAdd']) });
    const [fusedModel, plainModel] = [await g.load(false), await g.load(true)];
    const x = () => T([2, 8, 8, 3], 64);
    const gradOf = (m: tfc.GraphModel, node: string) => () => tf.grad((v: tf.Tensor) => {
      const y = m.execute(v, node) as tf.Tensor;
      return tf.sum(tf.mul(y, weights(y.shape)));
    })(x());
    for (const node of [logits, beforeDilated]) {
      assertClose(await on('wasm', () => plainModel.execute(x(), node) as tf.Tensor), await on('wasm', () => fusedModel.execute(x(), node) as tf.Tensor), `${node} values`);
      assertClose(await on('wasm', gradOf(plainModel, node)), await on('cpu', gradOf(fusedModel, node)), `${node} gradient`);
    }
    const kernels = new Set((await tf.profile(() => { read(gradOf(plainModel, logits)); })).kernelNames);
    assert.ok(!kernels.has(tf.Conv2DBackpropFilter) && !kernels.has(tf.DepthwiseConv2dNativeBackpropFilter), [...kernels].join());
    assert.throws(() => read(gradOf(fusedModel, dilated)), /dilation/);
    assertClose(await on('wasm', gradOf(plainModel, dilated)), await on('cpu', gradOf(plainModel, dilated)), 'dilated fused conv gradient');
    assertClose(await on('wasm', () => plainModel.execute(x(), dilated) as tf.Tensor), await on('wasm', () => fusedModel.execute(x(), dilated) as tf.Tensor), 'dilated values');
    fusedModel.dispose();
    plainModel.dispose();
  });
});

// ---------- memory ----------

describe('memory', () => {
  test('repeated input-gradient steps keep tensor and wasm-data counts constant', () => {
    const inp = tfl.input({ shape: [8, 8, 8] });
    let h = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same' }).apply(inp) as tfl.SymbolicTensor;
    h = tfl.layers.batchNormalization().apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.activation({ activation: 'relu' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, padding: 'same' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.conv2dTranspose({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.upSampling2d({ size: [2, 2] }).apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.flatten().apply(h) as tfl.SymbolicTensor;
    h = tfl.layers.dense({ units: 5, activation: 'relu' }).apply(h) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: inp, outputs: h });
    const x = T([3, 8, 8, 8], 42);
    const step = () => read(() => inputGrad(model, x));
    const backend = wasmBackend();
    step();
    step(); // weights used transposed are cached from their second use
    const tensors = tf.memory().numTensors;
    const ids = backend.numDataIds();
    for (let i = 0; i < 4; i++) step();
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(backend.numDataIds(), ids);
    model.dispose();
    x.dispose();
  });

  test('cached transformed weights are freed with their weights', () => {
    const backend = wasmBackend();
    clearDerivedCache(backend);
    const ids0 = backend.numDataIds();
    const w = T([3, 3, 16, 5], 43) as tf.Tensor4D; // 16 input channels: the stride-2 gradient runs per phase
    const w2 = T([3, 3, 4, 1], 44) as tf.Tensor4D;
    const dense = T([6, 7], 47);
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        tf.conv2dTranspose(T([2, 4, 4, 5], 45) as tf.Tensor4D, w, [2, 8, 8, 16], 2, 'same').dataSync();
        tf.conv2dTranspose(T([2, 8, 8, 5], 45) as tf.Tensor4D, w, [2, 8, 8, 16], 1, 'same').dataSync();
        grad4((v) => tf.sum(tf.depthwiseConv2d(v, w2, 1, 'same')))(T([1, 5, 5, 4], 46)).dataSync();
        tf.matMul(T([3, 7], 48), dense, false, true).dataSync(); // the weight used transposed: cached from its 2nd use
      });
    }
    // One per (weight, layout), reused across steps; the stride-2 transpose has one per phase (4 of a 3x3 filter).
    assert.equal(derivedCacheSize(backend), 4 + 3);
    assert.equal(backend.numDataIds(), ids0 + 3 + 4 + 3);
    w.dispose();
    w2.dispose();
    dense.dispose();
    assert.equal(derivedCacheSize(backend), 0);
    assert.equal(backend.numDataIds(), ids0);
  });
});
