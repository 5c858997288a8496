/**
 * Untrusted text (layer names, file paths, worker error messages) on its way into VS Code UI that parses a little
 * markup: notifications turn [text](command:...) into links and several places render $(icon) syntax. Such text
 * goes through plainMessage; Markdown (hovers) goes through escapeMarkdown.
 */

/** One line, no link or icon syntax, at most `max` characters. */
export function plainMessage(s: string, max = 500): string {
  const one = String(s)
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/\]\s*\(/g, '] (')
    .replace(/\$\(/g, '$\u200b(');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Text shown literally inside Markdown: every Markdown token backslash-escaped, HTML special characters as entities. */
export function escapeMarkdown(s: string): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/[\\`*_{}[\]()#+\-.!|~:]/g, '\\$&')
    .replace(/\$/g, '\\$')
    .replace(/[\r\n]+/g, ' ');
}

/** Arguments of a command: link, encoded so that no character can end the Markdown link early. */
export function commandUri(command: string, args: unknown[]): string {
  const json = encodeURIComponent(JSON.stringify(args)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `command:${command}?${json}`;
}
