/**
 * Short display labels for layer names. PyTorch's ONNX export names a tensor by the module path and the op that made
 * it ("/layer1/layer1.1/relu_1/Relu_output_0"): too long for the layer picker's rows and the chart's axis, and its
 * start (the part cut off there) is the part every layer shares. The label keeps the distinctive end:
 *
 * - the leading "/" and the trailing "_output_0" go;
 * - a module segment repeated as the prefix of the next ("layer1/layer1.1", "block/block.0") goes;
 * - an op that only repeats its module's name ("relu_1/Relu", "conv1/Conv") goes;
 * - what is still longer than `max` keeps as many of its last segments as fit after "…/" (and its first segment
 *   before that when it fits too); the last segment alone, cut in its middle, when even that does not fit.
 *
 * For display only: reports, settings and messages to the worker keep the full names. Names without this shape
 * (Keras "block1_conv1") come back unchanged when they fit.
 */

/** The default longest label, in characters (the chart's axis and the picker rows fit about this much). */
export const LAYER_LABEL_MAX = 32;

/** The readable form of an exported name, before any shortening for length. */
export function tidyLayerName(name: string): string {
  let s = name.replace(/_output_\d+$/, '');
  if (s.startsWith('/') && s.length > 1) s = s.slice(1);
  const parts = s.split('/');
  if (parts.length < 2 || parts.some((p) => p === '')) return s;
  // "layer1/layer1.1" → "layer1.1"; "block/block.0/block.0.2" → "block.0.2".
  const kept = parts.filter((p, i) => i === parts.length - 1 || !parts[i + 1].startsWith(`${p}.`));
  // "relu_1/Relu" → "relu_1", "conv1/Conv" → "conv1": the op says again what the module's name says.
  if (kept.length >= 2) {
    const op = kept[kept.length - 1].replace(/_\d+$/, '').toLowerCase();
    const mod = kept[kept.length - 2].replace(/_?\d+$/, '').toLowerCase();
    if (op === mod && !/_\d+$/.test(kept[kept.length - 1])) kept.pop();
  }
  return kept.join('/');
}

/** "…" in the middle of `s`, keeping its start and (more of) its end, `max` characters in all. */
function middleEllipsis(s: string, max: number): string {
  if (s.length <= max) return s;
  const keep = Math.max(1, max - 1);
  const head = Math.floor(keep / 3);
  return `${s.slice(0, head)}…${s.slice(s.length - (keep - head))}`;
}

/** A layer's label of at most `max` characters (see the file's comment). */
export function layerLabel(name: string, max = LAYER_LABEL_MAX): string {
  const tidy = tidyLayerName(name);
  if (tidy.length <= max) return tidy;
  const parts = tidy.split('/');
  if (parts.length < 2) return middleEllipsis(tidy, max);
  const last = parts[parts.length - 1];
  // The last segments that fit after "…/" (the distinctive end: the block's index, the module, the op)...
  let end = last;
  let from = parts.length - 1;
  for (let i = parts.length - 2; i >= 1; i--) {
    if (`…/${parts[i]}/${end}`.length > max) break;
    end = `${parts[i]}/${end}`;
    from = i;
  }
  if (`…/${end}`.length > max) return middleEllipsis(last, max);
  // ...and the first segment in front when it fits too.
  return from > 1 && `${parts[0]}/…/${end}`.length <= max ? `${parts[0]}/…/${end}` : `…/${end}`;
}

/**
 * Labels for a list of layers shown together (an axis, a picker): each `layerLabel`, except that names whose labels
 * would be the same get their tidy form, or their full name, so that no two layers read alike.
 */
export function shortLayerLabels(names: readonly string[], max = LAYER_LABEL_MAX): string[] {
  const labels = names.map((n) => layerLabel(n, max));
  const clash = (list: string[], i: number) => list.some((l, j) => j !== i && l === list[i] && names[j] !== names[i]);
  const tidy = labels.map((l, i) => (clash(labels, i) ? tidyLayerName(names[i]) : l));
  return tidy.map((l, i) => (clash(tidy, i) ? names[i] : l));
}
