/**
 * Conv2DBackpropInput (REPLACES the stock wasm kernel, a scalar C++ loop ~10x slower than the XNNPACK
 * forward conv). This is the input gradient of every Conv2D and the forward pass of Conv2DTranspose.
 *
 * dx is computed with ONE forward Conv2D on dy ("sub-pixel" form of the transposed conv): for stride s,
 * output pixel i = s*q + r (phase r in [0, s)) only sees the filter taps t = r + p + s*(P - j), so each phase
 * is an ordinary stride-1 conv of dy with a small filter (F ~ k/s taps). The phase filters are stacked along
 * the output channels, and a JS pass interleaves the phases into dx. Unlike dilating dy with zeros this does
 * no multiply-by-zero work (4x less for stride 2), and phases without taps (1x1 stride-2 shortcuts) are not
 * computed at all. For stride 1 it is the classic conv with the flipped, in/out-swapped filter.
 *
 * Strided gradients with 16 or more input channels run one conv per phase instead, each with only its own taps:
 * the stacked filter pads every phase to F x F taps (16 for a 3x3 stride-2 filter, which has 9), so the stacked
 * conv reached ~55 % of the matmul peak where the per-phase convs reach ~95 % (bench/conv-throughput.ts). With
 * fewer channels (an RGB stem) the per-phase convs are too narrow for XNNPACK and the stacked form is faster.
 *
 * The rearranged filters are cached per weight tensor (derivedCache), so they are built once and XNNPACK packs them
 * once. Unsupported cases (NCHW, padding beyond the filter) use the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { derived } from './derivedCache';
import { type BackendWasm, type Info, type KernelArgs, explicitPad, free, heap, replaceKernel, run, runStock } from './util';

export interface SubPixelDim {
  s: number; // stride
  k: number; // filter size
  p: number; // padding before (top or left) of the forward conv
  P: number; // padding before for the phase conv
  F: number; // phase filter size
  phases: number[]; // phases r with at least one tap
}

/** Filter tap used by phase r at phase-filter position j (may fall outside [0, k)). */
export const tapOf = (d: SubPixelDim, r: number, j: number): number => r + d.p + d.s * (d.P - j);

/** Phase-conv geometry along one spatial dimension; null when the padding exceeds the filter. */
export function subPixelDim(s: number, k: number, p: number): SubPixelDim | null {
  if (p < 0 || p > k - 1) return null;
  const P = Math.floor((k - 1 - p) / s);
  const F = P + Math.floor((s - 1 + p) / s) + 1;
  const d: SubPixelDim = { s, k, p, P, F, phases: [] };
  for (let r = 0; r < s; r++) {
    for (let j = 0; j < F; j++) {
      const t = tapOf(d, r, j);
      if (t >= 0 && t < k) {
        d.phases.push(r);
        break;
      }
    }
  }
  return d;
}

/**
 * The phase filter: G[jh, jw, co, (ih*nw + iw)*Cin + ci] = W[tap(rh, jh), tap(rw, jw), ci, co] for the active
 * phases rh = phases[ih], rw = phases[iw] (zero where the tap falls outside W). Shape [Fh, Fw, Cout, n*Cin].
 */
function makePhaseFilter(backend: BackendWasm, filter: Info, dh: SubPixelDim, dw: SubPixelDim): Info {
  const [kh, kw, cin, cout] = filter.shape;
  const outC = dh.phases.length * dw.phases.length * cin;
  const g = backend.makeOutput([dh.F, dw.F, cout, outC], 'float32');
  const G = heap(backend, g);
  const Wv = heap(backend, filter);
  G.fill(0);
  for (let jh = 0; jh < dh.F; jh++) {
    for (let ih = 0; ih < dh.phases.length; ih++) {
      const th = tapOf(dh, dh.phases[ih], jh);
      if (th < 0 || th >= kh) continue;
      for (let jw = 0; jw < dw.F; jw++) {
        for (let iw = 0; iw < dw.phases.length; iw++) {
          const tw = tapOf(dw, dw.phases[iw], jw);
          if (tw < 0 || tw >= kw) continue;
          const phase = (ih * dw.phases.length + iw) * cin;
          const wBase = (th * kw + tw) * cin * cout;
          const gBase = (jh * dw.F + jw) * cout * outC;
          for (let ci = 0; ci < cin; ci++) {
            for (let co = 0; co < cout; co++) {
              G[gBase + co * outC + phase + ci] = Wv[wBase + ci * cout + co];
            }
          }
        }
      }
    }
  }
  return g;
}

