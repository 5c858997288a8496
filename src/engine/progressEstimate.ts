/**
 * Honest progress: what the current layer is expected to take, from what this run has measured, and (once two
 * layers have finished) how long the rest will take. Pure; the CLI's progress line and the extension's progress
 * notification both use it.
 *
 * - Steps per image: the search stops when the constraint settles, usually well before maxSteps. Before any layer has
 *   finished the only honest figure is the bound (maxSteps); after that, the mean steps per image of the finished
 *   layers (never less than the steps already taken on this image).
 * - Seconds per step: this layer's own, from the step events (elapsed on this image / steps on this image).
 * - The rest of the run: each layer still to come is assumed to cost what this one does per step, with the expected
 *   steps: deeper layers are usually slower, so this is a lower estimate early on; it is only given once two layers
 *   have finished, when the expected steps rest on more than one layer. With several layers running at once (one per
 *   worker process), the layers still to come are shared among that many: their time is divided by it (each layer's
 *   seconds per step already include the workers' competition for the cores).
 */
import { shortLayerLabels } from './layerLabel';

/** One finished layer as measured in this run (reused and preview layers are left out by the caller). */
export interface FinishedLayer {
  /** Mean optimisation steps per image. */
  stepsPerImage: number;
  /** Milliseconds per step (all images). */
  msPerStep: number;
}

export interface ProgressInput {
  maxSteps: number;
  images: number;
  finished: readonly FinishedLayer[];
  /** Layers still to analyse after the current one. */
  layersAfter: number;
  /** The current layer: images finished, the step reached on the image in progress and the ms it has taken. */
  imagesDone: number;
  step: number;
  elapsedMs: number;
  /** Steps and milliseconds of this layer's images already past (they time a step better than the first steps). */
  doneSteps?: number;
  doneMs?: number;
  /** Layers running at once (worker processes busy); the layers after are shared among them. Default 1. */
  concurrent?: number;
}

/** Below this many timed steps in the layer, its time per step is not given (the first includes the δ_f² estimate). */
export const MIN_TIMED_STEPS = 5;

export interface ProgressEstimate {
  /** Expected steps per image of this layer, and whether it is measured or only the bound (maxSteps). */
  expectedSteps: number;
  measured: boolean;
  /** Seconds left in this layer (null until a step has been timed). */
  layerSeconds: number | null;
  /** Seconds left in the whole run (null until two layers have finished and a step has been timed). */
  totalSeconds: number | null;
}

/** A finished layer's measure from its per-image steps and seconds; undefined when it ran no steps (a preview). */
export function measureLayer(perImage: readonly { steps: number; seconds: number }[]): FinishedLayer | undefined {
  const steps = perImage.reduce((a, p) => a + p.steps, 0);
  if (perImage.length === 0 || steps <= 0) return undefined;
  const seconds = perImage.reduce((a, p) => a + p.seconds, 0);
  return { stepsPerImage: steps / perImage.length, msPerStep: (1000 * seconds) / steps };
}

export function estimateProgress(p: ProgressInput): ProgressEstimate {
  const measured = p.finished.length > 0;
  const mean = measured ? p.finished.reduce((a, f) => a + f.stepsPerImage, 0) / p.finished.length : p.maxSteps;
  const expectedSteps = Math.min(p.maxSteps, Math.max(Math.round(mean), p.step));
  const timedSteps = p.step + (p.doneSteps ?? 0);
  const msPerStep = timedSteps >= MIN_TIMED_STEPS && p.elapsedMs > 0 ? (p.elapsedMs + (p.doneMs ?? 0)) / timedSteps : null;
  if (msPerStep === null) return { expectedSteps, measured, layerSeconds: null, totalSeconds: null };
  const imagesAfter = Math.max(0, p.images - p.imagesDone - 1);
  const stepsLeft = Math.max(0, expectedSteps - p.step) + imagesAfter * Math.round(mean);
  const layerSeconds = (stepsLeft * msPerStep) / 1000;
  const lanes = Math.max(1, Math.min(p.concurrent ?? 1, p.layersAfter + 1));
  const totalSeconds = p.finished.length >= 2 ? layerSeconds + (p.layersAfter * p.images * mean * msPerStep) / lanes / 1000 : null;
  return { expectedSteps, measured, layerSeconds, totalSeconds };
}

