/**
 * Images: PNG (pngjs) and JPEG (jpeg-js) files or folders, decoded to RGBA, composited over black, converted to
 * the model's channel count and resized (tfjs bilinear, with a box prefilter when shrinking) to the model's input.
 * Output pixels are in [0,1], H x W x C row-major.
 */
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { readFileSync } from 'node:fs';
import { UserError } from './errors';

export { collectImagePaths, IMAGE_EXTENSIONS } from './imagePaths';

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel. */
  rgba: Uint8Array;
}

export interface PreparedImage {
  path: string;
  width: number;
  height: number;
  channels: number;
  /** The image resized to the model input, [0,1] pixels, H x W x C. */
  pixels: Float32Array;
}

/** Expands files and folders (non-recursive, sorted) into a list of image files. */
export function decodeImage(file: string): DecodedImage {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  const isPng = buf.length >= 8 && buf.readUInt32BE(0) === 0x89504e47;
  const isJpeg = buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  try {
    if (isPng) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length) };
    }
    if (isJpeg) {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, rgba: img.data };
    }
  } catch (e) {
    throw new UserError(`cannot decode image (${(e as Error).message.split('\n')[0]}); re-save it as PNG or JPEG`, file);
  }
  throw new UserError('not a PNG or JPEG image; convert it to PNG or JPEG', file);
}

/** Converts decoded RGBA to `channels` (1: luminance, 3: RGB) in [0,1] and resizes to height x width. */
export function prepareImage(file: string, decoded: DecodedImage, height: number, width: number, channels: number): PreparedImage {
  if (channels !== 1 && channels !== 3) {
    throw new UserError(`the model expects ${channels} input channels; only 1 (grayscale) or 3 (RGB) are supported`, file);
  }
  const { width: w, height: h, rgba } = decoded;
  const src = new Float32Array(w * h * channels);
  for (let p = 0; p < w * h; p++) {
    const a = rgba[4 * p + 3] / 255; // composite over black
    const r = (rgba[4 * p] / 255) * a;
    const g = (rgba[4 * p + 1] / 255) * a;
    const b = (rgba[4 * p + 2] / 255) * a;
    if (channels === 1) src[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    else {
      src[3 * p] = r;
      src[3 * p + 1] = g;
      src[3 * p + 2] = b;
    }
  }
  const pixels = w === width && h === height ? src : resize(src, h, w, height, width, channels);
  return { path: file, width: w, height: h, channels, pixels };
}

function resize(src: Float32Array, h: number, w: number, height: number, width: number, channels: number): Float32Array {
  const out = tf.tidy(() => {
    let t = tf.tensor4d(src, [1, h, w, channels]);
    // A box prefilter before bilinear sampling avoids aliasing when shrinking by 2x or more.
    const fy = Math.max(1, Math.floor(h / height));
    const fx = Math.max(1, Math.floor(w / width));
    if (fy >= 2 || fx >= 2) t = tf.avgPool(t, [fy, fx], [fy, fx], 'valid');
    return tf.clipByValue(tf.image.resizeBilinear(t, [height, width], false, true), 0, 1);
  });
  // Read outside tidy: tidy walks a returned typed array element by element.
  const data = out.dataSync() as Float32Array;
  out.dispose();
  return data;
}

export function loadImages(files: string[], height: number, width: number, channels: number): PreparedImage[] {
  return files.map((f) => prepareImage(f, decodeImage(f), height, width, channels));
}
