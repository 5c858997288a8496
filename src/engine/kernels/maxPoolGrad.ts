/**
 * MaxPoolGrad (REPLACES the stock wasm kernel, which is WRONG: when every value in a pooling window is
 * negative it routes the gradient to the wrong pixel or drops it; e.g. a 2x2 window [-1.6, -1.49; -0.55,
 * -0.5] sends dy to the -1.6 pixel). That happens whenever MaxPooling2D is not preceded by a ReLU, and
 * cpu/webgl/tfjs-node are right. This JS version routes dy to the first maximum of each window (row-major,
 * strict '>' like the cpu kernel and TensorFlow), so results match cpu exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, heap, replaceKernel } from './util';

export function maxPoolGradWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: Info; input: Info };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw,
    dilationHeight: dh, dilationWidth: dw, effectiveFilterHeight: fh, effectiveFilterWidth: fw, padInfo } = info;
  const out = backend.makeOutput(input.shape, 'float32');
  const dx = heap(backend, out);
  const xv = heap(backend, input);
  const dyv = heap(backend, dy);
  dx.fill(0);
  const best = new Float32Array(C);
  const bestAt = new Int32Array(C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const y0 = oy * sh - padInfo.top;
      for (let ox = 0; ox < ow; ox++) {
        const x0 = ox * sw - padInfo.left;
        best.fill(Number.NEGATIVE_INFINITY);
        bestAt.fill(-1);
        for (let wy = 0; wy < fh; wy += dh) {
          const iy = y0 + wy;
          if (iy < 0 || iy >= H) continue;
          for (let wx = 0; wx < fw; wx += dw) {
            const ix = x0 + wx;
            if (ix < 0 || ix >= W) continue;
            const base = ((b * H + iy) * W + ix) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c];
              if (v > best[c]) {
                best[c] = v;
                bestAt[c] = base + c;
              }
            }
          }
        }
        const dyBase = ((b * oh + oy) * ow + ox) * C;
        for (let c = 0; c < C; c++) if (bestAt[c] >= 0) dx[bestAt[c]] += dyv[dyBase + c];
      }
    }
  }
  return out;
}

export function registerMaxPoolGrad(): void {
  replaceKernel(tf.MaxPoolGrad, maxPoolGradWasm);
}