/** The phase-filter positions j that carry a tap for phase r: one run [lo, hi] (the tap falls by s as j grows). */
export function tapRange(d: SubPixelDim, r: number): { lo: number; hi: number } | null {
  let lo = -1;
  let hi = -1;
  for (let j = 0; j < d.F; j++) {
    const t = tapOf(d, r, j);
    if (t < 0 || t >= d.k) continue;
    if (lo < 0) lo = j;
    hi = j;
  }
  return lo < 0 ? null : { lo, hi };
}

/** One phase's own filter, its taps only: G[a, b, co, ci] = W[tap(rh, lo.h + a), tap(rw, lo.w + b), ci, co]. */
function makeOnePhaseFilter(backend: BackendWasm, filter: Info, dh: SubPixelDim, rh: number, h: { lo: number; hi: number }, dw: SubPixelDim, rw: number, w: { lo: number; hi: number }): Info {
  const [, kw, cin, cout] = filter.shape;
  const nh = h.hi - h.lo + 1;
  const nw = w.hi - w.lo + 1;
  const g = backend.makeOutput([nh, nw, cout, cin], 'float32');
  const G = heap(backend, g);
  const Wv = heap(backend, filter);
  for (let a = 0; a < nh; a++) {
    const th = tapOf(dh, rh, h.lo + a);
    for (let b = 0; b < nw; b++) {
      const wBase = (th * kw + tapOf(dw, rw, w.lo + b)) * cin * cout;
      const gBase = (a * nw + b) * cout * cin;
      for (let ci = 0; ci < cin; ci++) {
        for (let co = 0; co < cout; co++) G[gBase + co * cin + ci] = Wv[wBase + ci * cout + co];
      }
    }
  }
  return g;
}

/** Input channels from which a strided input gradient runs one conv per phase (see perPhase). */
export const PER_PHASE_MIN_CHANNELS = 16;

/**
 * The strided case without zero taps: one conv per active phase (rh, rw) with that phase's own taps, each written
 * straight into its pixels of dx. The stacked phase filter pads every phase to F x F taps (a 3x3 stride-2 filter:
 * 16 taps where it has 9, so the stacked conv runs at ~55 % of the matmul peak); here each phase does only its own.
 * Null when a phase's first tap lies past the phase grid's padding (it would need a negative padding).
 */
function perPhase(backend: BackendWasm, dy: Info, filter: Info, dh: SubPixelDim, dw: SubPixelDim, H: number, W: number, key: string): Info | null {
  const [B, oh, ow] = dy.shape;
  const cin = filter.shape[2];
  const phases: { rh: number; rw: number; h: { lo: number; hi: number }; w: { lo: number; hi: number } }[] = [];
  for (const rh of dh.phases) {
    for (const rw of dw.phases) {
      const h = tapRange(dh, rh);
      const w = tapRange(dw, rw);
      if (!h || !w) continue;
      if (h.lo > dh.P || w.lo > dw.P) return null;
      phases.push({ rh, rw, h, w });
    }
  }
  const qh = Math.ceil(H / dh.s);
  const qw = Math.ceil(W / dw.s);
  const out = backend.makeOutput([B, H, W, cin], 'float32');
  const covered = phases.length === dh.s * dw.s && qh * dh.s >= H && qw * dw.s >= W;
  if (!covered) heap(backend, out).fill(0);
  for (const { rh, rw, h, w } of phases) {
    const g = derived(backend, filter, `${key}:${rh},${rw}`, () => makeOnePhaseFilter(backend, filter, dh, rh, h, dw, rw, w));
    const [nh, nw] = [h.hi - h.lo + 1, w.hi - w.lo + 1];
    const [top, left] = [dh.P - h.lo, dw.P - w.lo];
    const y = run(backend, 'Conv2D', { x: dy, filter: g }, {
      strides: [1, 1], dataFormat: 'NHWC', dilations: [1, 1],
      pad: explicitPad(top, Math.max(0, qh + nh - 1 - top - oh), left, Math.max(0, qw + nw - 1 - left - ow)),
    });
    // dx[b, q*sh + rh, u*sw + rw, :] = y[b, q, u, :] (views taken after the conv: it may grow the heap).
    const [, QH, QW] = y.shape;
    const src = heap(backend, y);
    const dst = heap(backend, out);
    for (let b = 0; b < B; b++) {
      for (let q = 0; q < QH; q++) {
        const row = q * dh.s + rh;
        if (row >= H) break;
        for (let u = 0; u < QW; u++) {
          const col = u * dw.s + rw;
          if (col >= W) break;
          const so = ((b * QH + q) * QW + u) * cin;
          const d = ((b * H + row) * W + col) * cin;
          copyPixel(dst, d, src, so, cin);
        }
      }
    }
    free(backend, y);
  }
  return out;
}

