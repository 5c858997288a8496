/**
 * First-order preview and warm start on the ResNet-20 fixture (bench/resnet20.ts), one 32x32 image, wasm:
 * for the stem and each stage's output, the cold run (flat start) against warm runs (the preview, then learnSid
 * from it with the preview's delta_f^2): steps and seconds, the warm total (preview + search) and its speed-up over
 * cold, the SID mean difference, map Pearson (preview and warm vs cold) and constraint ratios. No assertions.
 *
 *   node --import tsx bench/warmStart.ts [--steps 200] [--layers stem,stage1_block3,stage2_block3,stage3_block3]
 *     [--modes raw1,raw2,raw,raw32,cal,full] [--min-steps default,10,20,30] [--window default,5] [--reuse-delta yes|no]
 *
 * Preview modes: full = calibrated level + fresh-noise check; cal = calibrated, no check; raw = first order only
 * (measure: false); raw2 / raw1 = raw with 2 / 1 linearisation passes (raw1: analyze.ts's warm start, the default);
 * raw32 = raw with 32 Hutchinson probes. minSteps 'default' = learnSid's warm default.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectBackend } from '../src/engine/backend';
import { loadImages } from '../src/engine/images';
import { makeInputMapping } from '../src/engine/inputMapping';
import { loadModel } from '../src/engine/loaders';
import { previewSigma } from '../src/engine/preview';
import { learnSid } from '../src/engine/sid';
import { makeFixture } from './resnet20';
import { arg, pearson, table } from './util';

/** Preview variants for the warm start: full (calibrated + fresh-noise check), calibrated only, or first order only. */
const PREVIEW_MODES = {
  full: {},
  cal: { check: false },
  raw: { measure: false },
  raw2: { measure: false, passes: 2 },
  raw1: { measure: false, passes: 1 },
  raw32: { measure: false, vjpSamples: 32 },
} as const;
type PreviewMode = keyof typeof PREVIEW_MODES;

async function main(): Promise<void> {
  const steps = Number(arg('--steps', '200'));
  const layers = arg('--layers', 'stem,stage1_block3,stage2_block3,stage3_block3').split(',');
  // Warm variants: preview mode x minSteps (x window); the first is the analyze.ts warm start.
  const modes = arg('--modes', 'raw1').split(',') as PreviewMode[];
  const minStepsList = arg('--min-steps', 'default').split(',').map((m) => (m === 'default' ? undefined : Number(m)));
  const windows = arg('--window', 'default').split(',').map((m) => (m === 'default' ? undefined : Number(m)));
  const reuseDeltaF2 = arg('--reuse-delta', 'yes') === 'yes';
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-warm-'));
  try {
    const fx = await makeFixture(path.join(tmp, 'resnet20'), 3, 1);
    await selectBackend('wasm');
    const model = await loadModel(fx.modelPath);
    const { height, width, channels } = model.input;
    const [image] = loadImages([fx.imagePath], height!, width!, channels);
    const mapping = makeInputMapping({}, channels);
    const opts = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: steps, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 1 };
    const rows: string[][] = [];
    for (const layer of layers) {
      const input = { probe: model.probe(layer), pixels: image.pixels, height: height!, width: width!, channels, mapping };
      const cold = await learnSid(input, opts);
      for (const mode of modes) {
        const preview = await previewSigma(input, { ...opts, ...PREVIEW_MODES[mode] });
        for (const window of windows) {
          for (const minSteps of minStepsList) {
            const warm = await learnSid(input, {
              ...opts,
              minSteps,
              window,
              initialLogSigma: preview.sigma.map(Math.log),
              deltaF2: reuseDeltaF2 ? { mean: preview.deltaF2, relSe: preview.deltaF2RelSe } : undefined,
            });
            const total = warm.seconds + preview.seconds;
            const row = [
              layer,
              `${mode}/${minSteps ?? 'dflt'}/${window ?? 'dflt'}`,
              `${cold.steps}/${cold.seconds.toFixed(1)}`,
              preview.seconds.toFixed(1),
              `${warm.steps}/${warm.seconds.toFixed(1)}`,
              total.toFixed(1),
              (cold.seconds / total).toFixed(2),
              cold.sidMean.toFixed(3),
              (warm.sidMean - cold.sidMean).toFixed(3),
              pearson(preview.map, cold.map).toFixed(3),
              pearson(warm.map, cold.map).toFixed(3),
              `${preview.constraintRatio.toFixed(2)}/${cold.constraintRatio.toFixed(2)}/${warm.constraintRatio.toFixed(2)}`,
            ];
            console.log(row.join('  '));
            rows.push(row);
          }
        }
      }
    }
    model.dispose();
    console.log(
      `\nResNet-20 fixture, one 32x32 image, wasm, K=16, max ${steps} steps (cold = flat start; warm = preview mode/minSteps/window, ` +
        `then learnSid from it${reuseDeltaF2 ? " with the preview's delta_f^2" : ''}; total = preview + warm search)`,
    );
    table(
      ['layer', 'warm variant', 'cold steps/s', 'prev s', 'warm steps/s', 'warm total s', 'speed-up', 'cold SID', 'warm-cold', 'r(prev,cold)', 'r(warm,cold)', 'ratio prev/cold/warm'],
      rows,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
