/**
 * Pixel-SID heatmaps on canvas: the input image in greyscale with the SID map blended over it in viridis, scaled
 * up with nearest-neighbour sampling, plus the legend bar for the report-wide colour scale.
 */
import type { ImageInfo } from '../../src/engine/report';
import { VIRIDIS, lutIndex, niceTicks, type Scale } from './colormap';
import { imageGrid, mapGrid, type Grid } from './data';
import type { Theme } from './theme';

export interface HeatmapInput {
  map: number[][];
  image?: ImageInfo;
  scale: Scale;
  /** 0 = image only, 1 = map only. */
  opacity: number;
}

/** The blended picture at map resolution, in an offscreen canvas. */
export function composeHeatmap(input: HeatmapInput): { canvas: HTMLCanvasElement; grid: Grid } {
  const grid = mapGrid(input.map);
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, grid.width);
  canvas.height = Math.max(1, grid.height);
  const ctx = canvas.getContext('2d');
  if (!ctx || grid.width === 0 || grid.height === 0) return { canvas, grid };
  const out = ctx.createImageData(canvas.width, canvas.height);
  const d = out.data;
  const img = input.image;
  const ig = img ? imageGrid(img, grid) : null;
  const channels = img ? Math.max(1, Math.round(img.channels) || 1) : 1;
  const a = Math.min(1, Math.max(0, input.opacity));
  for (let y = 0; y < grid.height; y++) {
    const row = input.map[y];
    const iy = ig ? Math.min(ig.height - 1, Math.floor(((y + 0.5) * ig.height) / grid.height)) : 0;
    for (let x = 0; x < grid.width; x++) {
      // Greyscale luminance of the input pixel underneath (mid-grey when there is no image).
      let lum = 0.5;
      if (img && ig) {
        const ix = Math.min(ig.width - 1, Math.floor(((x + 0.5) * ig.width) / grid.width));
        const o = (iy * ig.width + ix) * channels;
        const p = img.pixels;
        lum = channels >= 3 ? 0.2126 * p[o] + 0.7152 * p[o + 1] + 0.0722 * p[o + 2] : p[o];
        if (!Number.isFinite(lum)) lum = 0.5;
        lum = Math.min(1, Math.max(0, lum));
      }
      const g = lum * 255;
      const k = (y * grid.width + x) * 4;
      const li = lutIndex(row?.[x] as number, input.scale);
      if (li < 0) {
        // No value (ragged or non-finite): show the image only, dimmed.
        d[k] = d[k + 1] = d[k + 2] = g * 0.6;
      } else {
        d[k] = (1 - a) * g + a * VIRIDIS[li * 3];
        d[k + 1] = (1 - a) * g + a * VIRIDIS[li * 3 + 1];
        d[k + 2] = (1 - a) * g + a * VIRIDIS[li * 3 + 2];
      }
      d[k + 3] = 255;
    }
  }
  ctx.putImageData(out, 0, 0);
  return { canvas, grid };
}

/** Size a visible canvas to css pixels (backing store at device resolution); returns its 2D context. */
export function sizeCanvas(canvas: HTMLCanvasElement, cssWidth: number, cssHeight: number): CanvasRenderingContext2D | null {
  const dpr = Math.max(1, window.devicePixelRatio || 1);
  canvas.width = Math.round(cssWidth * dpr);
  canvas.height = Math.round(cssHeight * dpr);
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  const ctx = canvas.getContext('2d');
  if (ctx) ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** CSS size that fits a grid into a box of `target` px on its longer side, keeping the aspect ratio. */
export function fitSize(grid: Grid, target: number): { width: number; height: number } {
  if (grid.width === 0 || grid.height === 0) return { width: target, height: target };
  const s = target / Math.max(grid.width, grid.height);
  return { width: Math.round(grid.width * s), height: Math.round(grid.height * s) };
}

/** What to draw over a heatmap besides the hovered cell: the object region's outline (a flat H x W 0/1 mask). */
export interface HeatmapOverlay {
  region?: { mask: ArrayLike<number>; grid: Grid; dashed?: boolean } | null;
}

/**
 * The outline of a 0/1 mask on the cell edges between inside and outside cells, in css pixels: a light line over
 * a dark one so it shows on any colour of the map; dashed while a box is being drawn.
 */
export function drawRegionOutline(ctx: CanvasRenderingContext2D, mask: ArrayLike<number>, grid: Grid, cssWidth: number, cssHeight: number, dashed = false): void {
  const { width: W, height: H } = grid;
  if (W === 0 || H === 0 || mask.length !== W * H) return;
  const cw = cssWidth / W;
  const ch = cssHeight / H;
  const on = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < W && y < H && !!mask[y * W + x];
  const path = new Path2D();
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!on(x, y)) continue;
      if (!on(x, y - 1)) { path.moveTo(x * cw, y * ch); path.lineTo((x + 1) * cw, y * ch); }
      if (!on(x, y + 1)) { path.moveTo(x * cw, (y + 1) * ch); path.lineTo((x + 1) * cw, (y + 1) * ch); }
      if (!on(x - 1, y)) { path.moveTo(x * cw, y * ch); path.lineTo(x * cw, (y + 1) * ch); }
      if (!on(x + 1, y)) { path.moveTo((x + 1) * cw, y * ch); path.lineTo((x + 1) * cw, (y + 1) * ch); }
    }
  }
  ctx.save();
  ctx.lineCap = 'square';
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(0,0,0,0.85)';
  ctx.stroke(path);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = 'rgba(255,255,255,0.95)';
  if (dashed) ctx.setLineDash([4, 3]);
  ctx.stroke(path);
  ctx.restore();
}

