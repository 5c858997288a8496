/**
 * The report page's stylesheet, shared by the standalone HTML file (src/report-html/render.ts) and the VS Code
 * webview panel (which inlines it under its own nonce). Pure data, safe to import from Node.
 * Every colour comes from a --vscode-* variable with a light-theme fallback for the standalone page; the
 * --id-* aliases are what the code (theme.ts) reads back for canvas drawing.
 */
export const REPORT_CSS = String.raw`
:root {
  --id-fg: var(--vscode-foreground, #1f2328);
  --id-muted: var(--vscode-descriptionForeground, #59636e);
  --id-bg: var(--vscode-editor-background, #ffffff);
  --id-panel: var(--vscode-editorWidget-background, #f6f8fa);
  --id-border: var(--vscode-panel-border, var(--vscode-widget-border, #d1d9e0));
  --id-font: var(--vscode-font-family, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif);
  --id-font-size: var(--vscode-font-size, 13px);
  --id-mono: var(--vscode-editor-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace);
  --id-accent: var(--vscode-focusBorder, #0969da);
  --id-link: var(--vscode-textLink-foreground, #0969da);
  --id-ok: var(--vscode-testing-iconPassed, #1a7f37);
  --id-warn: var(--vscode-editorWarning-foreground, #9a6700);
  --id-err: var(--vscode-errorForeground, #d1242f);
  --id-button-bg: var(--vscode-button-secondaryBackground, #f6f8fa);
  --id-button-fg: var(--vscode-button-secondaryForeground, #1f2328);
  --id-button-hover: var(--vscode-button-secondaryHoverBackground, #eef1f4);
  --id-input-bg: var(--vscode-dropdown-background, #ffffff);
  --id-input-fg: var(--vscode-dropdown-foreground, #1f2328);
  --id-input-border: var(--vscode-dropdown-border, #d1d9e0);
  --id-hover: var(--vscode-list-hoverBackground, #f3f5f7);
  --id-selected: var(--vscode-list-inactiveSelectionBackground, #ddf4ff);
  --id-series-1: var(--vscode-charts-blue, #1f6feb);
  --id-series-2: var(--vscode-charts-red, #d1242f);
  --id-series-3: var(--vscode-charts-green, #1a7f37);
  --id-series-4: var(--vscode-charts-orange, #bc4c00);
  --id-series-5: var(--vscode-charts-purple, #8250df);
  --id-series-6: var(--vscode-charts-yellow, #9a6700);
  color-scheme: light;
}
body.vscode-dark, body.vscode-high-contrast { color-scheme: dark; }
* { box-sizing: border-box; }
html, body { margin: 0; padding: 0; }
body {
  background: var(--id-bg);
  color: var(--id-fg);
  font-family: var(--id-font);
  font-size: var(--id-font-size);
  line-height: 1.45;
}
.id-app { max-width: 1200px; margin: 0 auto; padding: 20px 24px 40px; }
.id-empty { color: var(--id-muted); padding: 40px 0; text-align: center; }
h1, h2 { font-weight: 600; margin: 0; }
h1 { font-size: 1.55em; letter-spacing: -0.01em; }
h2 { font-size: 1.1em; }
.id-mono { font-family: var(--id-mono); font-size: 0.95em; }
.id-muted { color: var(--id-muted); }

/* Header */
.id-header { display: flex; flex-direction: column; gap: 10px; padding-bottom: 14px; border-bottom: 1px solid var(--id-border); }
.id-title-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.id-title-row h1 { margin-right: 4px; }
.id-spacer { flex: 1 1 auto; }
.id-model-path { font-family: var(--id-mono); font-size: 0.95em; word-break: break-all; }
.id-meta { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }
.id-meta div { display: flex; gap: 6px; align-items: baseline; }
.id-meta dt { color: var(--id-muted); }
.id-meta dd { margin: 0; font-variant-numeric: tabular-nums; }
.id-settings { display: flex; flex-wrap: wrap; gap: 6px; }
.id-chip {
  font-family: var(--id-mono); font-size: 0.88em; padding: 1px 8px; border-radius: 10px;
  background: var(--id-panel); border: 1px solid var(--id-border); white-space: nowrap;
}
.id-chip b { font-weight: 600; color: var(--id-muted); margin-right: 4px; }
.id-badge {
  display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px;
  font-size: 0.85em; font-weight: 600; border: 1px solid currentColor; text-transform: uppercase; letter-spacing: 0.04em;
}
.id-badge::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.id-badge.complete { color: var(--id-ok); }
.id-badge.running { color: var(--id-link); }
.id-badge.running::before { animation: id-pulse 1.2s ease-in-out infinite; }
.id-badge.failed { color: var(--id-err); }
.id-badge.cancelled { color: var(--id-warn); }
.id-badge.partial { color: var(--id-warn); }
@keyframes id-pulse { 50% { opacity: 0.25; } }
@media (prefers-reduced-motion: reduce) { .id-badge.running::before { animation: none; } }
.id-banner { padding: 8px 12px; border-radius: 6px; border: 1px solid currentColor; }
.id-banner.failed { color: var(--id-err); }
.id-banner.cancelled { color: var(--id-warn); }
.id-banner.partial { color: var(--id-warn); }
.id-banner.quality { color: var(--id-warn); }
.id-banner span { color: var(--id-fg); }
.id-progress { height: 4px; border-radius: 2px; background: var(--id-panel); border: 1px solid var(--id-border); overflow: hidden; }
.id-progress > div { height: 100%; background: var(--id-link); width: 0; }

/* Cards */
.id-card { margin-top: 18px; border: 1px solid var(--id-border); border-radius: 8px; padding: 14px 16px 16px; }
.id-card-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin-bottom: 4px; min-height: 26px; }
.id-hint { color: var(--id-muted); font-size: 0.92em; margin: 0 0 12px; }
.id-chart-box { position: relative; height: 300px; }
.id-chart-box canvas { display: block; }
.id-chart-box-small { height: 240px; }
.id-chart-box .id-chart-waiting { height: 100%; box-sizing: border-box; margin: 0; display: flex; align-items: center; justify-content: center; }

/* Controls */
button.id-button {
  font: inherit; font-size: 0.92em; color: var(--id-button-fg); background: var(--id-button-bg);
  border: 1px solid var(--id-input-border); border-radius: 4px; padding: 3px 10px; cursor: pointer;
}
button.id-button:hover { background: var(--id-button-hover); }
button.id-button:focus-visible, select:focus-visible, input:focus-visible, .id-thumb:focus-visible {
  outline: 1px solid var(--id-accent); outline-offset: 1px;
}
.id-controls { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; }
.id-controls label { display: inline-flex; align-items: center; gap: 6px; color: var(--id-muted); }
select {
  font: inherit; color: var(--id-input-fg); background: var(--id-input-bg);
  border: 1px solid var(--id-input-border); border-radius: 4px; padding: 2px 4px; max-width: 260px;
}
input[type=range] { width: 110px; accent-color: var(--id-accent); }

/* Heatmaps */
.id-heat { display: flex; flex-wrap: wrap; gap: 18px 28px; align-items: flex-start; margin-top: 12px; }
.id-heat-main { display: flex; flex-direction: column; gap: 8px; }
.id-heat-canvas { display: block; cursor: crosshair; border: 1px solid var(--id-border); image-rendering: pixelated; }
.id-heat-canvas.id-editable { touch-action: none; }
.id-heat-canvas:focus-visible { outline: 2px solid var(--id-accent); outline-offset: 2px; }
.id-heat-canvas[data-drawing] { cursor: cell; }
.id-maps-row { display: flex; flex-wrap: wrap; gap: 14px 16px; align-items: flex-start; }
.id-map { margin: 0; display: flex; flex-direction: column; gap: 6px; }
.id-map figcaption { font-size: 0.9em; font-weight: 600; }
.id-box-bar { display: flex; flex-direction: column; gap: 6px; max-width: 560px; }
.id-box-hint { margin: 0; }
.id-box-row { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.id-facts dd.warn { color: var(--id-warn); }
.id-legend canvas { display: block; }
.id-legend-caption { color: var(--id-muted); font-size: 0.88em; }
.id-readout { font-family: var(--id-mono); font-size: 0.9em; min-height: 1.5em; font-variant-numeric: tabular-nums; }
.id-readout.idle { font-family: var(--id-font); color: var(--id-muted); }
.id-side { display: flex; flex-direction: column; gap: 10px; min-width: 240px; flex: 1 1 300px; }
.id-facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
.id-facts dt { color: var(--id-muted); }
.id-facts dd { margin: 0; font-variant-numeric: tabular-nums; }
.id-strip-title { margin: 18px 0 8px; font-size: 0.95em; font-weight: 600; }
.id-strip { display: flex; flex-wrap: wrap; gap: 10px; }
.id-thumb {
  display: flex; flex-direction: column; gap: 4px; padding: 5px; border-radius: 6px; width: 112px;
  border: 1px solid transparent; background: none; color: inherit; font: inherit; text-align: left; cursor: pointer;
}
.id-thumb:hover { background: var(--id-hover); }
.id-thumb.selected { border-color: var(--id-accent); background: var(--id-selected); }
.id-thumb canvas, .id-thumb .id-pending { display: block; width: 100px; height: 100px; image-rendering: pixelated; }
.id-thumb .id-pending {
  display: flex; align-items: center; justify-content: center; border: 1px dashed var(--id-border);
  color: var(--id-muted); font-size: 0.85em;
}
.id-thumb[disabled] { cursor: default; }
.id-thumb[disabled]:hover { background: none; }
.id-thumb-name { font-size: 0.85em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.id-thumb-value { font-size: 0.8em; color: var(--id-muted); font-variant-numeric: tabular-nums; }

/* Table */
.id-table-wrap { overflow-x: auto; }
table.id-table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
.id-table th, .id-table td { padding: 5px 10px; border-bottom: 1px solid var(--id-border); text-align: right; white-space: nowrap; }
.id-table th { font-weight: 600; color: var(--id-muted); font-size: 0.9em; vertical-align: bottom; }
.id-table th.l, .id-table td.l { text-align: left; }
.id-table td.name { max-width: 320px; overflow: hidden; text-overflow: ellipsis; font-family: var(--id-mono); font-size: 0.95em; }
.id-table tbody tr { cursor: pointer; }
.id-table tbody tr:hover { background: var(--id-hover); }
.id-table tbody tr.selected { background: var(--id-selected); }
.id-table tbody tr.pending { cursor: default; color: var(--id-muted); }
.id-table .warn { color: var(--id-warn); }
.id-table td.flagged, .id-facts dd.flagged, .id-thumb.flagged .id-thumb-value {
  background: repeating-linear-gradient(135deg, transparent 0 5px, color-mix(in srgb, var(--id-warn) 18%, transparent) 5px 7px);
}
.id-table td.skipped { color: var(--id-warn); white-space: normal; }
.id-table .tag { font-size: 0.78em; color: var(--id-warn); margin-left: 4px; }
.id-table .tag.reused { color: var(--id-muted); }
.id-footer { margin-top: 18px; color: var(--id-muted); font-size: 0.85em; }
`;