/** Copies one pixel's C channels from src[so…] to dst[d…]: a typed-array set from 16 channels, a loop below. */
function copyPixel(dst: Float32Array, d: number, src: Float32Array, so: number, C: number): void {
  if (C >= 16) dst.set(src.subarray(so, so + C), d);
  else for (let c = 0; c < C; c++) dst[d + c] = src[so + c];
}

/** dx[b, q*sh + rh, u*sw + rw, :] = y[b, q, u, phase(rh, rw) channels]; pixels of no active phase are 0. */
function interleave(backend: BackendWasm, y: Info, dh: SubPixelDim, dw: SubPixelDim, B: number, H: number, W: number, C: number): Info {
  const out = backend.makeOutput([B, H, W, C], 'float32');
  const dst = heap(backend, out);
  const src = heap(backend, y);
  const [, QH, QW, YC] = y.shape;
  const covered = dh.phases.length === dh.s && dw.phases.length === dw.s && QH * dh.s >= H && QW * dw.s >= W;
  if (!covered) dst.fill(0);
  const nw = dw.phases.length;
  for (let b = 0; b < B; b++) {
    for (let q = 0; q < QH; q++) {
      for (let ih = 0; ih < dh.phases.length; ih++) {
        const row = q * dh.s + dh.phases[ih];
        if (row >= H) continue;
        for (let u = 0; u < QW; u++) {
          const sBase = ((b * QH + q) * QW + u) * YC + ih * nw * C;
          for (let iw = 0; iw < nw; iw++) {
            const col = u * dw.s + dw.phases[iw];
            if (col >= W) continue;
            const so = sBase + iw * C;
            const d = ((b * H + row) * W + col) * C;
            copyPixel(dst, d, src, so, C);
          }
        }
      }
    }
  }
  return out;
}

/** Stock kernel, kept for the cases not handled here and for the benchmark. */
export function stockConv2DBackpropInput(args: KernelArgs): Info {
  return runStock(tf.Conv2DBackpropInput, args);
}

export function conv2DBackpropInputWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, fmt);
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, padInfo } = info;
  const dh = subPixelDim(sh, kh, padInfo.top);
  const dw = subPixelDim(sw, kw, padInfo.left);
  if (fmt !== 'channelsLast' || !dh || !dw || dy.dtype !== 'float32' || filter.dtype !== 'float32') {
    return stockConv2DBackpropInput(args);
  }
  const [B, oh, ow] = dy.shape;
  const cin = filter.shape[2];
  const key = `bpi:${filter.shape}:${sh},${sw}:${padInfo.top},${padInfo.left}`;
  // Per phase only where each phase's conv still has channels enough to fill XNNPACK's GEMM: an RGB stem's input
  // gradient (3 channels) runs faster with the phases stacked (measured: bench/conv-throughput.ts).
  if ((sh > 1 || sw > 1) && cin >= PER_PHASE_MIN_CHANNELS) {
    const out = perPhase(backend, dy, filter, dh, dw, H, W, key);
    if (out) return out;
  }
  const g = derived(backend, filter, key, () => makePhaseFilter(backend, filter, dh, dw));
  // Phase-grid rows q = 0..ceil(H/s)-1 read dy rows q - P + j, j < F.
  const qh = Math.ceil(H / sh);
  const qw = Math.ceil(W / sw);
  const padB = Math.max(0, qh + dh.F - dh.P - 1 - oh);
  const padR = Math.max(0, qw + dw.F - dw.P - 1 - ow);
  const y = run(backend, 'Conv2D', { x: dy, filter: g }, {
    strides: [1, 1], pad: explicitPad(dh.P, padB, dw.P, padR), dataFormat: 'NHWC', dilations: [1, 1],
  });
  if (sh === 1 && sw === 1 && y.shape[1] === H && y.shape[2] === W) return y;
  const out = interleave(backend, y, dh, dw, B, H, W, cin);
  free(backend, y);
  return out;
}

export function registerConv2DBackpropInput(): void {
  replaceKernel(tf.Conv2DBackpropInput, conv2DBackpropInputWasm);
}