/** "step 30 of ~45 (at most 200) · layer ~12 s left · run ~3 min 05 s left", with the formatter given. */
export function progressText(e: ProgressEstimate, step: number, maxSteps: number, duration: (s: number) => string): string {
  const steps = e.measured ? `step ${step} of ~${e.expectedSteps} (at most ${maxSteps})` : `step ${step} (at most ${maxSteps})`;
  const layer = e.layerSeconds !== null ? ` · layer ~${duration(e.layerSeconds)} left` : '';
  const total = e.totalSeconds !== null ? ` · run ~${duration(e.totalSeconds)} left` : '';
  return `${steps}${layer}${total}`;
}

/** How many running layers the progress text names; the others are counted ("+2"). */
export const RUNNING_NAMED = 2;

/**
 * The layers running now, for a progress line: every one when there are at most `named`, else the first `named` and
 * "+N" ("layer1.1/relu_1, layer2.0/relu_1 +1"). Long exported names are shortened (engine/layerLabel.ts).
 */
export function runningLayersText(names: readonly string[], named = RUNNING_NAMED): string {
  const labels = shortLayerLabels(names);
  if (labels.length <= named) return labels.join(', ');
  return `${labels.slice(0, named).join(', ')} +${labels.length - named}`;
}

/**
 * Follows a run's events and gives the estimate at each step: the finished layers' measures, and per image of each
 * running layer its latest step and time. With several worker processes, layers run at once (each its own images)
 * and the images of one layer may run in parallel; events without a layer name count as one layer.
 */
export class ProgressTracker {
  private finished: FinishedLayer[] = [];
  private images = 1;
  private total = 0;
  private done = 0;
  /** Per running layer (in the order they started), per image: the latest step and its time. */
  private current = new Map<string, Map<number, { step: number; elapsedMs: number }>>();
  /** The most layers seen running at once: the run's parallelism (its worker processes). */
  private lanes = 1;

  started(layers: number, images: number): void {
    this.total = layers;
    this.images = images;
  }

  layerStarted(layer = ''): void {
    this.current.set(layer, new Map());
    this.lanes = Math.max(this.lanes, this.current.size);
  }

  /** A layer is over: measured when it ran its search in this run (not reused, not a preview, not skipped). */
  layerEnded(perImage?: readonly { steps: number; seconds: number }[], layer = ''): void {
    this.done++;
    const m = perImage ? measureLayer(perImage) : undefined;
    if (m) this.finished.push(m);
    this.current.delete(layer);
  }

  /** The layers started and not yet over, in the order they started. */
  running(): string[] {
    return [...this.current.keys()];
  }

  step(e: { layer?: string; image: number; step: number; maxSteps: number; elapsedMs: number; metric?: 'sid' | 'ru' }): ProgressEstimate {
    const layer = e.layer ?? '';
    let images = this.current.get(layer);
    if (!images) {
      // A step before its layer's start event (or a caller that does not send them): the layer is running.
      images = new Map();
      this.current.set(layer, images);
      this.lanes = Math.max(this.lanes, this.current.size);
    }
    images.set(e.image, { step: e.step, elapsedMs: e.elapsedMs });
    let doneSteps = 0;
    let doneMs = 0;
    for (const [image, s] of images) {
      if (image === e.image) continue;
      doneSteps += s.step;
      doneMs += s.elapsedMs;
    }
    return estimateProgress({
      maxSteps: e.maxSteps,
      images: this.images,
      // RU's own search has no measured layers yet: its bound only.
      finished: e.metric === 'ru' ? [] : this.finished,
      layersAfter: Math.max(0, this.total - this.done - Math.max(1, this.current.size)),
      imagesDone: images.size - 1,
      step: e.step,
      elapsedMs: e.elapsedMs,
      doneSteps,
      doneMs,
      concurrent: this.lanes,
    });
  }
}