/** Draw a composed heatmap scaled up with nearest-neighbour sampling, optionally outlining one cell and a region. */
export function paintHeatmap(canvas: HTMLCanvasElement, source: HTMLCanvasElement, cssWidth: number, cssHeight: number, highlight?: { x: number; y: number; grid: Grid } | null, overlay?: HeatmapOverlay): void {
  const ctx = sizeCanvas(canvas, cssWidth, cssHeight);
  if (!ctx) return;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, cssWidth, cssHeight);
  if (overlay?.region) drawRegionOutline(ctx, overlay.region.mask, overlay.region.grid, cssWidth, cssHeight, overlay.region.dashed);
  if (highlight && highlight.grid.width > 0) {
    const cw = cssWidth / highlight.grid.width;
    const ch = cssHeight / highlight.grid.height;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = 'rgba(255,255,255,0.95)';
    ctx.strokeRect(highlight.x * cw + 0.75, highlight.y * ch + 0.75, Math.max(1, cw - 1.5), Math.max(1, ch - 1.5));
    ctx.lineWidth = 1;
    ctx.strokeStyle = 'rgba(0,0,0,0.8)';
    ctx.strokeRect(highlight.x * cw - 0.5, highlight.y * ch - 0.5, cw + 1, ch + 1);
  }
}

/** Horizontal legend: the colour bar for `scale` with round-number ticks (nats for SID and RU). */
export function drawLegend(canvas: HTMLCanvasElement, scale: Scale, theme: Theme, cssWidth: number): void {
  const fontSize = Math.max(10, Math.round(theme.fontSize * 0.85));
  const barH = 12;
  const pad = 1;
  const cssHeight = barH + 6 + fontSize + 6;
  const ctx = sizeCanvas(canvas, cssWidth, cssHeight);
  if (!ctx) return;
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  const w = cssWidth - 2 * pad;
  for (let i = 0; i < 256; i++) {
    ctx.fillStyle = `rgb(${VIRIDIS[i * 3]},${VIRIDIS[i * 3 + 1]},${VIRIDIS[i * 3 + 2]})`;
    const x0 = pad + (i / 256) * w;
    ctx.fillRect(x0, 0, w / 256 + 0.6, barH);
  }
  ctx.strokeStyle = theme.grid;
  ctx.strokeRect(pad - 0.5, -0.5, w + 1, barH + 1);
  ctx.fillStyle = theme.fg;
  ctx.strokeStyle = theme.muted;
  ctx.font = `${fontSize}px ${theme.font}`;
  ctx.textBaseline = 'top';
  const span = scale.max - scale.min;
  const ticks = niceTicks(scale.min, scale.max, Math.max(3, Math.min(7, Math.floor(cssWidth / 55))));
  const digits = decimalsFor(ticks);
  let lastRight = -Infinity;
  for (const t of ticks) {
    const x = pad + ((t - scale.min) / span) * w;
    ctx.beginPath();
    ctx.moveTo(Math.round(x) + 0.5, barH);
    ctx.lineTo(Math.round(x) + 0.5, barH + 4);
    ctx.stroke();
    const label = digits < 0 ? compactTick(t) : t.toFixed(digits);
    const tw = ctx.measureText(label).width;
    let left = x - tw / 2;
    left = Math.max(0, Math.min(cssWidth - tw, left));
    if (left < lastRight + 6) continue;
    ctx.fillText(label, left, barH + 6);
    lastRight = left + tw;
  }
}

/** Tick labels for magnitudes far from 1 (baseline maps): 2.5e-4, 1.2e+6. */
function compactTick(t: number): string {
  if (t === 0) return '0';
  return t.toExponential(1).replace(/\.0e/, 'e');
}

/** Decimals for tick labels; -1: use exponential labels (steps below 0.001 or values from 100000 on). */
function decimalsFor(ticks: number[]): number {
  if (ticks.length < 2) return 2;
  const step = Math.abs(ticks[1] - ticks[0]);
  if (step < 1e-3 || Math.max(...ticks.map(Math.abs)) >= 1e5) return -1;
  for (let d = 0; d < 4; d++) {
    const s = step * 10 ** d;
    if (Math.abs(s - Math.round(s)) < 1e-6 * Math.max(1, s)) return d;
  }
  return 4;
}
