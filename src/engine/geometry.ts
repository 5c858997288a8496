/**
 * How an image file is fitted to the model's H x W input (ImageInfo.geometry): which part of the (upright) image
 * the model sees, and where that part lands in the model input. PURE: no tfjs, no node; the webview bundles it (via
 * concentration.ts) to map boxes the same way images.ts resized the image.
 *
 * Original pixels are those of the image as a viewer shows it, after EXIF orientation; pixel k covers [k, k + 1).
 * Both rectangles are whole pixels, [x, y, width, height]:
 *   - stretch:     the whole image onto the whole input, each axis scaled on its own (aspect ratio not kept);
 *   - center-crop: torchvision's Resize(shorter side) + CenterCrop: scale s = max(W_in/W, H_in/H) so the image
 *                  covers the input, and keep the centred W_in/s x H_in/s part (rounded to whole original pixels,
 *                  offsets floor((W - w) / 2)); that part is then stretched onto the whole input (a scale that
 *                  differs between the axes by at most the rounding);
 *   - letterbox:   the whole image, scale s = min(W_in/W, H_in/H), onto a round(W*s) x round(H*s) block centred in
 *                  the input (offsets floor((W_in - w) / 2)), the rest padded with the stated colour.
 * Inside the two rectangles the mapping is images.ts's stretch: see concentration.ts for the prefilter and pixel
 * centres.
 */
import type { AlphaHandling, ImageInfo, ResizeMode } from './report';

export type ImageGeometry = NonNullable<ImageInfo['geometry']>;

/** [x, y, width, height], whole pixels. */
export type Rect = [number, number, number, number];

export interface Placement {
  /** The part of the original image the model sees, original pixels. */
  src: Rect;
  /** Where it lands in the model input, model pixels (the rest of the input is padding). */
  dst: Rect;
}

/** How images are fitted to the model input. Defaults: stretch, composite over black (what schemas 1-2 did). */
export interface ImageOptions {
  resize?: ResizeMode;
  alpha?: AlphaHandling;
  /** Letterbox padding, [0,1] RGB (default black). */
  pad?: [number, number, number];
}

export const RESIZE_MODES: readonly ResizeMode[] = ['stretch', 'center-crop', 'letterbox'];

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** The source and destination rectangles for an originalW x originalH image and a modelH x modelW input. */
export function placement(mode: ResizeMode | undefined, originalW: number, originalH: number, modelH: number, modelW: number): Placement {
  const W = originalW;
  const H = originalH;
  if (mode === 'center-crop') {
    const s = Math.max(modelW / W, modelH / H);
    const w = clamp(Math.round(modelW / s), 1, W);
    const h = clamp(Math.round(modelH / s), 1, H);
    return { src: [Math.floor((W - w) / 2), Math.floor((H - h) / 2), w, h], dst: [0, 0, modelW, modelH] };
  }
  if (mode === 'letterbox') {
    const s = Math.min(modelW / W, modelH / H);
    const w = clamp(Math.round(W * s), 1, modelW);
    const h = clamp(Math.round(H * s), 1, modelH);
    return { src: [0, 0, W, H], dst: [Math.floor((modelW - w) / 2), Math.floor((modelH - h) / 2), w, h] };
  }
  return { src: [0, 0, W, H], dst: [0, 0, modelW, modelH] };
}

/**
 * The placement a report's image went through (absent geometry: stretch, as schema 1-2 reports were made). The
 * stored crop wins over recomputing it, so a report keeps meaning what it meant when it was written.
 */
export function placementOf(geometry: ImageGeometry | undefined, originalW: number, originalH: number, modelH: number, modelW: number): Placement {
  const p = placement(geometry?.resize, originalW, originalH, modelH, modelW);
  const crop = geometry?.crop;
  if (!crop || crop.length !== 4 || !crop.every((v) => Number.isFinite(v)) || crop[2] <= 0 || crop[3] <= 0) return p;
  if (geometry?.resize === 'letterbox') {
    const q = placement('letterbox', crop[2], crop[3], modelH, modelW);
    return { src: [...crop] as Rect, dst: q.dst };
  }
  return { src: [...crop] as Rect, dst: p.dst };
}

const ORIENTATION_TEXT: Record<number, string> = {
  2: 'mirrored',
  3: 'turned 180°',
  4: 'flipped',
  5: 'transposed',
  6: 'turned 90° clockwise',
  7: 'transversed',
  8: 'turned 90° counter-clockwise',
};

/**
 * One line for people about how an image was fitted (the panel's facts): "center-crop 300×300 at (75, 0) of
 * 451×300; EXIF orientation 6 (turned 90° clockwise); transparency composited over 255,255,255". Undefined for
 * reports without geometry (schemas 1-2: stretched, composited over black).
 */
export function describeGeometry(info: Pick<ImageInfo, 'width' | 'height' | 'geometry'>): string | undefined {
  const g = info.geometry;
  if (!g) return undefined;
  const rgb = (c: readonly number[]) => c.map((v) => Math.round(v * 255)).join(',');
  const parts: string[] = [];
  const c = g.crop;
  const whole = !c || (c[0] === 0 && c[1] === 0 && c[2] === info.width && c[3] === info.height);
  if (g.resize === 'center-crop' && c && !whole) parts.push(`center-crop ${c[2]}×${c[3]} at (${c[0]}, ${c[1]}) of ${info.width}×${info.height}`);
  else if (g.resize === 'letterbox') parts.push(`letterbox of ${info.width}×${info.height}${g.pad ? `, padded with ${rgb(g.pad)}` : ''}`);
  else parts.push(`${g.resize} of ${info.width}×${info.height}`);
  if (g.exifOrientation !== undefined && g.exifOrientation !== 1) {
    parts.push(`EXIF orientation ${g.exifOrientation} (${ORIENTATION_TEXT[g.exifOrientation] ?? 'unknown'}, shown upright)`);
  }
  if (g.alpha === 'composited') parts.push(`transparency composited over ${rgb(g.background ?? [0, 0, 0])}`);
  else if (g.alpha === 'dropped') parts.push('transparency dropped');
  return parts.join('; ');
}
