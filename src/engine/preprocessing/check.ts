/**
 * The degenerate-output check, run before the long analysis: the model's output on the chosen images at the chosen
 * preprocessing and at the obvious alternatives ([0,1], 0-255, [-1,1], ImageNet mean/std). A profile's output is
 * degenerate when it is
 *  - not finite (NaN/Inf), or its logits are huge (|z| > 1000: the input is far outside the trained range);
 *  - the same for every image (each class probability varies by less than 0.02 across the images);
 *  - near-uniform (every image's prediction entropy is above 95 % of log K);
 *  - the same top class for every image at low confidence (mean top probability below 0.5).
 * When the chosen profile is degenerate and an alternative is not, the alternative with the most confident
 * predictions is recommended, with one line that names it. The top predictions (class index and probability) per
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
  /** The layer whose output was read, and whether logits (pre-softmax) were available. */
  output: { layer: string; logits: boolean; classes: number };
  images: number;
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

/** Whether each row is a probability vector already (non-negative, summing to 1). */
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

/** Judges one profile's outputs (n images x k values; `logits` says whether they are pre-softmax scores). */
export function judgeOutputs(y: Float32Array, n: number, k: number, logits: boolean, topK = CHECK_LIMITS.topK): Omit<ProfileCheck, 'profile' | 'label'> {
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
  const probs = k >= 2 && (logits || !looksLikeProbabilities(y, n, k)) ? softmaxRows(y, n, k) : y;
  const isProb = k >= 2;
  if (isProb && !looksLikeProbabilities(y, n, k) && maxAbs > CHECK_LIMITS.hugeLogit) problems.push(`saturated: logits up to ${maxAbs.toPrecision(3)}`);
  if (n >= 2) {
    // Largest change of any output across the images, relative to the output's scale (probabilities: absolute).
    let spread = 0;
    const scale = isProb ? 1 : Math.max(1e-12, maxAbs);
    const vals = isProb ? probs : y;
    for (let c = 0; c < k; c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < n; i++) {
        lo = Math.min(lo, vals[i * k + c]);
        hi = Math.max(hi, vals[i * k + c]);
      }
      spread = Math.max(spread, (hi - lo) / scale);
    }
    if (spread < CHECK_LIMITS.sameOutput) problems.push('the same output for every image');
  }
  const top: TopPrediction[][] = [];
  let topSum = 0;
  let uniform = isProb;
  for (let i = 0; i < n; i++) {
    const row = Array.from(probs.subarray(i * k, (i + 1) * k));
    const order = row.map((v, c) => c).sort((a, b) => row[b] - row[a]);
    top.push(order.slice(0, topK).map((c) => ({ index: c, score: row[c] })));
    topSum += row[order[0]];
    if (isProb) {
      let h = 0;
      for (const p of row) if (p > 0) h -= p * Math.log(p);
      if (h < CHECK_LIMITS.uniformEntropy * Math.log(k)) uniform = false;
    }
  }
  if (uniform && n >= 1) problems.push('near-uniform probabilities');
  const meanTopScore = n > 0 ? topSum / n : 0;
  if (isProb && n >= 2 && top.every((t) => t[0].index === top[0][0].index) && meanTopScore < CHECK_LIMITS.unsureTop) {
    problems.push(`class ${top[0][0].index} for every image, unsure (mean ${meanTopScore.toFixed(2)})`);
  }
  return { top, degenerate: problems.length > 0, problems, meanTopScore, maxAbs };
}

/** Runs the whole model on the batch; the scores before a final softmax when the format can give them. */
function modelOutput(model: LoadedModel): { layer: string; logits: boolean; run: (x: tf.Tensor4D) => tf.Tensor } {
  const last = model.layers[model.layers.length - 1];
  if (!last) throw new UserError('the model has no layers to read an output from', model.path);
  const first = model.layers[0];
  if (model.runWithFeature) {
    try {
      const withFeature = model.runWithFeature(first.name, { preSoftmax: true });
      const probe = model.probe(first.name);
      return { layer: last.name, logits: true, run: (x) => withFeature(x, probe(x)) };
    } catch {
      // the format cannot enter the graph there: read the output as it is
    }
  }
  return { layer: last.name, logits: false, run: model.probe(last.name) };
}

export interface CheckInput {
  model: LoadedModel;
  /** Images as [0,1] pixels, H x W x C each, at the model's input size. */
  pixels: Float32Array[];
  height: number;
  width: number;
  chosen: PreprocessingProfile;
  alternatives?: PreprocessingProfile[];
}

