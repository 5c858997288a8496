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

export function recommendLayers(layers: readonly ProbeLayer[], layoutOf: (name: string) => FeatureLayout = () => 'nhwc'): RecommendedLayers {
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

  const chosen = [...reasons.keys()].sort((a, b) => a - b);
  const names = chosen.map((i) => layers[i].name);
  const blocks: RecommendedLayers['blocks'] = [];
  let current: string[] = [];
  for (const [i, l] of layers.entries()) {
    current.push(l.name);
    if (reasons.has(i)) {
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
