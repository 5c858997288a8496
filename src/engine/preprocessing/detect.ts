/**
 * What a model file says about its preprocessing, with provenance (the profile's `source`):
 *  - Keras / tfjs layers models: a Rescaling layer before the first layer with weights. The model then takes the
 *    pixels that layer expects: 0-255 when it scales by ~1/255 or ~1/127.5 (to [0,1] or [-1,1]), [0,1] when it
 *    scales by ~1.
 *  - ONNX: metadata_props whose keys name a mean/std, a range or the channel order; else a torchvision-style graph
 *    (3-channel NCHW input, a conv stem 7x7/2 with 64 filters, 3x3/2 with 16-64, or AlexNet's 11x11/4) suggests
 *    the ImageNet mean/std preset with a center crop, as torchvision's transforms do.
 *  - tfjs graph models: an integer input in the signature (the model takes 0-255), or a Mul/RealDiv by a scalar
 *    right after the input (keras.applications' baked-in scaling), read like a Rescaling layer.
 * The loaders call these and put the result on LoadedModel.preprocessingHint; detectProfile falls back to [0,1]
 * with source 'default'. No vscode.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { PreprocessingProfile } from '../report';
import type { LoadedModel } from '../loaders/types';
import { customProfile, defaultProfile, presetProfile } from './presets';

const fmt = (v: number) => Number(v.toPrecision(4)).toString();

/** The pixels a model takes when its first op computes u * scale + offset; null when the scale says nothing. */
export function rangeFromScale(scale: number, offset: number, what: string): PreprocessingProfile | null {
  const a = Math.abs(scale);
  if (!(a > 0) || !Number.isFinite(a)) return null;
  const how = `${what} (×${fmt(scale)}${offset ? ` ${offset > 0 ? '+' : '−'} ${fmt(Math.abs(offset))}` : ''})`;
  if (a * 255 >= 0.5 && a * 255 <= 4) return presetProfile('[0,255]', `detected: ${how}: the model takes 0–255 pixels`);
  if (a >= 0.5 && a <= 4) return presetProfile('[0,1]', `detected: ${how}: the model takes [0,1] pixels`);
  return null;
}

/** Layer classes that come before a model's own preprocessing without changing what it expects. */
const PASS_THROUGH = new Set(['InputLayer', 'Resizing', 'CenterCrop', 'RandomWidth', 'RandomHeight', 'RandomFlip', 'RandomRotation', 'RandomZoom', 'RandomContrast', 'RandomTranslation']);

/** A Rescaling layer before the first layer with weights (looking into a nested model at the start). */
export function detectFromLayersModel(model: tfl.LayersModel): PreprocessingProfile | null {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (PASS_THROUGH.has(cls)) continue;
    if (cls === 'Rescaling') {
      const c = layer.getConfig() as { scale?: number; offset?: number };
      return rangeFromScale(Number(c.scale), Number(c.offset ?? 0), `Rescaling layer "${layer.name}"`);
    }
    if (cls === 'Sequential' || cls === 'Functional' || cls === 'Model') {
      const inner = detectFromLayersModel(layer as unknown as tfl.LayersModel);
      if (inner) return inner;
    }
    if (cls === 'Normalization') {
      const c = layer.getConfig() as { mean?: number | number[]; variance?: number | number[] };
      const mean = ([] as number[]).concat(c.mean ?? []);
      const variance = ([] as number[]).concat(c.variance ?? []);
      if (mean.length > 0 && variance.length === mean.length) {
        const big = Math.max(...mean.map(Math.abs)) > 1.5;
        const k = big ? 255 : 1;
        return customProfile(
          { normalize: { mean: mean.map((m) => m / k), std: variance.map((v) => Math.sqrt(v) / k) } },
          `detected: Normalization layer "${layer.name}" (mean ${mean.map(fmt).join(',')} on ${big ? '0–255' : '[0,1]'} pixels)`,
        );
      }
      return null;
    }
    // The first layer that computes something else: the model's own preprocessing, if any, is behind us.
    return null;
  }
  return null;
}

export interface OnnxStructure {
  /** metadata_props of the ModelProto. */
  metadata: { key: string; value: string }[];
  inputName: string;
  /** Input dims including the batch dimension (null where symbolic). */
  inputDims: (number | null)[];
  layout: 'nchw' | 'nhwc' | 'flat';
  /** The first Conv that reads the input: weight shape [out, in, kh, kw] and strides. */
  stem: { weight: number[]; strides: number[] } | null;
}

