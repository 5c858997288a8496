/**
 * Viridis colormap (perceptually uniform, colour-blind friendly), as a 256-entry RGB lookup table built from a
 * 6th-degree polynomial fit of the matplotlib table (max error well under one 8-bit step in practice).
 */

const C: [number, number, number][] = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

function poly(t: number, k: 0 | 1 | 2): number {
  let v = 0;
  for (let i = C.length - 1; i >= 0; i--) v = v * t + C[i][k];
  return Math.min(1, Math.max(0, v));
}

/** 256 x RGB, bytes. */
export const VIRIDIS: Uint8ClampedArray = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    lut[i * 3] = Math.round(poly(t, 0) * 255);
    lut[i * 3 + 1] = Math.round(poly(t, 1) * 255);
    lut[i * 3 + 2] = Math.round(poly(t, 2) * 255);
  }
  return lut;
})();

export interface Scale {
  min: number;
  max: number;
}

/** LUT index for a value on a scale; non-finite values map to -1. */
export function lutIndex(value: number, scale: Scale): number {
  if (!Number.isFinite(value)) return -1;
  const t = (value - scale.min) / (scale.max - scale.min);
  return Math.max(0, Math.min(255, Math.round(t * 255)));
}

export function cssColor(index: number): string {
  return `rgb(${VIRIDIS[index * 3]}, ${VIRIDIS[index * 3 + 1]}, ${VIRIDIS[index * 3 + 2]})`;
}

/** Round-number ticks covering [min, max] (about `count` of them), all inside the range. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min;
  if (!(span > 0)) return [min];
  const raw = span / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  // The round step nearest to the raw one (so roughly `count` ticks, never far fewer).
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).reduce((best, s) => (Math.abs(Math.log(s / raw)) < Math.abs(Math.log(best / raw)) ? s : best));
  const ticks: number[] = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return ticks;
}
