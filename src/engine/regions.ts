/**
 * Object regions (Λ of paper Eq. 7) from the user: a sidecar JSON (`--boxes`), a CLI box (`--box`) or a box drawn in
 * the panel; matched to the analysed images and turned into a 0/1 mask at the model's input size.
 *
 * Sidecar format, one entry per image (coordinates in the ORIGINAL image's pixels, before resizing, cropping or
 * letterboxing; for a JPEG with an EXIF orientation, in the upright image as viewers show it):
 *     { "cat.png": { "bbox": [x, y, width, height] },
 *       "dog.png": { "mask": "masks/dog.png" } }
 * A mask path is relative to the JSON file; non-zero pixels (after compositing over black) are the object and it
 * must have the (upright) image's size. Other keys in an entry (a label, a score) are ignored.
 *
 * Matching a key to an image, most specific first: (1) the image path exactly as given, (2) the same file once both
 * are resolved to absolute paths (relative keys against the working directory), (3) a key that is a bare file name
 * ("cat.png", no folder) matches an image with that file name in any folder. An image takes the most specific key
 * that names it; a file-name key that would apply to two images is an error (key them by path). Keys that end up
 * applying to no image are returned as `unused` so the CLI can warn.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';
import { decodeImage, prepareImage } from './images';
import { boxProblem, regionMaskFromBox, type Box } from './concentration';
import type { ImageGeometry } from './geometry';
import type { ObjectRegion } from './report';

const FORMAT = 'write {"image.png": {"bbox": [x, y, width, height]}} or {"image.png": {"mask": "mask.png"}}';

/** Reads a sidecar boxes file into regions keyed as written in the file. Mask paths come back absolute. */
export function readBoxesFile(file: string): Map<string, ObjectRegion> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the boxes file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a JSON file: ${FORMAT}`, file);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UserError(`not valid JSON (${(e as Error).message.split('\n')[0]}); ${FORMAT}`, file);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UserError(`expects a JSON object keyed by image file, got ${Array.isArray(data) ? 'an array' : typeof data === 'object' ? 'null' : typeof data}; ${FORMAT}`, file);
  }
  const dir = path.dirname(file);
  const out = new Map<string, ObjectRegion>();
  for (const [key, entry] of Object.entries(data as Record<string, unknown>)) {
    const where = `entry "${key}"`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw new UserError(`${where} must be an object with "bbox" or "mask"; ${FORMAT}`, file);
    }
    const e = entry as Record<string, unknown>;
    const hasBox = e.bbox !== undefined;
    const hasMask = e.mask !== undefined;
    if (hasBox === hasMask) {
      throw new UserError(`${where} needs exactly one of "bbox" and "mask"${hasBox ? ', not both' : ''}; ${FORMAT}`, file);
    }
    if (hasBox) {
      if (!Array.isArray(e.bbox) || e.bbox.length !== 4 || !e.bbox.every((v) => typeof v === 'number')) {
        throw new UserError(`${where}: "bbox" must be 4 numbers [x, y, width, height] in original-image pixels, got ${short(e.bbox)}`, file);
      }
      const problem = boxProblem(e.bbox as number[]);
      if (problem) throw new UserError(`${where}: "bbox" ${short(e.bbox)} ${problem}; give [x, y, width, height] in original-image pixels`, file);
      out.set(key, { bbox: [...(e.bbox as number[])] as Box, source: 'boxes-file' });
    } else {
      if (typeof e.mask !== 'string' || e.mask.trim() === '') {
        throw new UserError(`${where}: "mask" must be the path of a PNG (relative to this file), got ${short(e.mask)}`, file);
      }
      const maskPath = path.resolve(dir, e.mask);
      if (!existsSync(maskPath) || !statSync(maskPath).isFile()) {
        throw new UserError(`${where}: mask file ${maskPath} not found; mask paths are relative to the boxes file`, file);
      }
      out.set(key, { mask: maskPath, source: 'boxes-file' });
    }
  }
  return out;
}

function short(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * `--box x,y,w,h`: one box for every image, in each image's original pixels (the same numbers for all images, so
 * give a boxes file when the images differ in size). With a boxes file too, the file's entries win and the box is
 * the default for the images the file does not name. A box running past an image's edge is clipped.
 */
export function parseBoxFlag(value: string): ObjectRegion {
  const parts = value.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (s === '' ? NaN : Number(s)));
  if (parts.length !== 4 || nums.some((n) => Number.isNaN(n))) {
    throw new UserError(`expects x,y,width,height (four numbers, original-image pixels), got "${value}"`, '--box');
  }
  const problem = boxProblem(nums);
  if (problem) throw new UserError(`"${value}" ${problem}; give x,y,width,height in original-image pixels`, '--box');
  return { bbox: nums as Box, source: 'cli' };
}

export interface MatchedRegions {
  /** One entry per image path, in order: its region, or undefined. */
  regions: (ObjectRegion | undefined)[];
  /** Keys of `regions` that apply to no image (typos, images not analysed, or names shadowed by a path key). */
  unused: string[];
}

/** Assigns regions to images (precedence: path as given, absolute path, file name; see the file comment). */
export function matchRegions(
  regions: Map<string, ObjectRegion> | undefined,
  imagePaths: readonly string[],
  opts: {
    /** For images no key names (the CLI's --box). */
    fallback?: ObjectRegion;
    /** Relative keys and image paths resolve against this (default: the working directory). */
    cwd?: string;
    /** Names the source in errors (the boxes file; default "--boxes"). */
    file?: string;
  } = {},
): MatchedRegions {
  const { fallback, cwd = process.cwd(), file = '--boxes' } = opts;
  const entries = [...(regions ?? new Map<string, ObjectRegion>()).entries()];
  const byExact = new Map(entries);
  const byAbsolute = new Map<string, string>();
  for (const [key] of entries) if (!byAbsolute.has(path.resolve(cwd, key))) byAbsolute.set(path.resolve(cwd, key), key);
  const byName = new Map<string, string>();
  for (const [key] of entries) if (path.basename(key) === key) byName.set(key, key);

  const used = new Set<string>();
  const nameUsers = new Map<string, string[]>();
  const keys = imagePaths.map((p) => {
    let key: string | undefined;
    if (byExact.has(p)) key = p;
    else if (byAbsolute.has(path.resolve(cwd, p))) key = byAbsolute.get(path.resolve(cwd, p));
    else if (byName.has(path.basename(p))) {
      key = byName.get(path.basename(p))!;
      nameUsers.set(key, [...(nameUsers.get(key) ?? []), p]);
    }
    if (key !== undefined) used.add(key);
    return key;
  });
  for (const [key, users] of nameUsers) {
    if (users.length > 1) {
      throw new UserError(`region "${key}" matches ${users.length} images by file name (${users.slice(0, 3).join(', ')}${users.length > 3 ? ', ...' : ''}); key them by path instead`, file);
    }
  }
  return {
    regions: keys.map((k) => (k !== undefined ? byExact.get(k) : fallback)),
    unused: entries.map(([k]) => k).filter((k) => !used.has(k)),
  };
}

/**
 * The region as the model sees it: modelH x modelW row-major 0/1, through the SAME geometry as its image (the
 * resize mode's crop or letterbox; absent = stretch). A box maps by pixel centres (concentration.ts); a mask PNG is
 * decoded like images, non-zero = object, fitted with the image's resize mode (letterbox padding: not object) and
 * thresholded at 0.5.
 * Errors (one line, naming the file) when the region lies wholly outside the image or a mask's size differs.
 */
export function resolveRegion(
  region: ObjectRegion,
  imagePath: string,
  originalW: number,
  originalH: number,
  modelH: number,
  modelW: number,
  geometry?: ImageGeometry,
): Uint8Array {
  if (region.bbox) {
    const [x, y] = region.bbox;
    const problem = boxProblem(region.bbox);
    if (problem) throw new UserError(`the object box [${region.bbox.join(', ')}] ${problem}`, imagePath);
    if (x >= originalW || y >= originalH) {
      throw new UserError(
        `the object box [${region.bbox.join(', ')}] lies outside this ${originalW}x${originalH} image; give it in the original image's pixels`,
        imagePath,
      );
    }
    return regionMaskFromBox(region.bbox, originalW, originalH, modelH, modelW, geometry);
  }
  if (region.mask) {
    const decoded = decodeImage(region.mask);
    if (decoded.width !== originalW || decoded.height !== originalH) {
      throw new UserError(
        `the mask is ${decoded.width}x${decoded.height} but the image ${imagePath} is ${originalW}x${originalH}; a mask must have its image's size`,
        region.mask,
      );
    }
    // Binarise first (non-zero RGB after compositing over black = object), then resize exactly as images are.
    const rgba = new Uint8Array(decoded.rgba.length);
    for (let p = 0; p < originalW * originalH; p++) {
      const d = decoded.rgba;
      const on = d[4 * p + 3] > 0 && (d[4 * p] > 0 || d[4 * p + 1] > 0 || d[4 * p + 2] > 0);
      const v = on ? 255 : 0;
      rgba[4 * p] = rgba[4 * p + 1] = rgba[4 * p + 2] = v;
      rgba[4 * p + 3] = 255;
    }
    const resized = prepareImage(region.mask, { width: originalW, height: originalH, rgba }, modelH, modelW, 1, {
      resize: geometry?.resize ?? 'stretch',
      pad: [0, 0, 0],
    }).pixels;
    const mask = new Uint8Array(modelH * modelW);
    for (let i = 0; i < mask.length; i++) mask[i] = resized[i] >= 0.5 ? 1 : 0;
    return mask;
  }
  throw new UserError('the object region has neither a box nor a mask', imagePath);
}

