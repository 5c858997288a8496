/**
 * The recommended layer set: the outputs of the network's blocks, one probe per block, so that a 161-layer
 * MobileNetV2 is analysed at its ~20 block outputs rather than at every padding and BatchNorm. Pure (no tfjs) over
 * the loaders' layer list (name, kind, output shape, inputs), the same rule for every format. The rule, as
 * documented in docs/layers.md:
 *
 * 1. Units. A layer that cannot change information content on its own joins the unit of the layer it reads when
 *    that layer feeds nothing else: "passive" layers (padding, dropout, flatten/reshape, identity, cast,
 *    transpose) and "followers" (BatchNorm, activations, bias adds, an elementwise op with one image-dependent
 *    input such as a graph's Mul/Add by a constant). A unit is represented by its last non-passive layer
 *    (conv -> BN -> ReLU is represented by the ReLU); a unit of passive layers only is never recommended.
 * 2. Recommended units:
 *    - a residual merge or concat (Add, AddV2, AddN, Concat...: two or more image-dependent inputs), with the
 *      activation after it;
 *    - the last unit of each resolution stage: spatial units in model order, a stage ending where the spatial
 *      area changes by a factor of 2 or more from the stage's first unit (a valid 3x3 conv does not end one);
 *    - every non-passive unit after the last spatial one: the global-pool feature, dense layers of the head;
 *    - the final output(s): units that feed nothing.
 * Only spatial maps larger than 1x1 count as spatial (an ONNX global pool gives C x 1 x 1).
 *
 * Transformers (ViT, Swin, a Keras MultiHeadAttention model): a LayerNorm written out by PyTorch's exporter
 * (ReduceMean -> Sub -> Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul -> Add) is first read as one
 * LayerNormalization. A pre-norm residual chain (residual adds whose skip input also feeds a LayerNorm, or the mean over
 * the last axis that starts one, as in a TensorFlow graph: x + attn(ln(x)),
 * then x + mlp(ln(x))) pairs its adds into blocks, and inside a chain only each block's output (the second add of
 * a pair) is recommended, not every Add/MatMul/LayerNorm of the block; the embedding that enters the first chain
 * (and, in a hybrid, the CNN stages before it, less the patch-embedding map); between chains (Swin's patch merging)
 * nothing, as the stage's last block output stands for it; after the last chain the usual head rule (final norm,
 * class token or pooled feature, head output).
 */
import type { FeatureLayout, ProbeLayer } from './loaders/types';

const PASSIVE = new Set([
  'zeropadding1d', 'zeropadding2d', 'zeropadding3d', 'pad', 'padv2', 'mirrorpad',
  'dropout', 'spatialdropout1d', 'spatialdropout2d', 'spatialdropout3d', 'gaussiandropout', 'alphadropout', 'gaussiannoise',
  'flatten', 'reshape', 'squeeze', 'unsqueeze', 'expanddims', 'identity', 'identityn', 'snapshot', 'cast',
  'transpose', 'permute', 'inputlayer', 'activityregularization', 'masking',
]);

const FOLLOWER = new Set([
  'batchnormalization', 'fusedbatchnorm', 'fusedbatchnormv2', 'fusedbatchnormv3', 'layernormalization', 'instancenormalization',
  'relu', 'relu6', 'leakyrelu', 'prelu', 'elu', 'selu', 'sigmoid', 'tanh', 'softmax', 'logsoftmax', 'activation', 'softplus',
  'softsign', 'hardsigmoid', 'hardswish', 'swish', 'gelu', 'thresholdedrelu', 'clip', 'clipbyvalue', 'erf', 'exp', 'neg',
  'biasadd', 'add', 'addv2', 'sub', 'mul', 'div', 'realdiv', 'maximum', 'minimum', 'rescaling', 'normalization',
]);

const MERGE = new Set(['add', 'addv2', 'addn', 'sum', 'concatenate', 'concat', 'concatv2', 'average']);

/** Why a layer is in the recommended set. */
export type RecommendReason = 'merge' | 'stage end' | 'head' | 'output';

export interface RecommendedLayers {
  /** Recommended layer names, in model order. */
  names: string[];
  /** Why each recommended layer is there, one line ("end of the 14x14 stage"). */
  reasons: Map<string, string>;
  /** Every layer grouped by the block it belongs to: a block ends at a recommended layer (in model order). */
  blocks: { name: string; layers: string[] }[];
}

