/**
 * Headless Chromium for `npm run repro` (playwright-core driving Debian's /usr/bin/chromium, as the tests do):
 *  - renderCharts: one PNG per family, drawn by the report panel's chart code (chart-page.ts, bundled here with
 *    esbuild) and screenshotted;
 *  - renderDigits: MNIST-style digit images (white on black, the digit scaled into a 20×20 box and centred by its
 *    centre of mass in 28×28, as MNIST was made) from the system's DejaVu Sans Bold, for the third-party Keras
 *    MNIST checkpoints: no MNIST data is installed on this machine.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import type { Browser } from 'playwright-core';
import { PNG } from 'pngjs';
import { REPORT_CSS } from '../../webview/report/styles';
import type { ChartPayload } from './chart-page';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}

const EXTRA_CSS = `
#figure { width: 1280px; padding: 14px 20px 18px; }
#figure h1 { font-size: 1.35em; }
#figure header .id-hint { margin: 4px 0 0; }
.repro-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 16px; }
.repro-wide { grid-column: 1 / -1; }
.id-card { margin-top: 12px; }
.id-card h2 { margin-bottom: 2px; }
`;

async function bundle(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [path.join(__dirname, 'chart-page.ts')],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    logLevel: 'warning',
  });
  return result.outputFiles[0].text;
}

/** Draw each payload and save the figure as a PNG. */
export async function renderCharts(jobs: { file: string; payload: ChartPayload }[]): Promise<void> {
  if (!jobs.length) return;
  const js = await bundle();
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport: { width: 1320, height: 900 }, deviceScaleFactor: 1.5 });
    for (const job of jobs) {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.setContent(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><style>${REPORT_CSS}\n${EXTRA_CSS}</style></head><body></body></html>`);
      await page.addScriptTag({ content: js });
      await page.evaluate((p) => window.reproRender(p), job.payload);
      await page.waitForFunction(() => window.__reproDone === true || typeof window.__reproError === 'string', undefined, { timeout: 20_000 });
      const err = await page.evaluate(() => window.__reproError);
      if (err || errors.length) throw new Error(`chart page for ${path.basename(job.file)}: ${err ?? errors[0]}`);
      mkdirSync(path.dirname(job.file), { recursive: true });
      await page.locator('#figure').screenshot({ path: job.file });
      await page.close();
    }
  } finally {
    await browser.close();
  }
}

export interface DigitImage {
  file: string;
  digit: number;
  /** [x, y, w, h] of the ink (pixels above 0.1), 28×28 pixels. */
  bbox: [number, number, number, number];
  /** 784 values in [0,1]. */
  pixels: number[];
}

/** Render digits 0–9 as 28×28 MNIST-style PNGs into `dir`, with boxes.json; returns them. */
export async function renderDigits(dir: string, font = 'DejaVu Sans'): Promise<DigitImage[]> {
  const browser = await launch();
  let raw: number[][];
  try {
    const page = await browser.newPage();
    await page.setContent('<!DOCTYPE html><html><body></body></html>');
    raw = await page.evaluate(async (fontName) => {
      await document.fonts.load(`bold 150px "${fontName}"`);
      const out: number[][] = [];
      for (let d = 0; d < 10; d++) {
        const big = document.createElement('canvas');
        big.width = big.height = 220;
        const g = big.getContext('2d')!;
        g.fillStyle = '#000';
        g.fillRect(0, 0, 220, 220);
        g.fillStyle = '#fff';
        g.font = `bold 150px "${fontName}"`;
        g.textAlign = 'center';
        g.textBaseline = 'middle';
        g.fillText(String(d), 110, 110);
        const data = g.getImageData(0, 0, 220, 220).data;
        let x0 = 220, y0 = 220, x1 = -1, y1 = -1;
        for (let y = 0; y < 220; y++) for (let x = 0; x < 220; x++) {
          if (data[(y * 220 + x) * 4] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
        }
        const w = x1 - x0 + 1;
        const h = y1 - y0 + 1;
        const s = 20 / Math.max(w, h);
        const tw = Math.max(1, Math.round(w * s));
        const th = Math.max(1, Math.round(h * s));
        const small = document.createElement('canvas');
        small.width = tw;
        small.height = th;
        const sg = small.getContext('2d')!;
        sg.imageSmoothingEnabled = true;
        sg.imageSmoothingQuality = 'high';
        sg.drawImage(big, x0, y0, w, h, 0, 0, tw, th);
        const sd = sg.getImageData(0, 0, tw, th).data;
        let m = 0, cx = 0, cy = 0;
        for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) { const v = sd[(y * tw + x) * 4]; m += v; cx += v * (x + 0.5); cy += v * (y + 0.5); }
        const dx = Math.round(14 - cx / m);
        const dy = Math.round(14 - cy / m);
        const o = document.createElement('canvas');
        o.width = o.height = 28;
        const og = o.getContext('2d')!;
        og.fillStyle = '#000';
        og.fillRect(0, 0, 28, 28);
        og.drawImage(small, dx, dy);
        const od = og.getImageData(0, 0, 28, 28).data;
        const px: number[] = [];
        for (let i = 0; i < 784; i++) px.push(od[i * 4]);
        out.push(px);
      }
      return out;
    }, font);
  } finally {
    await browser.close();
  }
  mkdirSync(dir, { recursive: true });
  const boxes: Record<string, { bbox: [number, number, number, number] }> = {};
  const images: DigitImage[] = raw.map((px, digit) => {
    const png = new PNG({ width: 28, height: 28 });
    let x0 = 28, y0 = 28, x1 = -1, y1 = -1;
    for (let i = 0; i < 784; i++) {
      png.data[i * 4] = png.data[i * 4 + 1] = png.data[i * 4 + 2] = px[i];
      png.data[i * 4 + 3] = 255;
      if (px[i] > 25) {
        const x = i % 28;
        const y = Math.floor(i / 28);
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
    const name = `digit-${digit}.png`;
    const file = path.join(dir, name);
    writeFileSync(file, PNG.sync.write(png, { colorType: 0 }));
    const bbox: [number, number, number, number] = [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
    boxes[name] = { bbox };
    return { file, digit, bbox, pixels: px.map((v) => v / 255) };
  });
  writeFileSync(path.join(dir, 'boxes.json'), `${JSON.stringify(boxes, null, 1)}\n`);
  return images;
}
