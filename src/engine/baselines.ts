/**
 * The baseline maps the paper compares SID and RU against (Sec. 4, "Coherency for comprehensive comparisons"),
 * for one layer and one image: the gradient map sqrt(sum_c (dy/df_ijc)^2), Grad-CAM and CAM.
 *
 * y is one unit of the model's first output, computed from the layer's feature f = h(x) by
 * LoadedModel.runWithFeature (the rest of the network, skips from x included):
 *  - The unit: `targetClass` indexes the output flattened per image (for a [K] output, the class; for a rank>2
 *    output such as a segmentation or an auto-encoder image, one element of it in the format's own axis order).
 *    Default: the argmax of the clean output.
 *  - Softmax: y is the score before a final softmax wherever the loader can find it cheaply (layers models whose
 *    last layer has a softmax activation, computed through a linear copy, or is a Softmax/Activation('softmax')
 *    layer; graph and ONNX models whose output is a Softmax node, possibly behind identities); Grad-CAM's paper
 *    uses that score. Otherwise (or when the probed layer is that softmax itself) y is the output as given. The
 *    coherency check leaves the output unchanged, so either choice keeps its comparison meaningful.
 *
 * Maps: a rank-4 feature is a [h, w, c] map (ONNX features are NCHW, read through featureLayout); any other
 * feature (a vector after pooling or a dense layer) is one 1x1 "map": gradNorm is then the norm of the whole
 * gradient (its magnitude still compares across layers), Grad-CAM and CAM are null.
 *  - gradNorm_ij = sqrt(sum_c (dy/df_ijc)^2)
 *  - gradCam_ij = ReLU(sum_c a_c f_ijc), a_c = mean_ij dy/df_ijc
 *  - cam_ij = sum_c w_{c,y} f_ijc, only at a layer whose output feeds a global average pooling then the dense
 *    layer giving the output (LoadedModel.camWeights); no ReLU, as in the CAM paper. null elsewhere.
 * Maps are upsampled bilinearly (half-pixel centres) to height x width for display and rounded to 4 significant
 * digits; the magnitudes are the means of the maps at the feature's own resolution.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, UserError } from './errors';
import { toModelUnits } from './inputMapping';
import type { LayerJob } from './layerJob';
import type { LoadedModel } from './loaders/types';
import { meanStd, type BaselineMaps, type LayerResult } from './report';

/** Rounds to 4 significant digits (display data). */
function round4(v: number): number {
  return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(4));
}

async function toRows(map: tf.Tensor2D, height: number, width: number): Promise<number[][]> {
  const up = tf.tidy(() => {
    const [h, w] = map.shape;
    const img = tf.reshape(map, [1, h, w, 1]) as tf.Tensor4D;
    return h === height && w === width ? img : tf.image.resizeBilinear(img, [height, width], false, true);
  });
  const data = await up.data();
  up.dispose();
  return Array.from({ length: height }, (_, y) => Array.from(data.subarray(y * width, (y + 1) * width), round4));
}

async function meanOf(map: tf.Tensor): Promise<number> {
  const m = tf.mean(map);
  const v = (await m.data())[0];
  m.dispose();
  return v;
}

/**
 * Baseline maps of layer `layerName` for one image x ([1, H, W, C], model units), at height x width.
 * Throws a UserError when the format cannot run the model from an intermediate layer, when the target class is
 * out of range, or when the output does not depend on the layer.
 */
