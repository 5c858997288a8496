/**
 * The degenerate-output check, run before the long analysis (for classifiers: a softmax output, or a vector of
 * scores without one, read as logits; any other output is judged on NaN/Inf only): the model's output on the chosen images at the chosen
 * preprocessing and at the obvious alternatives ([0,1], 0-255, [-1,1], ImageNet mean/std). A profile's output is
 * degenerate when it is
 *  - not finite (NaN/Inf), or its logits are huge (|z| > 1000: the input is far outside the trained range);
 *  - the same for every image (each class probability varies by less than 0.02 across the images);
 *  - near-uniform (every image's prediction entropy is above 95 % of log K);
 *  - the same top class for every image at low confidence (mean top probability below 0.5).
 * When the chosen profile is degenerate and an alternative is not (and predicts more than one class across the
 * images), the alternative with the most confident predictions is recommended, with one line that names it. The top predictions (class index and probability) per
 * image and profile come back too, so a UI can show that the model is being fed correctly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeInputMapping, mappingOptions, toModelUnits } from '../inputMapping';
import { loadImages, collectImagePaths } from '../images';
import { loadModel, type LoadedModel } from '../loaders';
import { UserError } from '../errors';
import type { PreprocessingProfile } from '../report';
import { presetNameOf, presetProfile, profileLabel, profileSettings } from './presets';

export interface TopPrediction {
  index: number;
  /** Probability (softmax of the logits, or the model's own probabilities). */
  score: number;
}

export interface ProfileCheck {
  profile: PreprocessingProfile;
  label: string;
  /** Per image: the top predictions, best first. */
  top: TopPrediction[][];
  degenerate: boolean;
  /** Why it is degenerate, short phrases ("the same output for every image"). */
  problems: string[];
  /** Mean over images of the top probability. */
  meanTopScore: number;
  /** Largest |logit| (or |output|), for the record. */
  maxAbs: number;
}

export interface PreprocessingCheck {
  /** The layer whose output was read; kind: logits (before the final softmax), probabilities, or raw (not a classifier: only NaN/Inf judged). */
  output: { layer: string; kind: 'logits' | 'probabilities' | 'raw'; classes: number };
  images: number;
  /** The model's input channels (ImageNet and Caffe presets need 3). */
  channels: number;
  chosen: ProfileCheck;
  alternatives: ProfileCheck[];
  /** Set when the chosen profile is degenerate and this one is not. */
  recommended: ProfileCheck | null;
  /** One line for people when `recommended` is set (or when every profile is degenerate). */
  message?: string;
  seconds: number;
}

export const CHECK_LIMITS = {
  hugeLogit: 1000,
  sameOutput: 0.02,
  uniformEntropy: 0.95,
  unsureTop: 0.5,
  maxImages: 16,
  minImages: 4,
  pixelBudget: 16 * 64 * 64,
  topK: 3,
};

/** The alternatives worth trying for a model with `channels` channels (ImageNet needs 3). */
export function alternativeProfiles(channels: number): PreprocessingProfile[] {
  const names = channels === 3 ? ['[0,1]', '[0,255]', '[-1,1]', 'imagenet'] : ['[0,1]', '[0,255]', '[-1,1]'];
  return names.map((n) => presetProfile(n, 'check'));
}

const sameMapping = (a: PreprocessingProfile, b: PreprocessingProfile) =>
  JSON.stringify([a.inputRange, a.normalize, a.channelOrder]) === JSON.stringify([b.inputRange, b.normalize, b.channelOrder]) ||
  (a.preset !== 'custom' && a.preset === b.preset);

function softmaxRows(z: Float32Array, n: number, k: number): Float32Array {
  const p = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, z[i * k + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += p[i * k + c] = Math.exp(z[i * k + c] - max);
    for (let c = 0; c < k; c++) p[i * k + c] /= sum;
  }
  return p;
}