const numbers = (text: string) => (text.match(/-?\d*\.?\d+(?:e[-+]?\d+)?/gi) ?? []).map(Number).filter(Number.isFinite);

/** Reads ONNX metadata_props: keys naming mean, std, a range and the channel order. */
function fromOnnxMetadata(meta: { key: string; value: string }[]): PreprocessingProfile | null {
  const find = (re: RegExp) => meta.find((m) => re.test(m.key));
  const meanE = find(/mean/i);
  const stdE = find(/(^|[^a-z])std|stdev|std_?dev|scale_?std/i);
  const rangeE = find(/range/i);
  const orderE = find(/channel_?order|color_?(format|space|order)|pixel_?format|bgr|rgb/i);
  const bgr = !!orderE && /bgr/i.test(`${orderE.key}=${orderE.value}`) && !/^rgb$/i.test(orderE.value.trim());
  const keys = [meanE, stdE, rangeE, orderE].filter(Boolean).map((e) => e!.key);
  if (keys.length === 0) return null;
  const source = `detected: ONNX metadata ${keys.map((k) => `"${k}"`).join(', ')}`;
  const channelOrder = bgr ? 'bgr' : 'rgb';
  if (meanE) {
    let mean = numbers(meanE.value);
    let std = stdE ? numbers(stdE.value) : [];
    if (mean.length === 0) return null;
    const on255 = Math.max(...mean.map(Math.abs)) > 1.5;
    if (std.length === 0) std = [on255 ? 1 : 1];
    if (on255) {
      mean = mean.map((m) => m / 255);
      std = std.map((s) => s / 255);
    }
    if (std.some((s) => !(s > 0))) return null;
    return customProfile({ normalize: { mean, std }, channelOrder }, source);
  }
  if (rangeE) {
    const r = numbers(rangeE.value);
    if (r.length === 2 && r[0] < r[1]) return customProfile({ inputRange: [r[0], r[1]], channelOrder }, source);
  }
  if (bgr) return customProfile({ inputRange: [0, 1], channelOrder }, source);
  return null;
}

/** torchvision-style stems: [filters, kernel, stride]. */
const TORCHVISION_STEMS: [number[], number, number, string][] = [
  [[64], 7, 2, 'ResNet/GoogLeNet-style 7×7/2 stem'],
  [[16, 24, 32, 40, 48, 64], 3, 2, 'MobileNet/EfficientNet-style 3×3/2 stem'],
  [[64], 11, 4, 'AlexNet-style 11×11/4 stem'],
];

export function detectFromOnnx(s: OnnxStructure): PreprocessingProfile | null {
  const meta = fromOnnxMetadata(s.metadata);
  if (meta) return meta;
  if (s.layout !== 'nchw' || s.inputDims[1] !== 3 || !s.stem) return null;
  const [out, inC, kh, kw] = s.stem.weight;
  const stride = s.stem.strides[0] ?? 1;
  if (inC !== 3 || kh !== kw) return null;
  const match = TORCHVISION_STEMS.find(([filters, k, st]) => filters.includes(out) && k === kh && st === stride);
  if (!match) return null;
  const [h, w] = [s.inputDims[2], s.inputDims[3]];
  const size = h && w ? `${h}×${w} ` : '';
  return presetProfile('imagenet', `detected: torchvision-style ONNX graph (input "${s.inputName}" 3×${size}NCHW, ${match[3]} with ${out} filters): ImageNet mean/std`, {
    resize: 'center-crop',
  });
}

export interface GraphSignature {
  inputName: string;
  dtype: string;
  /** The ops that read the input directly, with a scalar constant operand when they have one. */
  consumers: { name: string; op: string; scalar: number | null }[];
}

export function detectFromGraphSignature(s: GraphSignature): PreprocessingProfile | null {
  if (/int|uint8/.test(s.dtype)) {
    return presetProfile('[0,255]', `detected: graph model signature: input "${s.inputName}" is ${s.dtype}, so the model takes 0–255 pixels`);
  }
  for (const c of s.consumers) {
    if (c.scalar === null) continue;
    if (c.op === 'Mul') return rangeFromScale(c.scalar, 0, `graph model: "${c.name}" multiplies the input`);
    if (c.op === 'RealDiv' || c.op === 'Div') return rangeFromScale(1 / c.scalar, 0, `graph model: "${c.name}" divides the input`);
  }
  return null;
}

/** The model's detected profile, else [0,1] with source 'default'. */
export function detectProfile(model: Pick<LoadedModel, 'preprocessingHint'>): PreprocessingProfile {
  return model.preprocessingHint ?? defaultProfile();
}
