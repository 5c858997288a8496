/**
 * The sigma-grid lever at 224x224 (issue 15 §2): on the real-scale fixture (bench/resnet18_224.ts: torchvision
 * ResNet-18, one 224x224 photo, ImageNet normalisation), one layer, wasm in this process, K=16: per-pixel sigma and
 * N x N grids with the default search (early stopping) against fixed-step per-pixel references (seeds 1 and 2,
 * the second giving the reference's own seed-to-seed noise floor). Each run's map, steps, wall and CPU seconds go
 * to a JSON file, so the runs can be split over processes; --combine prints the table. No assertions.
 *
 *   node --import tsx bench/grid224.ts --layer /relu/Relu_output_0 --runs ref1,ref2,pixel,16,32 --out a.json [--steps 200]
 *   node --import tsx bench/grid224.ts --combine a.json,b.json
 * Run names: ref1 / ref2 (per pixel, --steps fixed steps, seed 1 / 2), pixel (per pixel, defaults), pixelmM (per pixel,
 * at least M steps instead of 30), warm (analyze.ts's --warm-start), sbN (--steps fixed steps, N samples per pass),
 * N (an N x N grid,
 * defaults), pN (the first-order preview at grid N, or per pixel for p0; pNxP: with P linearisation passes, default 3).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { selectBackend } from '../src/engine/backend';
import { loadImages } from '../src/engine/images';
import { makeInputMapping } from '../src/engine/inputMapping';
import { loadModel } from '../src/engine/loaders';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/engine/preprocessing/presets';
import { previewSigma } from '../src/engine/preview';
import { learnSid } from '../src/engine/sid';
import { makeResNet18Fixture, stageLabel } from './resnet18_224';
import { arg, pearson, table } from './util';

interface RunResult { name: string; layer: string; steps: number; seconds: number; cpuSeconds: number; sidMean: number; ratio: number; map: number[]; load: number }

async function run(): Promise<void> {
  const layer = arg('--layer', '/relu/Relu_output_0');
  const steps = Number(arg('--steps', '200'));
  const fx = await makeResNet18Fixture(path.join(os.tmpdir(), 'infodiscard-grid224'));
  await selectBackend('wasm');
  const model = await loadModel(fx.modelPath);
  const [image] = loadImages([fx.imagePath], 224, 224, 3, { resize: 'center-crop' });
  const mapping = makeInputMapping({ normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } }, 3);
  const input = { probe: model.probe(layer), pixels: image.pixels, height: 224, width: 224, channels: 3, mapping };
  const base = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: steps, sigmaMax: 1, sigmaGrid: null as number | null, learningRate: 0.05, seed: 1 };
  const out: RunResult[] = [];
  for (const name of arg('--runs', 'ref1,pixel,16').split(',')) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const load = os.loadavg()[0];
    let res: { steps?: number; sidMean: number; constraintRatio: number; map: Float32Array };
    const pm = /^p(\d+)(?:x(\d+))?$/.exec(name);
    if (pm) {
      const g = Number(pm[1]);
      res = await previewSigma(input, { ...base, sigmaGrid: g > 0 ? g : null, ...(pm[2] ? { passes: Number(pm[2]) } : {}) });
    } else if (name === 'ref1' || name === 'ref2') {
      res = await learnSid(input, { ...base, minSteps: steps, seed: name === 'ref1' ? 1 : 2 });
    } else if (name === 'warm') {
      // analyze.ts's warm start: one linearisation pass of the preview, no level fit, its delta_f^2 reused.
      const first = await previewSigma(input, { ...base, measure: false, passes: 1 });
      res = await learnSid(input, { ...base, initialLogSigma: first.sigma.map(Math.log), deltaF2: { mean: first.deltaF2, relSe: first.deltaF2RelSe } });
    } else if (/^sb\d+$/.test(name)) {
      // Cost of a fixed number of steps (--steps) with N noise samples per pass (sb16: one pass of all K).
      res = await learnSid(input, { ...base, minSteps: steps, sampleBatch: Number(name.slice(2)) });
    } else if (/^pixelm\d+$/.test(name)) {
      res = await learnSid(input, { ...base, minSteps: Number(name.slice(6)) });
    } else {
      res = await learnSid(input, { ...base, sigmaGrid: name === 'pixel' ? null : Number(name) });
    }
    const c = process.cpuUsage(c0);
    const r: RunResult = { name, layer, steps: res.steps ?? 0, seconds: (performance.now() - t0) / 1000, cpuSeconds: (c.user + c.system) / 1e6, sidMean: res.sidMean, ratio: res.constraintRatio, map: Array.from(res.map), load };
    console.log(JSON.stringify({ ...r, map: undefined }));
    out.push(r);
    writeFileSync(arg('--out', 'grid224.json'), JSON.stringify(out));
  }
  model.dispose();
}

function combine(files: string[]): void {
  const all: RunResult[] = files.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')) as RunResult[]);
  for (const layer of [...new Set(all.map((r) => r.layer))]) {
    const runs = all.filter((r) => r.layer === layer);
    const ref1 = runs.find((r) => r.name === 'ref1');
    const ref2 = runs.find((r) => r.name === 'ref2');
    const mean = ref1 && ref2 ? ref1.map.map((v, i) => (v + ref2.map[i]) / 2) : null;
    console.log(`\n== ${stageLabel(layer)} at 224x224 (ResNet-18, one photo, K=16; refs: per pixel, fixed steps) ==`);
    table(['run', 'steps', 'wall s', 'CPU s', 'load', 'SID', 'SID - ref1', 'r vs ref1', 'r vs mean of refs', 'ratio'], runs.map((r) => [
      r.name, String(r.steps), r.seconds.toFixed(1), r.cpuSeconds.toFixed(1), r.load.toFixed(1), r.sidMean.toFixed(3),
      ref1 ? (r.sidMean - ref1.sidMean).toFixed(3) : '-', ref1 ? pearson(r.map, ref1.map).toFixed(3) : '-', mean ? pearson(r.map, mean).toFixed(3) : '-', r.ratio.toFixed(3),
    ]));
  }
}

const files = arg('--combine', '');
if (files) combine(files.split(','));
else run().catch((e) => {
  console.error(e);
  process.exit(1);
});
