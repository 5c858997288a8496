/**
 * Images: PNG (pngjs), JPEG (jpeg-js), BMP (bmp-ts), GIF (omggif, first frame), TIFF (utif2, first page) and WebP
 * (@cwasm/webp, libwebp in wasm) files, turned by their EXIF/TIFF orientation tag where they carry one, decoded to upright
 * RGBA; alpha composited over a stated colour or dropped; converted to the model's channel count; fitted to the
 * model's input by a resize mode (geometry.ts: stretch, center-crop, letterbox), resizing with tfjs bilinear and a
 * box prefilter when shrinking. Output pixels are in [0,1], H x W x C row-major: the image as the model sees it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import * as bmp from 'bmp-ts';
import { GifReader } from 'omggif';
import * as UTIF from 'utif2';
import { readFileSync } from 'node:fs';
import { UserError } from './errors';
import { applyOrientation, containerExifOrientation, jpegExifOrientation } from './exif';
import { placement, type ImageGeometry, type ImageOptions } from './geometry';
import { imageFormat, type ImageFormat } from './imagePaths';

export type { ImageOptions } from './geometry';
export { collectImagePaths, collectImages, IMAGE_EXTENSIONS, skippedFilesWarning } from './imagePaths';

export interface DecodedImage {
  /** Upright size (after EXIF orientation). */
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, upright. */
  rgba: Uint8Array;
  /** The EXIF/TIFF orientation tag the file carried (1-8), already applied to `rgba`; absent when it had none. */
  exifOrientation?: number;
  format?: ImageFormat;
}

export interface PreparedImage {
  path: string;
  /** Upright original size, before fitting to the model input. */
  width: number;
  height: number;
  channels: number;
  /** The image fitted to the model input, [0,1] pixels, H x W x C. */
  pixels: Float32Array;
  /** How it was fitted (ImageInfo.geometry). */
  geometry: ImageGeometry;
}

const SUPPORTED = 'PNG, JPEG, BMP, GIF, TIFF or WebP';

// libwebp in wasm, compiled on first use (a WebP in the images), required at run time rather than bundled: it
// reads its .wasm beside its own index.js.
let webp: { decode(data: Uint8Array): { width: number; height: number; data: Uint8ClampedArray } } | undefined;
function webpDecoder() {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  webp ??= require('@cwasm/webp') as NonNullable<typeof webp>;
  return webp;
}

function rawDecode(buf: Buffer, format: ImageFormat): DecodedImage {
  switch (format) {
    case 'png': {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length), exifOrientation: containerExifOrientation(buf) };
    }
    case 'jpeg': {
      const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      return { width: img.width, height: img.height, rgba: img.data, exifOrientation: jpegExifOrientation(buf) };
    }
    case 'bmp': {
      const img = bmp.decode(buf, { toRGBA: true });
      const rgba = new Uint8Array(img.data.buffer, img.data.byteOffset, img.width * img.height * 4);
      // Only 32-bit BMPs carry alpha, and many of them leave it 0 everywhere (unused): opaque then.
      let anyAlpha = false;
      if (img.bitPP === 32) for (let p = 3; p < rgba.length; p += 4) if (rgba[p] !== 0) anyAlpha = true;
      if (!anyAlpha) for (let p = 3; p < rgba.length; p += 4) rgba[p] = 255;
      return { width: img.width, height: img.height, rgba };
    }
    case 'gif': {
      const reader = new GifReader(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
      if (reader.numFrames() < 1) throw new Error('no frames');
      const rgba = new Uint8Array(reader.width * reader.height * 4); // outside the first frame: transparent
      reader.decodeAndBlitFrameRGBA(0, rgba);
      return { width: reader.width, height: reader.height, rgba };
    }
    case 'tiff': {
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
      const ifds = UTIF.decode(ab);
      const page = ifds.find((d) => d.t256 !== undefined && d.t257 !== undefined);
      if (!page) throw new Error('no image in the file');
      UTIF.decodeImage(ab, page);
      const rgba = UTIF.toRGBA8(page);
      if (!page.width || !page.height || rgba.length !== page.width * page.height * 4) throw new Error('unsupported TIFF layout');
      const tag = page.t274 as number[] | undefined;
      const o = Array.isArray(tag) ? Number(tag[0]) : undefined;
      return { width: page.width, height: page.height, rgba, exifOrientation: o !== undefined && o >= 1 && o <= 8 ? o : undefined };
    }
    case 'webp': {
      const img = webpDecoder().decode(new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
      return { width: img.width, height: img.height, rgba: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.length), exifOrientation: containerExifOrientation(buf) };
    }
  }
}

