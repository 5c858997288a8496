/**
 * The image-fitting options as people write them (CLI `--resize`, `--transparency`; the extension's
 * `infodiscard.resize`, `infodiscard.transparency`): parsed into ImageOptions, with one-line errors. No tfjs.
 *
 *   resize:        stretch | center-crop | letterbox[:r,g,b]     (letterbox padding colour, 0-255, default 0,0,0)
 *   transparency:  composite[:r,g,b] | drop                      (the colour under transparent pixels, 0-255,
 *                                                                 default 0,0,0 = black; drop: keep RGB, ignore alpha)
 */
import { UserError } from './errors';
import { RESIZE_MODES, type ImageOptions } from './geometry';
import type { AlphaHandling, ResizeMode } from './report';

function colour(text: string, what: string, source: string): [number, number, number] {
  const parts = text.split(',').map((s) => s.trim());
  const nums = parts.map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (nums.length !== 3 || nums.some((n) => !(n >= 0 && n <= 255))) {
    throw new UserError(`${what} colour must be r,g,b, three whole numbers from 0 to 255, got "${text}"`, source);
  }
  return nums.map((n) => n / 255) as [number, number, number];
}

/** "stretch" | "center-crop" | "letterbox[:r,g,b]" into resize (and letterbox padding). */
export function parseResize(value: string, source = '--resize'): Pick<ImageOptions, 'resize' | 'pad'> {
  const [mode, rest] = splitOnce(value.trim());
  if (!RESIZE_MODES.includes(mode as ResizeMode)) {
    throw new UserError(`expects stretch, center-crop or letterbox[:r,g,b], got "${value}"`, source);
  }
  if (rest !== undefined && mode !== 'letterbox') throw new UserError(`only letterbox takes a colour (its padding), got "${value}"`, source);
  return { resize: mode as ResizeMode, ...(rest !== undefined ? { pad: colour(rest, 'the letterbox padding', source) } : {}) };
}

/** "composite[:r,g,b]" | "drop" into AlphaHandling. */
export function parseTransparency(value: string, source = '--transparency'): AlphaHandling {
  const [mode, rest] = splitOnce(value.trim());
  if (mode === 'drop' && rest === undefined) return { mode: 'drop' };
  if (mode === 'composite') return { mode: 'composite', background: rest !== undefined ? colour(rest, 'the background', source) : [0, 0, 0] };
  throw new UserError(`expects composite[:r,g,b] (over a colour, 0-255; default black) or drop, got "${value}"`, source);
}

function splitOnce(v: string): [string, string | undefined] {
  const i = v.indexOf(':');
  return i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)];
}

/** The options as one could write them again (for messages and the log). */
export function describeImageOptions(o: ImageOptions): string {
  const c = (rgb: readonly number[]) => rgb.map((x) => Math.round(x * 255)).join(',');
  const resize = o.resize ?? 'stretch';
  const pad = resize === 'letterbox' && o.pad ? `:${c(o.pad)}` : '';
  const alpha = o.alpha?.mode === 'drop' ? 'drop' : `composite:${c(o.alpha?.background ?? [0, 0, 0])}`;
  return `resize ${resize}${pad}, transparency ${alpha}`;
}