function kindOf(kind: string): string {
  return kind.replace(/^_+/, '').toLowerCase();
}

/** Spatial area of a rank-3 feature (H*W), or null for vectors, sequences and 1x1 maps. */
function spatial(shape: readonly (number | null)[], layout: FeatureLayout): { h: number; w: number } | null {
  if (shape.length !== 3) return null;
  const [h, w] = layout === 'nchw' ? [shape[1], shape[2]] : [shape[0], shape[1]];
  if (h === null || w === null || h * w <= 1) return null;
  return { h, w };
}

export function recommendLayers(all: readonly ProbeLayer[], layoutOf: (name: string) => FeatureLayout = () => 'nhwc'): RecommendedLayers {
  const layers = collapseLayerNorms(all);
  const index = new Map(layers.map((l, i) => [l.name, i]));
  // Producers among the listed layers; without connectivity the list is taken as a chain.
  const inputs = layers.map((l, i) => (l.inputs ? l.inputs.filter((n) => index.has(n)) : i > 0 ? [layers[i - 1].name] : []));
  const consumers = layers.map(() => 0);
  for (const ins of inputs) for (const n of ins) consumers[index.get(n)!]++;

  // 1. Units: unitOf[i] is the index of the unit's first layer.
  const unitOf: number[] = [];
  const members = new Map<number, number[]>();
  layers.forEach((l, i) => {
    const k = kindOf(l.kind);
    const joins = (PASSIVE.has(k) || FOLLOWER.has(k)) && inputs[i].length === 1;
    const producer = joins ? index.get(inputs[i][0])! : -1;
    const unit = producer >= 0 && consumers[producer] === 1 ? unitOf[producer] : i;
    unitOf.push(unit);
    members.set(unit, [...(members.get(unit) ?? []), i]);
  });
  const units = [...members.entries()].map(([head, idx]) => {
    const active = idx.filter((i) => !PASSIVE.has(kindOf(layers[i].kind)));
    const rep = active.length > 0 ? active[active.length - 1] : -1;
    return { head, idx, rep };
  });

  const reasons = new Map<number, string>();
  const add = (i: number, reason: string) => {
    if (i >= 0 && !reasons.has(i)) reasons.set(i, reason);
  };
  const spatialOf = (i: number) => spatial(layers[i].outputShape, layoutOf(layers[i].name));

  // Residual merges and concats.
  for (const u of units) {
    const k = kindOf(layers[u.head].kind);
    if (MERGE.has(k) && inputs[u.head].length >= 2) add(u.rep, k.startsWith('concat') ? 'concatenation' : 'residual merge');
  }
  // Resolution stages.
  let stageArea = 0;
  let stageLast = -1;
  let lastSpatial = -1;
  for (const u of units) {
    if (u.rep < 0) continue;
    const s = spatialOf(u.rep);
    if (!s) continue;
    const area = s.h * s.w;
    if (stageLast >= 0 && Math.max(area / stageArea, stageArea / area) >= 2) {
      const prev = spatialOf(stageLast)!;
      add(stageLast, `end of the ${prev.h}x${prev.w} stage`);
      stageArea = area;
    }
    if (stageLast < 0) stageArea = area;
    stageLast = u.rep;
    lastSpatial = Math.max(lastSpatial, ...u.idx);
  }
  // Final outputs: units with a layer that feeds nothing.
  for (const u of units) if (u.idx.some((i) => consumers[i] === 0)) add(u.rep, 'output');
  // The head: the global-pool feature and dense layers after the last spatial map.
  for (const u of units) {
    if (u.rep < 0 || u.head <= lastSpatial) continue;
    const k = kindOf(layers[u.head].kind);
    add(u.rep, /global|^mean$|^reduce(mean|max)$|pool/.test(k) ? 'global-pool feature' : 'head layer');
  }
  // The last spatial stage ends at the last spatial unit (unless an output already closed it).
  if (stageLast >= 0) {
    const s = spatialOf(stageLast)!;
    add(stageLast, `end of the ${s.h}x${s.w} stage`);
  }

  transformerBlocks(layers, inputs, reasons, spatialOf);

  const chosen = [...reasons.keys()].sort((a, b) => a - b);
  const names = chosen.map((i) => layers[i].name);
  const chosenNames = new Set(names);
  const blocks: RecommendedLayers['blocks'] = [];
  let current: string[] = [];
  for (const l of all) {
    current.push(l.name);
    if (chosenNames.has(l.name)) {
      blocks.push({ name: l.name, layers: current });
      current = [];
    }
  }
  if (current.length > 0) blocks.push({ name: blocks.length > 0 ? `after ${blocks[blocks.length - 1].name}` : 'layers', layers: current });
  return { names, reasons: new Map(chosen.map((i) => [layers[i].name, reasons.get(i)!])), blocks };
}