/** Decodes an image file to upright RGBA. Errors (one line, naming the file) say what to do. */
export function decodeImage(file: string): DecodedImage {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read image (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  const format = imageFormat(buf);
  if (!format) throw new UserError(`not a ${SUPPORTED} image; convert it to PNG`, file);
  let img: DecodedImage;
  try {
    img = rawDecode(buf, format);
  } catch (e) {
    throw new UserError(`cannot decode this ${format.toUpperCase()} image (${String((e as Error).message ?? e).split('\n')[0]}); re-save it as PNG`, file);
  }
  if (!(img.width > 0 && img.height > 0)) throw new UserError(`the ${format.toUpperCase()} image has no pixels (${img.width}x${img.height})`, file);
  const o = img.exifOrientation;
  const upright = o !== undefined && o !== 1 ? applyOrientation(img.rgba, img.width, img.height, o) : img;
  return { width: upright.width, height: upright.height, rgba: upright.rgba, format, ...(o !== undefined ? { exifOrientation: o } : {}) };
}

const luminance = (r: number, g: number, b: number) => 0.299 * r + 0.587 * g + 0.114 * b;

/**
 * Converts decoded RGBA to `channels` (1: luminance, 3: RGB) in [0,1], handles alpha as `options.alpha` says, and
 * fits it to height x width by `options.resize` (geometry.ts).
 */
export function prepareImage(file: string, decoded: DecodedImage, height: number, width: number, channels: number, options: ImageOptions = {}): PreparedImage {
  if (channels !== 1 && channels !== 3) {
    throw new UserError(`the model expects ${channels} input channels; only 1 (grayscale) or 3 (RGB) are supported`, file);
  }
  const resize = options.resize ?? 'stretch';
  const alpha = options.alpha ?? { mode: 'composite', background: [0, 0, 0] };
  const [br, bg, bb] = alpha.mode === 'composite' ? (alpha.background ?? [0, 0, 0]) : [0, 0, 0];
  const { width: w, height: h, rgba } = decoded;
  const { src: crop, dst } = placement(resize, w, h, height, width);
  const [cx, cy, cw, ch] = crop;
  // The cropped part, alpha handled, in the model's channels.
  const src = new Float32Array(cw * ch * channels);
  let transparent = false;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const p = (cy + y) * w + (cx + x);
      const q = y * cw + x;
      let r = rgba[4 * p] / 255;
      let g = rgba[4 * p + 1] / 255;
      let b = rgba[4 * p + 2] / 255;
      const a = rgba[4 * p + 3] / 255;
      if (a < 1) {
        transparent = true;
        if (alpha.mode === 'composite') {
          r = r * a + br * (1 - a);
          g = g * a + bg * (1 - a);
          b = b * a + bb * (1 - a);
        }
      }
      if (channels === 1) src[q] = luminance(r, g, b);
      else {
        src[3 * q] = r;
        src[3 * q + 1] = g;
        src[3 * q + 2] = b;
      }
    }
  }
  // Transparency anywhere in the file counts, not only inside the crop.
  if (!transparent) for (let p = 3; p < rgba.length; p += 4) if (rgba[p] < 255) { transparent = true; break; }
  const [dx, dy, dw, dh] = dst;
  const inner = cw === dw && ch === dh ? src : resizeBilinear(src, ch, cw, dh, dw, channels);
  let pixels = inner;
  const pad = options.pad ?? [0, 0, 0];
  if (dw !== width || dh !== height) {
    pixels = new Float32Array(width * height * channels);
    const fill = channels === 1 ? [luminance(...pad)] : pad;
    for (let p = 0; p < width * height; p++) for (let c = 0; c < channels; c++) pixels[p * channels + c] = fill[c];
    for (let y = 0; y < dh; y++) pixels.set(inner.subarray(y * dw * channels, (y + 1) * dw * channels), ((dy + y) * width + dx) * channels);
  }
  const geometry: ImageGeometry = {
    resize,
    crop: [cx, cy, cw, ch],
    ...(decoded.exifOrientation !== undefined ? { exifOrientation: decoded.exifOrientation } : {}),
    alpha: !transparent ? 'none' : alpha.mode === 'composite' ? 'composited' : 'dropped',
    ...(transparent && alpha.mode === 'composite' ? { background: [br, bg, bb] as [number, number, number] } : {}),
    ...(resize === 'letterbox' ? { pad: [...pad] as [number, number, number] } : {}),
  };
  return { path: file, width: w, height: h, channels, pixels, geometry };
}

function resizeBilinear(src: Float32Array, h: number, w: number, height: number, width: number, channels: number): Float32Array {
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

export function loadImages(files: string[], height: number, width: number, channels: number, options: ImageOptions = {}): PreparedImage[] {
  return files.map((f) => prepareImage(f, decodeImage(f), height, width, channels, options));
}
