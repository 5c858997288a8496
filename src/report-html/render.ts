/**
 * The CLI's --html output: one self-contained HTML file (no external files, no network) holding the report UI
 * bundle (dist/webview.js), its stylesheet and the report as JSON. A strict CSP allows only the nonce'd inline
 * script and style. The same document builder serves the VS Code panel, which passes its own CSP and script tag.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Report } from '../engine/report';
import { REPORT_CSS } from '../../webview/report/styles';

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

/** Escape text for HTML element content or a double-quoted attribute (single quotes are harmless in both). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

/**
 * JSON that is safe inside <script type="application/json">: every '<' becomes \u003c (so '</script>' or '<!--'
 * in a layer name cannot end or alter the element), and U+2028/9 are escaped for good measure. JSON.parse of the
 * element's text gives back the original value.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** Make JS safe to inline in a <script> element (the sequences that would close or confuse the element). */
export function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

export interface ReportDocumentOptions {
  title: string;
  nonce: string;
  /** Content-Security-Policy for the meta tag. */
  csp: string;
  /** The UI bundle, inline (standalone file) or by URL (webview resource). */
  script: { inline: string } | { src: string };
  /** Report to embed; omit when it will arrive by postMessage. */
  report?: Report | null;
}

/** The HTML document around the report UI. */
export function reportHtmlDocument(o: ReportDocumentOptions): string {
  const nonce = escapeHtml(o.nonce);
  const data = o.report ? `<script type="application/json" id="infodiscard-report">${jsonForScript(o.report)}</script>\n` : '';
  const script = 'inline' in o.script
    ? `<script nonce="${nonce}">${inlineScript(o.script.inline)}</script>`
    : `<script nonce="${nonce}" src="${escapeHtml(o.script.src)}"></script>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(o.csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(o.title)}</title>
<style nonce="${nonce}">${REPORT_CSS}</style>
</head>
<body>
${data}${script}
</body>
</html>
`;
}

function modelName(report: Report): string {
  const parts = String(report.model?.path ?? '').split(/[\\/]/).filter(Boolean);
  const last = parts[parts.length - 1] ?? '';
  return parts.length > 1 && /^model\.json$/i.test(last) ? parts[parts.length - 2] : last || 'report';
}

/** The standalone report page: everything inline, a fresh nonce per file, nothing loaded from anywhere. */
export function renderReportHtml(report: Report, bundleJs: string): string {
  const nonce = makeNonce();
  return reportHtmlDocument({
    title: `infodiscard: ${modelName(report)}`,
    nonce,
    csp: `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src data: blob:`,
    script: { inline: bundleJs },
    report,
  });
}

/**
 * The browser bundle built by scripts/build.mjs. Looked up beside the running bundle (dist/cli.js -> dist/webview.js),
 * then in the repository's dist/ (when running from source, e.g. under tsx).
 */
export function loadWebviewBundle(dir: string = __dirname): string {
  const candidates = [path.join(dir, 'webview.js'), path.resolve(dir, '..', '..', 'dist', 'webview.js')];
  for (const file of candidates) {
    if (existsSync(file)) return readFileSync(file, 'utf8');
  }
  throw new Error(`report UI bundle not found (looked for ${candidates.join(', ')}): run npm run build`);
}
