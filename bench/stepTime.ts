/**
 * The cost of one optimisation step (K noise samples, forward + input gradient + update), measured in-process
 * from the engine's step events with early stopping off: the like-for-like partner of the PyTorch reference's
 * loop-only ms/step. (The CLI's seconds/steps also carries the fixed per-layer work: delta_f^2 and calibration.)
 */
import { selectBackend, type BackendChoice } from '../src/engine/backend';
import { loadImages } from '../src/engine/images';
import { makeInputMapping } from '../src/engine/inputMapping';
import { loadModel } from '../src/engine/loaders';
import { learnSid } from '../src/engine/sid';

export async function stepMilliseconds(
  backend: BackendChoice,
  modelPath: string,
  imagePath: string,
  layers: string[],
  steps: number,
  samples: number,
): Promise<Map<string, number>> {
  await selectBackend(backend);
  const model = await loadModel(modelPath);
  const { height, width, channels } = model.input;
  const [image] = loadImages([imagePath], height!, width!, channels);
  const mapping = makeInputMapping({}, channels);
  const out = new Map<string, number>();
  try {
    for (const layer of layers) {
      const times: number[] = [];
      await learnSid(
        { probe: model.probe(layer), pixels: image.pixels, height: height!, width: width!, channels, mapping },
        {
          alpha: 1.5, tau: 0.01, samples, maxSteps: steps, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 1,
          minSteps: steps + 1, // never stop early
          onStep: () => times.push(performance.now()),
        },
      );
      const gaps = times.slice(5).map((t, i) => t - times[i + 4]).sort((a, b) => a - b); // skip warm-up steps
      out.set(layer, gaps[Math.floor(gaps.length / 2)]);
    }
  } finally {
    model.dispose();
  }
  return out;
}
