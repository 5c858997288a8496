/**
 * EXIF orientation (tag 0x0112) of a JPEG (its APP1 "Exif" segment), a PNG (eXIf chunk) or a WebP (EXIF chunk),
 * applied to decoded RGBA so the image is upright as photo viewers show it. Pure: no tfjs, no node.
 *
 * Orientation values (TIFF 6.0 / EXIF 2.3): 1 upright; 2 mirrored left-right; 3 rotated 180; 4 mirrored
 * top-bottom; 5 transposed (mirrored across the main diagonal); 6 stored rotated 90 counter-clockwise (shown after
 * a 90 clockwise turn: phones held upright); 7 transverse; 8 stored rotated 90 clockwise.
 */

/** The orientation tag of a JPEG (1-8), or undefined when the file has no EXIF or no valid tag. Never throws. */
export function jpegExifOrientation(buf: Uint8Array): number | undefined {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= buf.length) {
    if (buf[p] !== 0xff) return undefined;
    const marker = buf[p + 1];
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    // Standalone markers carry no length; the image data starts at SOS (0xda): no APP1 after it.
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    const len = (buf[p + 2] << 8) | buf[p + 3];
    if (len < 2 || p + 2 + len > buf.length) return undefined;
    const start = p + 4;
    if (marker === 0xe1 && len >= 8 && String.fromCharCode(...buf.subarray(start, start + 4)) === 'Exif' && buf[start + 4] === 0 && buf[start + 5] === 0) {
      const o = tiffOrientation(buf.subarray(start + 6, p + 2 + len));
      if (o !== undefined) return o;
    }
    p += 2 + len;
  }
  return undefined;
}

/**
 * The orientation tag of a PNG (its eXIf chunk) or a WebP (its EXIF chunk), or undefined. Never throws. Browsers
 * and photo viewers honour these too, so an image that carries one is shown turned.
 */
export function containerExifOrientation(buf: Uint8Array): number | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...buf.subarray(from, to));
  const be32 = (i: number) => buf[i] * 2 ** 24 + ((buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]);
  const le32 = (i: number) => (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16)) + buf[i + 3] * 2 ** 24;
  const tiff = (start: number, end: number) => {
    // Some writers keep the JPEG segment's "Exif\0\0" prefix.
    const skip = end - start >= 6 && ascii(start, start + 4) === 'Exif' ? 6 : 0;
    return tiffOrientation(buf.subarray(start + skip, end));
  };
  if (buf.length >= 8 && buf[0] === 0x89 && ascii(1, 4) === 'PNG') {
    for (let p = 8; p + 8 <= buf.length; ) {
      const len = be32(p);
      const type = ascii(p + 4, p + 8);
      if (type === 'eXIf' && p + 8 + len <= buf.length) return tiff(p + 8, p + 8 + len);
      if (type === 'IDAT' || type === 'IEND') return undefined; // eXIf must come before the image data
      p += 12 + len;
    }
    return undefined;
  }
  if (buf.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') {
    for (let p = 12; p + 8 <= buf.length; ) {
      const len = le32(p + 4);
      if (ascii(p, p + 4) === 'EXIF' && p + 8 + len <= buf.length) return tiff(p + 8, p + 8 + len);
      p += 8 + len + (len & 1);
    }
  }
  return undefined;
}

/** Orientation tag from IFD0 of a TIFF structure (the body of an Exif segment). */
function tiffOrientation(t: Uint8Array): number | undefined {
  if (t.length < 8) return undefined;
  const little = t[0] === 0x49 && t[1] === 0x49;
  if (!little && !(t[0] === 0x4d && t[1] === 0x4d)) return undefined;
  const u16 = (i: number) => (little ? t[i] | (t[i + 1] << 8) : (t[i] << 8) | t[i + 1]);
  const u32 = (i: number) => (little ? (t[i] | (t[i + 1] << 8) | (t[i + 2] << 16)) + t[i + 3] * 2 ** 24 : t[i] * 2 ** 24 + ((t[i + 1] << 16) | (t[i + 2] << 8) | t[i + 3]));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return undefined;
  const n = u16(ifd);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    if (e + 12 > t.length) return undefined;
    if (u16(e) !== 0x0112) continue;
    const type = u16(e + 2);
    // SHORT (3) as the standard says; LONG (4) from some writers. The value sits in the entry's first bytes.
    const v = type === 3 ? u16(e + 8) : type === 4 ? u32(e + 8) : NaN;
    return Number.isInteger(v) && v >= 1 && v <= 8 ? v : undefined;
  }
  return undefined;
}

/** The upright image for a stored `width` x `height` RGBA image with EXIF `orientation` (1-8). */
export function applyOrientation(rgba: Uint8Array, width: number, height: number, orientation: number): { width: number; height: number; rgba: Uint8Array } {
  if (!(orientation >= 2 && orientation <= 8)) return { width, height, rgba };
  const W = width;
  const H = height;
  const swap = orientation >= 5;
  const ow = swap ? H : W;
  const oh = swap ? W : H;
  const out = new Uint8Array(ow * oh * 4);
  // For each upright pixel (x, y): the stored pixel (sx, sy) that shows there.
  const source: (x: number, y: number) => [number, number] = {
    2: (x: number, y: number): [number, number] => [W - 1 - x, y],
    3: (x: number, y: number): [number, number] => [W - 1 - x, H - 1 - y],
    4: (x: number, y: number): [number, number] => [x, H - 1 - y],
    5: (x: number, y: number): [number, number] => [y, x],
    6: (x: number, y: number): [number, number] => [y, H - 1 - x],
    7: (x: number, y: number): [number, number] => [W - 1 - y, H - 1 - x],
    8: (x: number, y: number): [number, number] => [W - 1 - y, x],
  }[orientation]!;
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const [sx, sy] = source(x, y);
      const s = 4 * (sy * W + sx);
      const d = 4 * (y * ow + x);
      out[d] = rgba[s];
      out[d + 1] = rgba[s + 1];
      out[d + 2] = rgba[s + 2];
      out[d + 3] = rgba[s + 3];
    }
  }
  return { width: ow, height: oh, rgba: out };
}