/** The recommended set of a loaded model (its feature layout decides where the spatial axes are). */
export function recommendedFor(model: { layers: readonly ProbeLayer[]; featureLayout?(name: string): FeatureLayout }): RecommendedLayers {
  return recommendLayers(model.layers, (name) => model.featureLayout?.(name) ?? 'nhwc');
}

const NORM = 'layernormalization';

/**
 * The list with each LayerNorm that PyTorch's exporter wrote out as elementwise ops (opset < 17) replaced by one
 * LayerNormalization layer, named after its last op (the affine Add, else the Mul, else the Div), reading the normalised
 * input. Its internal layers are dropped from the list the rule sees; they still belong to its block.
 */
function collapseLayerNorms(layers: readonly ProbeLayer[]): readonly ProbeLayer[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const consumers = new Map<string, string[]>();
  for (const l of layers) for (const n of l.inputs ?? []) consumers.set(n, [...(consumers.get(n) ?? []), l.name]);
  const k = (l: ProbeLayer | undefined) => (l ? kindOf(l.kind) : '');
  const only = (l: ProbeLayer | undefined) => (l?.inputs?.length === 1 ? byName.get(l.inputs[0]) : undefined);
  const dropped = new Set<string>();
  const replaced = new Map<string, ProbeLayer>();
  for (const div of layers) {
    if (k(div) !== 'div' || div.inputs?.length !== 2) continue;
    const [sub, sqrt] = div.inputs.map((n) => byName.get(n));
    if (k(sub) !== 'sub' || k(sqrt) !== 'sqrt' || sub!.inputs?.length !== 2) continue;
    const [x, mean] = sub!.inputs.map((n) => byName.get(n));
    if (!x || !/^reduce_?mean$|^mean$/.test(k(mean)) || mean!.inputs?.[0] !== x.name) continue;
    // sqrt <- [Add eps] <- ReduceMean <- Pow/Mul <- sub
    const chain: ProbeLayer[] = [sqrt!];
    let cur = only(sqrt);
    if (k(cur) === 'add') chain.push(cur!), (cur = only(cur));
    if (!/^reduce_?mean$|^mean$/.test(k(cur))) continue;
    chain.push(cur!);
    cur = only(cur);
    if (!(k(cur) === 'pow' || k(cur) === 'square') || cur!.inputs?.[0] !== sub!.name) continue;
    chain.push(cur!);
    // The affine part: Mul by gamma, Add beta, each the only reader of the one before.
    let last = div;
    for (const want of ['mul', 'add']) {
      const next = consumers.get(last.name) ?? [];
      const c = next.length === 1 ? byName.get(next[0]) : undefined;
      if (k(c) === want && c!.inputs?.length === 1) last = c!;
    }
    const members = [mean!, sub!, ...chain, div];
    for (let l: ProbeLayer | undefined = div; l && l !== last; ) {
      const c: ProbeLayer = byName.get((consumers.get(l.name) ?? [])[0])!;
      members.push(c);
      l = c;
    }
    for (const m of members) if (m !== last) dropped.add(m.name);
    replaced.set(last.name, { ...last, kind: 'LayerNormalization', inputs: [x.name] });
  }
  if (dropped.size === 0) return layers;
  return layers.filter((l) => !dropped.has(l.name)).map((l) => replaced.get(l.name) ?? l);
}

/**
 * Pre-norm transformer chains (see the file's comment): rewrites `reasons` so that inside each chain only block
 * outputs are recommended. `inputs` are the listed producers of each layer (indices into `layers` via names).
 */