export async function computeBaselines(
  model: LoadedModel,
  layerName: string,
  x: tf.Tensor4D,
  height: number,
  width: number,
  targetClass?: number,
): Promise<BaselineMaps> {
  if (!model.runWithFeature) {
    throw new UserError(`baseline maps need to run the model from layer "${layerName}", which ${model.format} models do not support; convert the model to a TensorFlow.js graph model or ONNX`, model.path);
  }
  if (x.shape[0] !== 1) throw new Error(`computeBaselines takes one image, got a batch of ${x.shape[0]}`);
  const probe = model.probe(layerName);
  const run = model.runWithFeature(layerName, { preSoftmax: true });
  const layout = model.featureLayout?.(layerName) ?? 'nhwc';

  const kept: tf.Tensor[] = [];
  try {
    const f = tf.tidy(() => probe(x));
    kept.push(f);
    const clean = tf.tidy(() => tf.reshape(run(x, f), [-1]));
    kept.push(clean);
    const scores = await clean.data();
    let k: number;
    if (targetClass === undefined) {
      k = 0;
      for (let i = 1; i < scores.length; i++) if (scores[i] > scores[k]) k = i;
    } else {
      k = targetClass;
      if (!Number.isInteger(k) || k < 0 || k >= scores.length) {
        throw new UserError(`target class ${targetClass} is out of range: the model output has ${scores.length} units (0..${scores.length - 1})`, '--target-class');
      }
    }

    let g: tf.Tensor;
    try {
      g = tf.tidy(() => tf.grad((feat: tf.Tensor) => tf.sum(tf.slice(tf.reshape(run(x, feat), [-1]), [k], [1])))(f));
    } catch (e) {
      if (/Cannot compute gradient/.test((e as Error).message)) {
        throw new UserError(`layer "${layerName}": the model output does not depend on this layer, so it has no baseline maps`, model.path);
      }
      throw e;
    }
    kept.push(g);

    // A token sequence [1, tokens, dim] is a map only where the model declares its patch grid (ViT: class token
    // dropped, patches reshaped to the grid); otherwise Grad-CAM and CAM are refused with the reason.
    const grid = f.rank === 3 ? model.tokenGrid?.(layerName) ?? null : null;
    let note: string | undefined;
    if (f.rank === 3) {
      note = grid
        ? `token feature [${f.shape[1]}, ${f.shape[2]}]: ${grid.skip ? `${grid.skip} class token dropped, ` : ''}patch tokens read as a ${grid.height}x${grid.width} grid`
        : `token feature [${f.shape[1]}, ${f.shape[2]}]: Grad-CAM and CAM need a spatial map and these tokens have no recognised patch grid; the gradient norm is over the whole feature`;
    }
    const spatial = f.rank === 4 || !!grid;
    // Feature and gradient as [h, w, c].
    const hwc = (t: tf.Tensor) => {
      if (grid) return tf.reshape(tf.slice(t, [0, grid.skip, 0], [1, grid.height * grid.width, -1]), [grid.height, grid.width, -1]) as tf.Tensor3D;
      return (spatial ? tf.squeeze(layout === 'nchw' ? tf.transpose(t, [0, 2, 3, 1]) : t, [0]) : tf.reshape(t, [1, 1, -1])) as tf.Tensor3D;
    };
    const weights = f.rank === 4 ? model.camWeights?.(layerName) ?? null : null;
    if (weights) kept.push(weights);

    const fm = tf.tidy(() => hwc(f));
    kept.push(fm);
    const gm = tf.tidy(() => hwc(g));
    kept.push(gm);
    const channels = fm.shape[2];
    const maps = {
      gradNorm: tf.tidy(() => tf.sqrt(tf.sum(tf.square(gm), -1)) as tf.Tensor2D),
      gradCam: spatial ? tf.tidy(() => tf.relu(tf.sum(tf.mul(fm, tf.mean(gm, [0, 1])), -1)) as tf.Tensor2D) : null,
      cam:
        weights && weights.shape[0] === channels && k < weights.shape[1]
          ? tf.tidy(() => tf.sum(tf.mul(fm, tf.reshape(tf.slice(weights, [0, k], [channels, 1]), [channels])), -1) as tf.Tensor2D)
          : null,
    };
    for (const m of [maps.gradNorm, maps.gradCam, maps.cam]) if (m) kept.push(m);

    return {
      ...(note ? { note } : {}),
      targetClass: k,
      gradNorm: await toRows(maps.gradNorm, height, width),
      gradCam: maps.gradCam ? await toRows(maps.gradCam, height, width) : null,
      cam: maps.cam ? await toRows(maps.cam, height, width) : null,
      magnitude: {
        gradNorm: await meanOf(maps.gradNorm),
        gradCam: maps.gradCam ? await meanOf(maps.gradCam) : null,
        cam: maps.cam ? await meanOf(maps.cam) : null,
      },
    };
  } finally {
    tf.dispose(kept);
  }
}

/** The baselines of one layer on every image (perImage[].baselines) and their magnitudes' mean and spread. */
export async function layerBaselines(job: LayerJob, perImage: LayerResult['perImage'], targetClass?: number): Promise<NonNullable<LayerResult['baselines']>> {
  const { model, name, images, height, width, channels, mapping } = job;
  job.emit({ type: 'phase', layer: name, phase: 'baselines' });
  for (const p of perImage) {
    if (job.signal?.aborted) throw new CancelledError();
    const x = tf.tensor4d(toModelUnits(images[p.image].pixels, mapping), [1, height, width, channels]);
    try {
      p.baselines = await computeBaselines(model, name, x, height, width, targetClass);
    } finally {
      x.dispose();
    }
  }
  const stat = (get: (b: BaselineMaps) => number | null) => {
    const values = perImage.map((p) => get(p.baselines!));
    return values.every((v): v is number => v !== null) ? meanStd(values) : null;
  };
  return {
    gradNorm: stat((b) => b.magnitude.gradNorm)!,
    gradCam: stat((b) => b.magnitude.gradCam),
    cam: stat((b) => b.magnitude.cam),
  };
}