/** Whether each row is a probability vector (non-negative, summing to 1): the output of a softmax. */
function looksLikeProbabilities(y: Float32Array, n: number, k: number): boolean {
  if (k < 2) return false;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const v = y[i * k + c];
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/**
 * Judges one profile's outputs (n images x k values). `kind`: 'logits' (scores before the model's final softmax),
 * 'probabilities' (the softmax output itself) or 'raw' (not a classifier: only NaN/Inf count, the other signs mean
 * nothing without a probability to read).
 */
export function judgeOutputs(y: Float32Array, n: number, k: number, kind: 'logits' | 'probabilities' | 'raw', topK = CHECK_LIMITS.topK): Omit<ProfileCheck, 'profile' | 'label'> {
  const problems: string[] = [];
  let maxAbs = 0;
  let finite = true;
  for (const v of y) {
    if (!Number.isFinite(v)) finite = false;
    else maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  if (!finite) {
    return { top: [], degenerate: true, problems: ['NaN or infinite outputs'], meanTopScore: 0, maxAbs: Infinity };
  }
  const classifier = kind !== 'raw' && k >= 2;
  const probs = kind === 'logits' && k >= 2 ? softmaxRows(y, n, k) : y;
  const top: TopPrediction[][] = [];
  let topSum = 0;
  for (let i = 0; i < n; i++) {
    const row = Array.from(probs.subarray(i * k, (i + 1) * k));
    const order = row.map((_, c) => c).sort((a, b) => row[b] - row[a]);
    top.push(order.slice(0, topK).map((c) => ({ index: c, score: row[c] })));
    topSum += row[order[0]];
  }
  const meanTopScore = n > 0 ? topSum / n : 0;
  if (!classifier) return { top, degenerate: false, problems, meanTopScore, maxAbs };

  if (kind === 'logits' && maxAbs > CHECK_LIMITS.hugeLogit) problems.push(`saturated: logits up to ${maxAbs.toPrecision(3)}`);
  if (n >= 2) {
    // The largest change of any class probability across the images.
    let spread = 0;
    for (let c = 0; c < k; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, probs[i * k + c]);
        hi = Math.max(hi, probs[i * k + c]);
      }
      spread = Math.max(spread, hi - lo);
    }
    if (spread < CHECK_LIMITS.sameOutput) problems.push('the same output for every image');
  }
  let uniform = true;
  for (let i = 0; i < n && uniform; i++) {
    let h = 0;
    for (let c = 0; c < k; c++) {
      const p = probs[i * k + c];
      if (p > 0) h -= p * Math.log(p);
    }
    if (h < CHECK_LIMITS.uniformEntropy * Math.log(k)) uniform = false;
  }
  if (uniform) problems.push('near-uniform probabilities');
  if (n >= 2 && top.every((t) => t[0].index === top[0][0].index) && meanTopScore < CHECK_LIMITS.unsureTop) {
    problems.push(`class ${top[0][0].index} for every image, unsure (mean top score ${meanTopScore.toFixed(2)})`);
  }
  return { top, degenerate: problems.length > 0, problems, meanTopScore, maxAbs };
}

/**
 * How to read the model's output: the last layer's output, and the scores before a final softmax when the format can
 * give them (runWithFeature with preSoftmax, entered at the first layer with that layer's own output).
 */
function modelOutput(model: LoadedModel): { layer: string; rank: number; plain: (x: tf.Tensor4D) => tf.Tensor; logits: ((x: tf.Tensor4D) => tf.Tensor) | null } {
  const last = model.layers[model.layers.length - 1];
  if (!last) throw new UserError('the model has no layers to read an output from', model.path);
  const first = model.layers[0];
  let logits: ((x: tf.Tensor4D) => tf.Tensor) | null = null;
  if (model.runWithFeature) {
    try {
      const withFeature = model.runWithFeature(first.name, { preSoftmax: true });
      const probe = model.probe(first.name);
      logits = (x) => withFeature(x, probe(x));
    } catch {
      // the format cannot enter the graph there: the output as it is
    }
  }
  return { layer: last.name, rank: last.outputShape.length, plain: model.probe(last.name), logits };
}

export interface CheckInput {
  model: LoadedModel;
  /** Images as [0,1] pixels, H x W x C each, at the model's input size. */
  pixels: Float32Array[];
  height: number;
  width: number;
  chosen: PreprocessingProfile;
  /** More profiles to try besides the standard alternatives (a stored or custom one). */
  alternatives?: PreprocessingProfile[];
}

