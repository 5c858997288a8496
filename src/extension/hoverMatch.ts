/**
 * Where a hover may name a layer: a whole string literal ('…', "…" or `…`) under the cursor, as in
 * `name="block2_conv"` or `model.get_layer('conv2d_3')`. Only the literal's entire content counts, so
 * "conv2d_3" never matches inside "my_conv2d_3x" or in ordinary identifiers. Pure functions, no vscode.
 */

export interface Literal {
  /** Offsets in the line of the opening and just after the closing quote. */
  start: number;
  end: number;
  /** The literal's content (escapes of the quote and backslash undone). */
  text: string;
}

/** Longest layer name we look up (a longer literal is some other string). */
export const MAX_LAYER_NAME = 200;

export type Syntax = 'python' | 'js';

/** The string literal on `line` that contains offset `ch` (quotes included), if any. Comments end the search. */
export function literalAt(line: string, ch: number, syntax: Syntax = 'python'): Literal | undefined {
  let i = 0;
  while (i < line.length) {
    const q = line[i];
    if (syntax === 'python' ? q === '#' : q === '/' && line[i + 1] === '/') return undefined;
    if (q !== '"' && q !== "'" && q !== '`') {
      i++;
      continue;
    }
    let j = i + 1;
    let text = '';
    let closed = false;
    while (j < line.length) {
      const c = line[j];
      if (c === '\\' && j + 1 < line.length) {
        text += line[j + 1];
        j += 2;
        continue;
      }
      if (c === q) {
        closed = true;
        break;
      }
      text += c;
      j++;
    }
    if (!closed) return undefined;
    const end = j + 1;
    if (ch >= i && ch < end) return { start: i, end, text };
    i = end;
  }
  return undefined;
}

/** The layer name a hover at `ch` on `line` refers to, if `isLayer` knows it. */
export function layerNameAt(line: string, ch: number, isLayer: (name: string) => boolean, syntax: Syntax = 'python'): Literal | undefined {
  const lit = literalAt(line, ch, syntax);
  if (!lit || lit.text.length === 0 || lit.text.length > MAX_LAYER_NAME) return undefined;
  return isLayer(lit.text) ? lit : undefined;
}

/**
 * Which of `models` (absolute model paths) a document mentions: a string literal in it that is the model's path or
 * ends with it on a path boundary — for a model.json, its folder ("models/fashion-cnn") or "<folder>/model.json";
 * for a single-file model (.h5, .keras, .onnx, saved_model.pb's folder), its file name ("mnist.h5") — so
 * `load_model("ckpt/mnist.h5")` or `tf.loadLayersModel('file://web/fashion-cnn/model.json')` both match.
 * Returns the mentioned models' paths, in `models` order. Pure; backslashes count as slashes.
 */
export function modelsMentioned(text: string, models: string[]): string[] {
  const literals = new Set<string>();
  for (const m of text.matchAll(/(["'`])((?:\\.|(?!\1)[^\\\r\n])*)\1/g)) {
    const lit = m[2].replace(/\\\\/g, '\\').replace(/\\/g, '/').replace(/\/+$/, '');
    if (lit && lit.length <= 1000) literals.add(lit);
  }
  if (literals.size === 0) return [];
  const endsWith = (lit: string, tail: string): boolean => lit === tail || lit.endsWith(`/${tail}`) || lit.endsWith(`:${tail}`);
  return models.filter((modelPath) => {
    const parts = modelPath.replace(/\\/g, '/').split('/').filter(Boolean);
    const file = parts[parts.length - 1] ?? '';
    const folder = parts[parts.length - 2];
    const tails: string[] = [];
    if (/^(model\.json|saved_model\.pb)$/i.test(file) && folder) tails.push(`${folder}/${file}`, folder);
    else if (file) tails.push(file);
    for (const lit of literals) if (tails.some((t) => endsWith(lit, t))) return true;
    return false;
  });
}
