/**
 * Tiny DOM helpers. Everything that comes from a report is untrusted: text goes in through text nodes only,
 * attributes through setAttribute, and event-handler attributes are refused outright. No innerHTML anywhere.
 */

export type Child = Node | string | number | null | undefined | false;
export type Attrs = Record<string, string | number | boolean | null | undefined>;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (attrs) setAttrs(node, attrs);
  append(node, ...children);
  return node;
}

export function setAttrs(node: Element, attrs: Attrs): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    // Inline handlers and inline styles are never set from here (CSP forbids them, and they would be an injection path).
    if (/^on/i.test(name) || name.toLowerCase() === 'style') throw new Error(`refusing to set attribute ${name}`);
    node.setAttribute(name, value === true ? '' : String(value));
  }
}

export function append(parent: Node, ...children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** Replace a node's children. */
export function replaceChildren(node: Node, ...children: (Child | Child[])[]): void {
  clear(node);
  append(node, ...children);
}

/** A card's heading row (title, then right-aligned actions) and an optional hint line under it. */
export function cardHead(title: string, hint: string | null, ...actions: HTMLElement[]): HTMLElement[] {
  const row = el('div', { class: 'id-card-head' }, el('h2', null, title), el('span', { class: 'id-spacer' }), actions);
  return hint ? [row, el('p', { class: 'id-hint' }, hint)] : [row];
}

/** Format a number with fixed decimals; "—" for anything that is not a finite number. */
export function fmt(value: unknown, digits = 3): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';
}

/** Compact number: fixed for ordinary magnitudes, exponential for tiny or huge ones. */
export function fmtNum(value: unknown, digits = 3): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return value.toExponential(Math.max(1, digits - 1));
  return value.toFixed(digits);
}

export function isNum(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

/** Trigger a download. In a VS Code webview downloads are blocked, so the host is asked to save instead. */
export function download(filename: string, mime: string, data: string | Blob, encoding: 'text' | 'dataUrl' = 'text'): void {
  const host = vscodeApi();
  if (host) {
    if (typeof data === 'string') {
      host.postMessage({ type: 'save', filename, mime, encoding, data });
    } else {
      void data.text().then((text) => host.postMessage({ type: 'save', filename, mime, encoding: 'text', data: text }));
    }
    return;
  }
  const url = typeof data === 'string' && encoding === 'dataUrl' ? data : URL.createObjectURL(typeof data === 'string' ? new Blob([data], { type: mime }) : data);
  const a = el('a', { href: url, download: filename });
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  if (url.startsWith('blob:')) setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

declare global {
  // Present only inside a VS Code webview.
  var acquireVsCodeApi: (() => VsCodeApi) | undefined;
}

let api: VsCodeApi | null | undefined;
/** The VS Code webview API (acquirable once per page), or null on the standalone HTML page. */
export function vscodeApi(): VsCodeApi | null {
  if (api === undefined) api = typeof globalThis.acquireVsCodeApi === 'function' ? globalThis.acquireVsCodeApi() : null;
  return api;
}
