// Draws the extension icon, media/icon.png (128x128): three layers of a network narrowing top to bottom, the
// pixels each layer lets go falling away beside it, on a dark rounded square. `node scripts/media/icon.mjs`.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';

const S = 128;
const png = new PNG({ width: S, height: S });
const SS = 4; // supersampling per axis, for smooth edges

/** Coverage-weighted colour of one sample point: later shapes paint over earlier ones. */
function sample(x, y) {
  let c = null;
  const inRound = (x0, y0, x1, y1, r) => {
    if (x < x0 || x > x1 || y < y0 || y > y1) return false;
    const cx = Math.min(Math.max(x, x0 + r), x1 - r);
    const cy = Math.min(Math.max(y, y0 + r), y1 - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };
  if (inRound(4, 4, 124, 124, 24)) c = [24, 30, 48, 255];
  // Layers: width shrinks with depth; colour goes from warm (much kept) to cool.
  const layers = [
    { x0: 18, x1: 110, y0: 22, y1: 40, col: [255, 176, 59] },
    { x0: 34, x1: 94, y0: 55, y1: 73, col: [242, 99, 92] },
    { x0: 50, x1: 78, y0: 88, y1: 106, col: [143, 120, 255] },
  ];
  for (const l of layers) if (inRound(l.x0, l.y0, l.x1, l.y1, 5)) c = [...l.col, 255];
  // Discarded pixels: small squares falling away beside the narrower layers.
  const dots = [[22, 58, 6], [100, 62, 6], [26, 76, 4], [96, 80, 5], [38, 92, 5], [86, 98, 4], [30, 104, 3], [94, 110, 3]];
  for (const [dx, dy, r] of dots) if (Math.abs(x - dx) <= r / 2 + 0.5 && Math.abs(y - dy) <= r / 2 + 0.5) c = [170, 178, 200, 255];
  return c ?? [0, 0, 0, 0];
}

for (let y = 0; y < S; y++) {
  for (let x = 0; x < S; x++) {
    const acc = [0, 0, 0, 0];
    for (let sy = 0; sy < SS; sy++) {
      for (let sx = 0; sx < SS; sx++) {
        const c = sample(x + (sx + 0.5) / SS, y + (sy + 0.5) / SS);
        // Premultiplied, so transparent samples do not darken edges.
        acc[0] += c[0] * c[3]; acc[1] += c[1] * c[3]; acc[2] += c[2] * c[3]; acc[3] += c[3];
      }
    }
    const i = (y * S + x) * 4;
    const a = acc[3] / (SS * SS);
    png.data[i] = acc[3] ? Math.round(acc[0] / acc[3]) : 0;
    png.data[i + 1] = acc[3] ? Math.round(acc[1] / acc[3]) : 0;
    png.data[i + 2] = acc[3] ? Math.round(acc[2] / acc[3]) : 0;
    png.data[i + 3] = Math.round(a);
  }
}
const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'media', 'icon.png');
writeFileSync(out, PNG.sync.write(png));
console.log(`written ${out}`);