export async function checkPreprocessing(input: CheckInput): Promise<PreprocessingCheck> {
  const t0 = performance.now();
  const { model, height: H, width: W } = input;
  const C = model.input.channels;
  // At most 16 images, fewer for large inputs (about 16 images of 64x64 worth of pixels, at least 4): each image
  // runs once per profile tried.
  const budget = Math.max(CHECK_LIMITS.minImages, Math.floor(CHECK_LIMITS.pixelBudget / (H * W)));
  const pixels = input.pixels.slice(0, Math.min(CHECK_LIMITS.maxImages, budget));
  if (pixels.length === 0) throw new UserError('the preprocessing check needs at least one image');
  const out = modelOutput(model);
  const run = (fn: (x: tf.Tensor4D) => tf.Tensor, buf: Float32Array): Float32Array =>
    tf.tidy(() => tf.reshape(fn(tf.tensor4d(buf, [pixels.length, H, W, C])), [pixels.length, -1]).dataSync() as Float32Array);
  const batch = (profile: PreprocessingProfile): Float32Array => {
    const mapping = makeInputMapping(mappingOptions(profileSettings(profile)), C);
    const buf = new Float32Array(pixels.length * H * W * C);
    pixels.forEach((p, i) => buf.set(toModelUnits(p, mapping), i * H * W * C));
    return buf;
  };
  // Is it a classifier? Its output is a probability vector per image (a softmax last) at the chosen profile.
  const firstBuf = batch(input.chosen);
  const plainFirst = run(out.plain, firstBuf);
  const classes = plainFirst.length / pixels.length;
  const probabilities = looksLikeProbabilities(plainFirst, pixels.length, classes);
  let kind: 'logits' | 'probabilities' | 'raw' = probabilities ? 'probabilities' : 'raw';
  let scores = out.plain;
  if (probabilities && out.logits) {
    try {
      const z = run(out.logits, firstBuf);
      if (z.length === plainFirst.length) {
        kind = 'logits';
        scores = out.logits;
      }
    } catch {
      // the probabilities themselves then
    }
  } else if (!probabilities && out.rank === 1 && classes >= 2 && classes <= 100_000) {
    // A vector output without a softmax: a classifier's logits (torchvision, the ONNX exports of most trainers).
    kind = 'logits';
  }
  const runProfile = (profile: PreprocessingProfile): ProfileCheck => {
    const buf = profile === input.chosen ? firstBuf : batch(profile);
    const y = scores === out.plain && profile === input.chosen ? plainFirst : run(scores, buf);
    return { profile, label: profileLabel(profile), ...judgeOutputs(y, pixels.length, classes, kind) };
  };
  const chosen = runProfile(input.chosen);
  const tried: PreprocessingProfile[] = [];
  for (const a of [...alternativeProfiles(C), ...(input.alternatives ?? [])]) {
    if (!sameMapping(a, input.chosen) && !tried.some((t) => sameMapping(t, a)) && (a.channelOrder === 'rgb' || C === 3)) tried.push(a);
  }
  const alternatives = tried.map(runProfile);
  let recommended: ProfileCheck | null = null;
  let message: string | undefined;
  if (chosen.degenerate) {
    // A recommendation must look like a classifier fed correctly: not degenerate, and (with 2+ images) not one
    // class for every image (an untrained network at 0-255 is confident and uniform: measured on the shipped
    // epoch-0 family model, class 9 for all 8 images at mean 0.96).
    const distinct = (c: ProfileCheck) => c.top.length < 2 || new Set(c.top.map((t) => t[0]?.index)).size >= 2;
    const fine = alternatives.filter((a) => !a.degenerate && distinct(a)).sort((a, b) => b.meanTopScore - a.meanTopScore);
    recommended = fine[0] ?? null;
    message = recommended
      ? `preprocessing ${chosen.label} gives degenerate outputs (${chosen.problems.join('; ')}); ${recommended.label} does not (mean top score ${recommended.meanTopScore.toFixed(2)})`
      : `preprocessing ${chosen.label} gives degenerate outputs (${chosen.problems.join('; ')}), and no other preprocessing tried gives varied predictions (an untrained model, or images of one class?)`;
  }
  return {
    output: { layer: out.layer, kind, classes },
    images: pixels.length,
    channels: C,
    chosen,
    alternatives,
    recommended,
    message,
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface CheckFilesRequest {
  modelPath: string;
  /** The weights of a Keras to_json model when they are not beside it. */
  weightsPath?: string;
  images: string[];
  profile: PreprocessingProfile;
  inputSize?: [number, number];
  alternatives?: PreprocessingProfile[];
}

/** Loads the model and the images (at most CHECK_LIMITS.maxImages) and runs the check; the backend must be set. */
export async function checkPreprocessingFiles(req: CheckFilesRequest): Promise<PreprocessingCheck & { detected: PreprocessingProfile | null }> {
  const model = await loadModel(req.modelPath, { weights: req.weightsPath });
  try {
    const { height, width } = model.input;
    const [H, W] = height !== null && width !== null ? [height, width] : req.inputSize ?? [NaN, NaN];
    if (!Number.isFinite(H)) throw new UserError('the model accepts any image size; give one with --input-size HxW (for example 224x224)', req.modelPath);
    const paths = collectImagePaths(req.images).slice(0, CHECK_LIMITS.maxImages);
    // The images as the analysis will see them: the profile's resize mode and alpha handling.
    const images = loadImages(paths, H, W, model.input.channels, { resize: req.profile.resize, alpha: req.profile.alpha });
    const check = await checkPreprocessing({ model, pixels: images.map((im) => im.pixels), height: H, width: W, chosen: req.profile, alternatives: req.alternatives });
    return { ...check, detected: model.preprocessingHint ?? null };
  } finally {
    model.dispose();
  }
}

/** The preset flag that selects a checked profile, for messages ("--preset [0,255]"), or the explicit flags. */
export function cliFlagsFor(p: PreprocessingProfile): string {
  const name = presetNameOf(p);
  // Without brackets (a shell glob in zsh); a value starting with "-" needs the = form.
  const bare = name.replace(/[[\]]/g, '');
  if (name !== 'custom') return bare.startsWith('-') ? `--preset=${bare}` : `--preset ${bare}`;
  const flags = p.normalize ? `--normalize ${p.normalize.mean.join(',')}/${p.normalize.std.join(',')}` : `--input-range ${(p.inputRange ?? [0, 1]).join(',')}`;
  return p.channelOrder === 'bgr' ? `${flags} --bgr` : flags;
}
