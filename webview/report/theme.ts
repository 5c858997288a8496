/**
 * Colours and fonts, read from the page's computed style. In VS Code the --vscode-* variables are set on <html>;
 * on the standalone page the fallbacks in styles.ts (a light theme) apply. The variables used here are the
 * resolved --id-* aliases defined in styles.ts.
 */

export interface Theme {
  fg: string;
  muted: string;
  bg: string;
  grid: string;
  font: string;
  fontSize: number;
  /** Warnings (poor decoders). */
  warn: string;
  /** Series colours for charts, in order. */
  series: string[];
  kind: 'light' | 'dark' | 'high-contrast';
}

const SERIES_FALLBACK = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989'];

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  const v = style.getPropertyValue(name).trim();
  return v || fallback;
}

let probe: CanvasRenderingContext2D | null | undefined;
/** A CSS colour with its alpha replaced (the canvas normalises any colour syntax to #rrggbb or rgba()). */
export function withAlpha(color: string, alpha: number): string {
  if (probe === undefined) probe = document.createElement('canvas').getContext('2d');
  if (!probe) return `rgba(128,128,128,${alpha})`;
  probe.fillStyle = '#808080';
  probe.fillStyle = color;
  const c = String(probe.fillStyle);
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  if (hex) return `rgba(${parseInt(hex[1], 16)},${parseInt(hex[2], 16)},${parseInt(hex[3], 16)},${alpha})`;
  const rgba = /^rgba?\(([^,]+),([^,]+),([^,)]+)/.exec(c.replace(/\s/g, ''));
  return rgba ? `rgba(${rgba[1]},${rgba[2]},${rgba[3]},${alpha})` : `rgba(128,128,128,${alpha})`;
}

export function readTheme(): Theme {
  const style = getComputedStyle(document.body);
  const cls = document.body.classList;
  const kind = cls.contains('vscode-high-contrast') || cls.contains('vscode-high-contrast-light') ? 'high-contrast' : cls.contains('vscode-dark') ? 'dark' : 'light';
  const series = SERIES_FALLBACK.map((fallback, i) => cssVar(style, `--id-series-${i + 1}`, fallback));
  const size = parseFloat(cssVar(style, '--id-font-size', '13'));
  const fg = cssVar(style, '--id-fg', '#1f2328');
  return {
    fg,
    muted: cssVar(style, '--id-muted', '#59636e'),
    bg: cssVar(style, '--id-bg', '#ffffff'),
    warn: cssVar(style, '--id-warn', '#9a6700'),
    // Gridlines: the foreground at low alpha, so they suit any theme without a dedicated variable.
    grid: withAlpha(fg, kind === 'high-contrast' ? 0.4 : 0.14),
    font: cssVar(style, '--id-font', 'system-ui, sans-serif'),
    fontSize: Number.isFinite(size) && size > 0 ? size : 13,
    series,
    kind,
  };
}

/** Calls `onChange` whenever VS Code switches theme (it toggles classes on <body> and restyles <html>). */
export function watchTheme(onChange: () => void): () => void {
  let pending = 0;
  const fire = (): void => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => onChange());
  };
  const observer = new MutationObserver(fire);
  observer.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  return () => observer.disconnect();
}
