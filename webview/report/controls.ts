/**
 * Buttons and dropdowns. Inside a VS Code webview they are @vscode-elements/elements components (VS Code's own
 * look, theme and keyboard behaviour); on the standalone HTML page they are native <button> and <select>, which
 * need no script to look right in any browser. Callers do not care which: same arguments, same callbacks.
 * Labels are untrusted text and only ever set as text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import { el, vscodeApi } from './dom';

export function inVsCode(): boolean {
  return vscodeApi() !== null;
}

export function button(label: string, title: string, onClick: () => void): HTMLElement {
  if (inVsCode()) {
    const b = document.createElement('vscode-button');
    b.secondary = true;
    b.title = title;
    b.textContent = label;
    b.addEventListener('click', onClick);
    return b;
  }
  const b = el('button', { class: 'id-button', type: 'button', title }, label);
  b.addEventListener('click', onClick);
  return b;
}

export interface DropdownOption {
  value: string;
  label: string;
  selected?: boolean;
  /** Tooltip (the full text of a shortened label). */
  title?: string;
}

export function dropdown(ariaLabel: string, options: DropdownOption[], onChange: (value: string) => void): HTMLElement {
  if (inVsCode()) {
    const select = document.createElement('vscode-single-select');
    select.setAttribute('aria-label', ariaLabel);
    select.classList.add('id-select');
    for (const o of options) {
      const opt = document.createElement('vscode-option');
      opt.value = o.value;
      opt.textContent = o.label;
      if (o.title) opt.title = o.title;
      if (o.selected) {
        opt.selected = true;
        if (o.title) select.title = o.title;
      }
      select.append(opt);
    }
    select.addEventListener('change', () => onChange(select.value));
    return select;
  }
  const select = el('select', { 'aria-label': ariaLabel });
  for (const o of options) {
    const opt = el('option', { value: o.value, ...(o.title ? { title: o.title } : {}) }, o.label);
    opt.selected = !!o.selected;
    if (o.selected && o.title) select.title = o.title;
    select.append(opt);
  }
  select.addEventListener('change', () => onChange(select.value));
  return select;
}
