/**
 * Concentration of information discarding (paper Sec. 3.1, Eq. 7): the mean pixel SID over the background minus
 * the mean over the object region Λ. Positive: the layer discards more of the background than of the object.
 *
 * PURE: no tfjs, no node. The webview bundles this file to recompute concentration live while a box is dragged.
 *
 * Geometry. images.ts fits the image to the model input by a resize mode (geometry.ts): a source rectangle of
 * the original image (all of it, or the centre crop) is STRETCHED onto a destination rectangle of the input (all of
 * it, or the letterbox's inner block; model pixels outside it are padding and lie in no box). Below, "orig" and
 * "model" are the two rectangles' sizes along one axis and coordinates are relative to their corners. The stretch
 * treats each axis on its own: when an axis shrinks by 2x or more it is first box-averaged by f = floor(orig / model)
 * with 'valid' padding, which drops the last (orig mod f) rows/columns, then resized bilinearly with half-pixel
 * centres. So along one axis, model pixel i (centre i + 0.5) looks at original coordinate
 *     c = (i + 0.5) * extent / model,   extent = f * floor(orig / f),  f = max(1, floor(orig / model)),
 * where original pixel k covers [k, k + 1). A model pixel is inside a box [x, y, w, h] (original pixels) when its
 * centre is: x <= cx < x + w and y <= cy < y + h. A box [0, 0, W, H] therefore covers every model pixel.
 */
import { meanStd } from './report';
import { placementOf, type ImageGeometry } from './geometry';

/** [x, y, width, height] in original-image pixels; (x, y) is the top-left corner. */
export type Box = [number, number, number, number];

/** The part of an original axis of `orig` pixels that the resize to `model` pixels samples: [0, extent). */
export function sampledExtent(orig: number, model: number): number {
  const f = Math.max(1, Math.floor(orig / model));
  return f * Math.floor(orig / f);
}

/** Original coordinate (continuous, pixel k covers [k, k+1)) of the centre of model pixel i along one axis. */
export function modelPixelCentre(i: number, orig: number, model: number): number {
  return ((i + 0.5) * sampledExtent(orig, model)) / model;
}

/** Why a box is unusable ("" when it is fine): numbers finite, x and y >= 0, width and height > 0. */
export function boxProblem(bbox: readonly number[]): string {
  if (bbox.length !== 4) return `expects 4 numbers [x, y, width, height], got ${bbox.length}`;
  if (!bbox.every((v) => typeof v === 'number' && Number.isFinite(v))) return 'has a value that is not a finite number';
  if (bbox[0] < 0 || bbox[1] < 0) return 'has a negative x or y';
  if (bbox[2] <= 0 || bbox[3] <= 0) return 'needs a width and height above 0';
  return '';
}

/**
 * The box as the model sees it: modelH x modelW row-major 0/1, 1 where the model pixel's centre (mapped back to
 * the original image as images.ts resized it, with the image's `geometry`; absent = stretch) lies in the box.
 * Parts of the box past the image edge, or outside a centre crop, select nothing; so does letterbox padding.
 */
export function regionMaskFromBox(
  bbox: Box | readonly number[],
  originalW: number,
  originalH: number,
  modelH: number,
  modelW: number,
  geometry?: ImageGeometry,
): Uint8Array {
  const [x, y, w, h] = bbox;
  const { src, dst } = placementOf(geometry, originalW, originalH, modelH, modelW);
  const mask = new Uint8Array(modelH * modelW);
  const cols: number[] = [];
  for (let j = 0; j < dst[2]; j++) {
    const c = src[0] + modelPixelCentre(j, src[2], dst[2]);
    if (c >= x && c < x + w) cols.push(dst[0] + j);
  }
  for (let i = 0; i < dst[3]; i++) {
    const c = src[1] + modelPixelCentre(i, src[3], dst[3]);
    if (!(c >= y && c < y + h)) continue;
    for (const j of cols) mask[(dst[1] + i) * modelW + j] = 1;
  }
  return mask;
}

/**
 * The inverse, for a rectangle drawn on the model-size image (the webview shows the image as the model saw it):
 * model-pixel edges [x0, x1) x [y0, y1) to a box in original pixels that selects exactly those model pixels (the
 * part of the rectangle on letterbox padding is dropped: it shows no original pixel).
 */
export function modelRectToBox(
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  originalW: number,
  originalH: number,
  modelH: number,
  modelW: number,
  geometry?: ImageGeometry,
): Box {
  const { src, dst } = placementOf(geometry, originalW, originalH, modelH, modelW);
  const axis = (a: number, b: number, s0: number, sLen: number, d0: number, dLen: number): [number, number] => {
    const scale = sampledExtent(sLen, dLen) / dLen;
    const lo = Math.min(Math.max(Math.min(a, b), d0), d0 + dLen) - d0;
    const hi = Math.min(Math.max(Math.max(a, b), d0), d0 + dLen) - d0;
    return [s0 + lo * scale, (hi - lo) * scale];
  };
  const [bx, bw] = axis(x0, x1, src[0], src[2], dst[0], dst[2]);
  const [by, bh] = axis(y0, y1, src[1], src[3], dst[1], dst[3]);
  return [bx, by, bw, bh];
}

/** A flat H*W mask as H rows of W values (ImageInfo.regionMask). */
export function maskRows(mask: ArrayLike<number>, H: number, W: number): number[][] {
  return Array.from({ length: H }, (_, y) => Array.from({ length: W }, (_, x) => (mask[y * W + x] ? 1 : 0)));
}

function at(m: ArrayLike<number> | readonly (readonly number[])[], H: number, W: number, what: string): (y: number, x: number) => number {
  if (m.length === H && H > 0 && Array.isArray(m[0])) {
    const rows = m as readonly (readonly number[])[];
    if (!rows.every((r) => r.length === W)) throw new Error(`concentration: ${what} rows must have ${W} values`);
    return (y, x) => rows[y][x];
  }
  const flat = m as ArrayLike<number>;
  if (flat.length !== H * W) throw new Error(`concentration: ${what} has ${flat.length} values, expected ${H}x${W}`);
  return (y, x) => flat[y * W + x];
}

/**
 * Eq. 7: mean SID over pixels outside the region minus the mean inside, nats. `sidMap` and `mask` are H x W,
 * as rows (the report's shape) or flat row-major. Null when the region is empty or covers every pixel.
 */
export function concentration(
  sidMap: readonly (readonly number[])[] | ArrayLike<number>,
  mask: readonly (readonly number[])[] | ArrayLike<number>,
  H: number,
  W: number,
): number | null {
  const sid = at(sidMap, H, W, 'SID map');
  const inMask = at(mask, H, W, 'mask');
  let sumIn = 0;
  let nIn = 0;
  let sumOut = 0;
  let nOut = 0;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const v = sid(y, x);
      if (inMask(y, x)) {
        sumIn += v;
        nIn++;
      } else {
        sumOut += v;
        nOut++;
      }
    }
  if (nIn === 0 || nOut === 0) return null;
  return sumOut / nOut - sumIn / nIn;
}

/** LayerResult.concentration: mean and spread (sample std, 0 for one) over the images with a value; null if none. */
export function summarizeConcentration(values: readonly (number | null | undefined)[]): { mean: number; std: number; images: number } | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return null;
  const { mean, std } = meanStd(xs);
  return { mean, std, images: xs.length };
}