export async function checkPreprocessing(input: CheckInput): Promise<PreprocessingCheck> {
  const t0 = performance.now();
  const { model, height: H, width: W } = input;
  const C = model.input.channels;
  const pixels = input.pixels.slice(0, CHECK_LIMITS.maxImages);
  if (pixels.length === 0) throw new UserError('the preprocessing check needs at least one image');
  const out = modelOutput(model);
  let usedLogits = out.logits;
  let classes = 0;
  const runProfile = (profile: PreprocessingProfile): ProfileCheck => {
    const mapping = makeInputMapping(mappingOptions(profileSettings(profile)), C);
    const buf = new Float32Array(pixels.length * H * W * C);
    pixels.forEach((p, i) => buf.set(toModelUnits(p, mapping), i * H * W * C));
    let y: Float32Array;
    try {
      y = tf.tidy(() => {
        const r = out.run(tf.tensor4d(buf, [pixels.length, H, W, C]));
        return tf.reshape(r, [pixels.length, -1]).dataSync() as Float32Array;
      });
    } catch (e) {
      if (!usedLogits) throw e;
      // runWithFeature refused at run time: fall back to the plain output for every profile
      usedLogits = false;
      out.logits = false;
      out.run = model.probe(out.layer);
      return runProfile(profile);
    }
    classes = y.length / pixels.length;
    return { profile, label: profileLabel(profile), ...judgeOutputs(y, pixels.length, classes, usedLogits) };
  };
  const chosen = runProfile(input.chosen);
  const alternatives = (input.alternatives ?? alternativeProfiles(C)).filter((a) => !sameMapping(a, input.chosen)).map(runProfile);
  let recommended: ProfileCheck | null = null;
  let message: string | undefined;
  if (chosen.degenerate) {
    const fine = alternatives.filter((a) => !a.degenerate).sort((a, b) => b.meanTopScore - a.meanTopScore);
    recommended = fine[0] ?? null;
    message = recommended
      ? `preprocessing ${chosen.label} gives degenerate outputs (${chosen.problems.join('; ')}); ${recommended.label} does not (mean top score ${recommended.meanTopScore.toFixed(2)}): use ${recommended.label}`
      : `preprocessing ${chosen.label} gives degenerate outputs (${chosen.problems.join('; ')}), and so does every alternative tried; check the images and the model`;
  }
  return {
    output: { layer: out.layer, logits: usedLogits, classes },
    images: pixels.length,
    chosen,
    alternatives,
    recommended,
    message,
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface CheckFilesRequest {
  modelPath: string;
  images: string[];
  profile: PreprocessingProfile;
  inputSize?: [number, number];
  alternatives?: PreprocessingProfile[];
}

/** Loads the model and the images (at most CHECK_LIMITS.maxImages) and runs the check; the backend must be set. */
export async function checkPreprocessingFiles(req: CheckFilesRequest): Promise<PreprocessingCheck & { detected: PreprocessingProfile | null }> {
  const model = await loadModel(req.modelPath);
  try {
    const { height, width } = model.input;
    const [H, W] = height !== null && width !== null ? [height, width] : req.inputSize ?? [NaN, NaN];
    if (!Number.isFinite(H)) throw new UserError('the model accepts any image size; give one with --input-size HxW (for example 224x224)', req.modelPath);
    const paths = collectImagePaths(req.images).slice(0, CHECK_LIMITS.maxImages);
    const images = loadImages(paths, H, W, model.input.channels);
    const check = await checkPreprocessing({ model, pixels: images.map((im) => im.pixels), height: H, width: W, chosen: req.profile, alternatives: req.alternatives });
    return { ...check, detected: model.preprocessingHint ?? null };
  } finally {
    model.dispose();
  }
}

/** The preset flag that selects a checked profile, for messages ("--preset [0,255]"), or the explicit flags. */
export function cliFlagsFor(p: PreprocessingProfile): string {
  const name = presetNameOf(p);
  if (name !== 'custom') return `--preset ${name}`;
  const flags = p.normalize ? `--normalize ${p.normalize.mean.join(',')}/${p.normalize.std.join(',')}` : `--input-range ${(p.inputRange ?? [0, 1]).join(',')}`;
  return p.channelOrder === 'bgr' ? `${flags} --bgr` : flags;
}