function transformerBlocks(
  layers: readonly ProbeLayer[],
  inputs: string[][],
  reasons: Map<number, string>,
  spatialOf: (i: number) => { h: number; w: number } | null,
): void {
  const index = new Map(layers.map((l, i) => [l.name, i]));
  const readers = layers.map(() => [] as number[]);
  inputs.forEach((ins, i) => ins.forEach((n) => readers[index.get(n)!].push(i)));
  const same = (a: readonly (number | null)[], b: readonly (number | null)[]) => a.length === b.length && a.every((d, j) => d === b[j]);
  // The skip input of a pre-norm residual add: an input of the same shape that a LayerNorm also reads (or the mean
  // over the last axis that starts one written out in ops another way, as a TensorFlow graph does).
  const normStart = (j: number) => {
    const k = kindOf(layers[j].kind);
    const shape = layers[j].outputShape;
    return k === NORM || (/^(reduce_?)?mean$/.test(k) && shape.length > 0 && shape[shape.length - 1] === 1);
  };
  const skipOf = new Map<number, number>();
  layers.forEach((l, i) => {
    const k = kindOf(l.kind);
    if (!(k === 'add' || k === 'addv2') || inputs[i].length !== 2) return;
    const ins = inputs[i].map((n) => index.get(n)!);
    if (!ins.every((j) => same(layers[j].outputShape, l.outputShape))) return;
    const skip = ins.find((j) => readers[j].some((r) => r !== i && normStart(r)));
    if (skip !== undefined) skipOf.set(i, skip);
  });
  if (skipOf.size === 0) return;
  // Chains: each add's skip input is the add before it (the first one's is the embedding).
  const chains: number[][] = [];
  const chainOf = new Map<number, number[]>();
  for (const [i, skip] of [...skipOf.entries()].sort((a, b) => a[0] - b[0])) {
    const prev = chainOf.get(skip);
    const chain = prev ?? [];
    if (!prev) chains.push(chain);
    chain.push(i);
    chainOf.set(i, chain);
  }
  // A lone residual add with a norm beside it is not a transformer (a ConvNeXt-like block has one add per block
  // and its skip feeds a conv): only chains of two or more adds are read as blocks.
  const real = chains.filter((c) => c.length >= 2);
  if (real.length === 0) return;
  const regions = real.map((c) => ({ start: skipOf.get(c[0])!, end: c[c.length - 1], outputs: c.length % 2 === 0 ? c.filter((_, j) => j % 2 === 1) : c }));
  const lastEnd = Math.max(...regions.map((r) => r.end));
  const firstStart = Math.min(...regions.map((r) => r.start));
  // Inside and between the chains: only block outputs. Before the first chain (a hybrid's CNN stages) the CNN rule
  // stands, less what the token layers made of it (everything after the last spatial map read as "head") and the
  // patch-embedding map that the embedding restates (the last stage end before it).
  for (const i of [...reasons.keys()]) if (i > firstStart && i <= lastEnd) reasons.delete(i);
  const earlier = [...reasons.keys()].filter((i) => i < firstStart);
  for (const i of earlier) if (/^(head layer|global-pool feature|output)$/.test(reasons.get(i)!)) reasons.delete(i);
  const lastEarlier = Math.max(-1, ...[...reasons.keys()].filter((i) => i < firstStart));
  const grid = lastEarlier >= 0 ? spatialOf(lastEarlier) : null;
  const tokens = layers[firstStart].outputShape.length === 2 ? layers[firstStart].outputShape[0] : null;
  // The map whose positions are the tokens (ViT's 14x14 patch conv for 197 tokens: one class token more, or none).
  if (grid && tokens !== null && (tokens === grid.h * grid.w || tokens === grid.h * grid.w + 1)) reasons.delete(lastEarlier);
  let block = 0;
  regions.sort((a, b) => a.start - b.start);
  for (const [stage, r] of regions.entries()) {
    for (const i of r.outputs) {
      const end = regions.length > 1 && i === r.outputs[r.outputs.length - 1] ? `, end of stage ${stage + 1}` : '';
      reasons.set(i, `encoder block ${++block} output${end}`);
    }
  }
  reasons.set(firstStart, 'embedding (input of the first block)');
  // After the last block: the usual head rule, with the transformer's names for its layers.
  let normSeen = false;
  for (const i of [...reasons.keys()].filter((j) => j > lastEnd).sort((a, b) => a - b)) {
    const k = kindOf(layers[i].kind);
    if (k === NORM && !normSeen) reasons.set(i, 'final norm');
    else if (k === 'gather' && layers[i].outputShape.length === 1) reasons.set(i, 'class token feature');
    normSeen ||= k === NORM;
  }
}