export interface ImageRegions {
  /** Per image (in order): its region, or undefined. */
  regions: (ObjectRegion | undefined)[];
  /** Per image: the region at the model's input size (H*W, 0/1), or undefined. */
  masks: (Uint8Array | undefined)[];
  /** Non-fatal problems for the user: unmatched keys, images without a region. */
  warnings: string[];
}

/**
 * The object regions of the analysed images: from a boxes file (path keys relative to it, bare file names in
 * any folder) and/or one region for every image the file leaves out, mapped to the model's input size.
 */
export function imageRegions(
  images: readonly { path: string; width: number; height: number; geometry?: ImageGeometry }[],
  modelH: number,
  modelW: number,
  boxesFile?: string,
  fallback?: ObjectRegion,
): ImageRegions {
  const fromFile = boxesFile ? readBoxesFile(boxesFile) : undefined;
  const matched = matchRegions(fromFile, images.map((im) => path.resolve(im.path)), {
    fallback,
    file: boxesFile,
    cwd: boxesFile ? path.dirname(path.resolve(boxesFile)) : undefined,
  });
  const warnings: string[] = [];
  if (matched.unused.length > 0) {
    const shown = matched.unused.slice(0, 5).map((k) => `"${k}"`).join(', ');
    warnings.push(`${boxesFile}: no analysed image matches ${shown}${matched.unused.length > 5 ? ', ...' : ''}`);
  }
  const masks = matched.regions.map((region, i) => {
    const im = images[i];
    return region ? resolveRegion(region, im.path, im.width, im.height, modelH, modelW, im.geometry) : undefined;
  });
  const missing = masks.filter((m) => !m).length;
  if (missing > 0) warnings.push(`${missing} of ${images.length} images have no object region; their concentration is left empty`);
  return { regions: matched.regions, masks, warnings };
}
