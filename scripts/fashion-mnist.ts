/** Reads the Fashion-MNIST IDX files of Debian's dataset-fashion-mnist package (or FASHION_MNIST_DIR). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

export const DATA_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

export const CLASS_NAMES = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'] as const;

function readMaybeGz(base: string): Buffer {
  for (const name of [base, `${base}.gz`]) {
    const file = path.join(DATA_DIR, name);
    if (fs.existsSync(file)) {
      const raw = fs.readFileSync(file);
      return raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw) : raw;
    }
  }
  throw new Error(`${base}(.gz) not found in ${DATA_DIR} (apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR)`);
}

export interface IdxImages { count: number; rows: number; cols: number; pixels: Uint8Array }

export function readIdxImages(base: string): IdxImages {
  const buf = readMaybeGz(base);
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x00000803) throw new Error(`${base}: bad IDX3 magic 0x${magic.toString(16)}`);
  const count = buf.readUInt32BE(4);
  const rows = buf.readUInt32BE(8);
  const cols = buf.readUInt32BE(12);
  const pixels = new Uint8Array(buf.buffer, buf.byteOffset + 16, count * rows * cols);
  return { count, rows, cols, pixels };
}

export function readIdxLabels(base: string): Uint8Array {
  const buf = readMaybeGz(base);
  const magic = buf.readUInt32BE(0);
  if (magic !== 0x00000801) throw new Error(`${base}: bad IDX1 magic 0x${magic.toString(16)}`);
  const count = buf.readUInt32BE(4);
  return new Uint8Array(buf.buffer, buf.byteOffset + 8, count);
}
