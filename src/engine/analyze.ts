/**
 * One analysis: choose the backend, load the model and images, and for every requested layer learn SID on every
 * image, then the metrics asked for (concentration from the SID maps, RU with the layer's decoder, the baseline
 * maps), emitting progress events and writing the report after every finished layer (so a failure at layer 7
 * keeps layers 1-6 on disk).
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { adapterLabel, currentAdapter, selectBackend, type SelectOptions } from './backend';
import { withSyncReads } from './reads';
import { CancelledError, SkipLayerError, UserError, isUserError } from './errors';
import type { EventSink } from './events';
import { collectImages, loadImages, skippedFilesWarning, type ImageOptions, type PreparedImage } from './images';
import { makeInputMapping, mappingOptions, toModelUnits } from './inputMapping';
import { loadModel, type LoadedModel } from './loaders';
import { resolveLayers } from './resolveLayers';
import { meanStd, SCHEMA_VERSION, type LayerResult, type ObjectRegion, type Report } from './report';
import { peakRssMB } from './runStats';
import { readReport, writeReport } from './reportFile';
import { planResume, type ResumePlan } from './resume';
import { DEFAULT_DECODER, validateSettings, type SettingsInput } from './settings';
import { learnSid, type SidInput, type SidOptions, type SidResult } from './sid';
import type { NativeChoice } from './native/choice';
import { NATIVE_PASS, nativeAllowed, nativeThreads, type NativeProbe } from './native/ortProbe';
import { previewSigma, type PreviewResult } from './preview';
import { concentration, maskRows, summarizeConcentration } from './concentration';
import { imageRegions, type ImageRegions } from './regions';
import { layerBaselines } from './baselines';
import { layerRu, type DecoderSource } from './ru/layerRu';
import { hashImages } from './ru/decoderCache';
import { mapRows, searchOptions, type LayerJob } from './layerJob';
import { mixSeed } from './rng';
import { layerQuality, ruQuality, sidQuality } from './quality';
import { bytesPerSample, passSize } from './sampleBatch';
import type { SampleShare } from './sampleShare';
import { releaseAbandonedTape } from './wasmMemory';
import { VERSION } from './version';

export { resolveLayers };

export interface AnalyzeRequest {
  modelPath: string;
  /** Keras to_json models: the weights file (default: the same-stem .h5 / .weights.h5 beside the JSON). */
  weightsPath?: string;
  /** Image files or folders. */
  images: string[];
  /** Layer names; all probe-able layers when omitted. */
  layers?: string[];
  settings: SettingsInput;
  /** Model input size for models whose height/width are not fixed. */
  inputSize?: [number, number];
  /**
   * How image files are fitted to the model input: resize mode (stretch, center-crop, letterbox), alpha handling,
   * letterbox padding. Unset parts come from settings.preprocessing when it is set, else stretch and composite over
   * black. Recorded per image (report.images[].geometry).
   */
  imageOptions?: ImageOptions;
  reportPath?: string;
  /** Metrics to run beyond SID (settings.metrics); RU trains decoders on these images plus the analysis images. */
  trainImages?: string[];
  /** Where RU decoders are cached (default: a "decoders" folder beside the report, else no cache). */
  decoderCacheDir?: string;
  /** Object regions (metrics concentration): a sidecar JSON {"image.png": {"bbox": [x, y, w, h]}} ... */
  boxesFile?: string;
  /** ... and/or one region for every image that the file does not cover (CLI --box). */
  defaultRegion?: ObjectRegion;
  /** Output unit explained by the baselines (default: each image's top prediction). */
  targetClass?: number;
  /**
   * Which of the images to analyse (indices into the collected images; default all). Every image still appears in
   * `report.images` and keeps its seed, so parts of one layer run in different processes merge into the same
   * result as a whole run (src/engine/reportMerge.ts).
   */
  imageIndices?: number[];
  /**
   * Resume (default on): layers that the report already at `resumeFrom` (default `reportPath`) has, for this model,
   * these settings and these images exactly, are taken over (marked reused) instead of computed. Off with false,
   * and always off with prepareModel (the weights in memory are not the file's).
   */
  resume?: boolean;
  resumeFrom?: string;
  /**
   * This process's share of every layer's noise samples, when a team of processes runs the same request and adds
   * up its sums (sampleShare.ts; the worker pool's teams). Every member computes the same report.
   */
  share?: SampleShare;
  /**
   * The whole analysis's layers when this call analyses part of them (a job of --workers or --shard): BatchNorm
   * folding then keeps the convs that any of them analyses, so each layer is computed exactly as in a whole run.
   */
  analysedLayers?: string[];
  /** Changes the loaded model in memory before analysis (the coherency check rescales weights here). */
  prepareModel?: (model: LoadedModel) => void | Promise<void>;
  onEvent?: EventSink;
  signal?: AbortSignal;
  /** False: leave the GPU to another process (a worker pool's other workers): `webgpu` and `auto` run on wasm. */
  gpu?: SelectOptions['gpu'];
  /**
   * 'off': every layer on the tfjs backend. 'auto' (default): an ONNX model's SID passes on onnxruntime where it is
   * installed and the backend is wasm or cpu (src/engine/native/; INFODISCARD_NATIVE=off also turns it off).
   */
  native?: NativeChoice;
}

function imageSize(model: LoadedModel, inputSize: [number, number] | undefined, firstImage: string): [number, number] {
  const { height, width } = model.input;
  if (height !== null && width !== null) return [height, width];
  if (inputSize) return inputSize;
  throw new UserError(`the model accepts any image size; give one with --input-size HxW (for example 224x224)`, firstImage);
}

/** Names the layer (and the model file) in user-facing errors raised while analysing it. */
async function withLayerContext<T>(layer: string, modelPath: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof SkipLayerError) throw e;
    if (isUserError(e) && !e.file) throw new UserError(`layer "${layer}": ${e.message}`, modelPath);
    const msg = e instanceof Error ? e.message : String(e);
    const kernel = /Kernel '(\w+)' not registered for backend '(\w+)'/.exec(msg);
    if (kernel) {
      throw new UserError(
        `layer "${layer}" needs the ${kernel[1]} kernel, which the ${kernel[2]} backend lacks; try --backend cpu (slower) or install @tensorflow/tfjs-node`,
        modelPath,
      );
    }
    if (/OffscreenCanvas is not defined/.test(msg)) {
      throw new UserError(
        `layer "${layer}": this model reads GPU memory synchronously (an op of its format's loader), which the webgpu backend cannot do in Node; use --backend wasm`,
        modelPath,
      );
    }
    const grad = /gradient function not found for (\w+)/.exec(msg);
    if (grad) throw new SkipLayerError(`it uses the op ${grad[1]}, which TensorFlow.js cannot differentiate`);
    throw e;
  }
}

/**
 * A preview map in the shape of a search result. Its multiplier is the first-order one: with the linearised
 * constraint every free pixel has d ratio / d log sigma = 2 alpha / P, which is 2 alpha / n per input unit.
 */
function previewAsResult(p: PreviewResult, alpha: number, units: number): Omit<SidResult, 'stopReason'> & { stopReason: 'preview' } {
  return {
    map: p.map,
    sigma: p.sigma,
    sidMean: p.sidMean,
    constraintRatio: p.constraintRatio,
    constraintRatioSe: p.constraintRatioSe,
    lambda: (2 * alpha) / units,
    steps: 0,
    saturated: p.saturated,
    deltaF2: p.deltaF2,
    deltaF2RelSe: p.deltaF2RelSe,
    stopReason: 'preview',
    seconds: p.seconds,
  };
}

export async function analyze(req: AnalyzeRequest): Promise<Report> {
  const t0 = performance.now();
  const emit: EventSink = (event) => req.onEvent?.(event);
  const settingsIn = validateSettings(req.settings);
  const collected = collectImages(req.images);
  const imagePaths = collected.paths;
  const backend = await selectBackend(settingsIn.backend, { gpu: req.gpu });
  const adapter = currentAdapter();
  const model = await loadModel(req.modelPath, { weights: req.weightsPath });
  // The earlier report at this output, read before this run's first write replaces it (resume).
  const resumeFrom = req.resumeFrom ?? req.reportPath;
  let previous: Report | undefined;
  if (req.resume !== false && !req.prepareModel && resumeFrom) {
    try {
      previous = readReport(resumeFrom);
    } catch {
      previous = undefined; // none yet, or not a report: nothing to resume
    }
  }
  let report: Report | undefined;
  try {
    await req.prepareModel?.(model);
    const layers = resolveLayers(model, req.layers);
    // Graph surgery that leaves the analysed layers' outputs as they are (BatchNorm folded into its conv).
    model.optimizeFor?.(req.analysedLayers ?? layers);
    const [height, width] = imageSize(model, req.inputSize, imagePaths[0]);
    const channels = model.input.channels;
    const profile = settingsIn.preprocessing;
    const imageOptions: ImageOptions = {
      resize: req.imageOptions?.resize ?? profile?.resize ?? 'stretch',
      alpha: req.imageOptions?.alpha ?? profile?.alpha ?? { mode: 'composite', background: [0, 0, 0] },
      ...(req.imageOptions?.pad ? { pad: req.imageOptions.pad } : {}),
    };
    // Resizing reads tensors synchronously: on the cpu backend when the analysis runs on webgpu.
    const images: PreparedImage[] = await withSyncReads(() => loadImages(imagePaths, height, width, channels, imageOptions));
    // RU decoders train on the analysis images plus --train-images (each file once).
    let trainPixels: Float32Array[] = [];
    const skippedFiles = [...collected.skipped];
    if ((settingsIn.metrics ?? []).includes('ru')) {
      const seen = new Set(imagePaths.map((p) => path.resolve(p)));
      const train = req.trainImages && req.trainImages.length > 0 ? collectImages(req.trainImages) : { paths: [], skipped: [] };
      skippedFiles.push(...train.skipped);
      const extra = train.paths.filter((p) => !seen.has(path.resolve(p)));
      const extraImages = await withSyncReads(() => loadImages(extra, height, width, channels, imageOptions));
      trainPixels = [...images.map((im) => im.pixels), ...extraImages.map((im) => im.pixels)];
    }
    const mapping = makeInputMapping(mappingOptions(settingsIn), channels);
    // A preprocessing profile, when one is in force, states the resize mode and alpha handling the images went through.
    const settings = {
      ...settingsIn,
      backend,
      ...(profile ? { preprocessing: { ...profile, resize: imageOptions.resize!, alpha: imageOptions.alpha! } } : {}),
    };
    const metrics = new Set(settings.metrics ?? ['sid']);

    // Object regions (concentration), at the model's input size.
    const regions: ImageRegions = metrics.has('concentration')
      ? imageRegions(images, height, width, req.boxesFile, req.defaultRegion)
      : { regions: [], masks: [], warnings: [] };

    report = {
      schemaVersion: SCHEMA_VERSION,
      tool: { name: 'infodiscard', version: VERSION },
      createdAt: new Date().toISOString(),
      status: 'running',
      model: { path: model.path, format: model.format, sha256: model.sha256, inputShape: model.input.shape },
      settings,
      images: images.map((im, i) => ({
        path: im.path,
        width: im.width,
        height: im.height,
        channels: im.channels,
        pixels: Array.from(im.pixels, (p) => Math.round(p * 1000) / 1000),
        geometry: im.geometry,
        ...(regions.regions[i] ? { region: regions.regions[i], regionMask: maskRows(regions.masks[i]!, height, width) } : {}),
      })),
      layers: [],
      requestedLayers: layers,
      seconds: 0,
      run: { processes: [], ...(adapter ? { gpu: adapter } : {}) },
    };
    const save = () => {
      report!.seconds = (performance.now() - t0) / 1000;
      report!.run!.processes = [{ pid: process.pid, peakRssMB: peakRssMB(), backend, ...(adapter ? { adapter } : {}) }];
      if (req.reportPath) writeReport(req.reportPath, report!);
    };
    const byName = new Map(model.layers.map((l) => [l.name, l]));
    const chosen = req.imageIndices ?? images.map((_, i) => i);
    for (const i of chosen) {
      if (!Number.isInteger(i) || i < 0 || i >= images.length) throw new Error(`analyze: image index ${i} is not one of the ${images.length} images`);
    }
    const resume: ResumePlan = planResume(previous, { sha256: model.sha256, settings, images: report.images, layers, imageIndices: chosen });
    report.skippedLayers = [];
    const order = new Map(layers.map((name, i) => [name, i]));
    save();
    emit({ type: 'started', layers, images: images.length, backend: adapter ? `webgpu (${adapterLabel(adapter)})` : backend, ...(resume.reuse.size > 0 ? { reused: [...resume.reuse.keys()] } : {}) });
    if (resume.reason) emit({ type: 'warning', message: resume.reason });
    const skipped = skippedFilesWarning(skippedFiles);
    if (skipped) emit({ type: 'warning', message: skipped });
    for (const message of regions.warnings) emit({ type: 'warning', message });
    const decoders: DecoderSource = {
      settings: settings.decoder ?? DEFAULT_DECODER,
      trainPixels,
      trainingPixelsHash: trainPixels.length > 0 ? hashImages(trainPixels) : '',
      cacheDir: req.decoderCacheDir ?? (req.reportPath ? path.join(path.dirname(path.resolve(req.reportPath)), 'decoders') : undefined),
    };
    const finish = (result: LayerResult, index: number) => {
      report!.layers.push(result);
      report!.layers.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
      report!.run!.firstLayerSeconds ??= (performance.now() - t0) / 1000;
      save();
      emit({ type: 'layerDone', layer: result.name, index, total: layers.length, result });
    };
    for (const [index, name] of layers.entries()) {
      const reused = resume.reuse.get(name);
      if (reused) {
        finish(reused, index);
        continue;
      }
      emit({ type: 'layerStarted', layer: name, index, total: layers.length });
      try {
        // The whole layer in the layer's context: the memory probe (sampleBatch) runs a gradient pass too.
        finish(await withLayerContext(name, model.path, () => analyzeLayer(index, name)), index);
      } catch (e) {
        // A pass that threw inside tf.grad (out of wasm memory, an op without a gradient) left its saved tensors.
        releaseAbandonedTape();
        if (!(e instanceof SkipLayerError)) throw e;
        report.skippedLayers.push({ name, reason: e.reason });
        save();
        emit({ type: 'layerSkipped', layer: name, index, total: layers.length, reason: e.reason });
        emit({ type: 'warning', layer: name, message: `skipped: ${e.reason}` });
      }
    }
    report.status = 'complete';
    save();
    emit({ type: 'done', report });
    return report;

    async function analyzeLayer(index: number, name: string): Promise<LayerResult> {
      // Seeds derive from the layer's place in the model, not in the request: a layer's result does not depend on
      // which other layers were asked for (or on which worker process ran it).
      const seedIndex = model.layers.findIndex((l) => l.name === name);
      // An output layer's softmax probabilities are heavy-tailed under noise (a rare flip of the prediction dominates
      // E||f' - f||^2): by default its pre-softmax scores are analysed where the loader finds them, as the baselines do.
      const logits = settings.outputSoftmax ? null : (model.logitsOf?.(name) ?? null);
      const probe = logits ? logits.probe : model.probe(name);
      /** What ran the search's noisy passes, for the report (absent: the tfjs backend, nothing else tried). */
      let runtime: string | undefined;
      let nativeReason: string | undefined;
      /** The layer on onnxruntime for one image (ONNX models on a CPU backend), or null (the reason kept). */
      const nativeFor = async (pixels: Float32Array): Promise<NativeProbe | null> => {
        if (req.native === 'off' || logits || !model.nativeProbe || !nativeAllowed(settings.backend)) return null;
        const made = await model.nativeProbe(name, toModelUnits(pixels, mapping), nativeThreads(), settings.preview || settings.warmStart ? 'vjp' : 'search');
        if (typeof made === 'string') {
          nativeReason = made;
          return null;
        }
        return made;
      };
      const firstNative = chosen.length > 0 ? await nativeFor(images[chosen[0]].pixels) : null;
      // Large inputs: split each step's noise samples into passes that fit the memory budget (same answer). The
      // budget is tfjs's (its memory probe runs a gradient pass): not needed when onnxruntime runs the passes.
      const tfjsPasses = !firstNative || metrics.has('ru');
      const sampleBatch =
        settings.sampleBatch ??
        (settings.preview ? undefined : tfjsPasses ? passSize(settings.samples, await bytesPerSample(probe, height, width, channels)) : Math.min(settings.samples, NATIVE_PASS));
      const job: LayerJob = { model, name, index: seedIndex, probe, images, height, width, channels, mapping, settings, sampleBatch, ...(req.share ? { share: req.share } : {}), signal: req.signal, emit };
      const perImage: LayerResult['perImage'] = [];
      /** The σ search of one image: learnSid, the preview, or the preview then learnSid (warm start). */
      const sidOf = async (input: SidInput, options: SidOptions): Promise<Omit<SidResult, 'stopReason'> & { stopReason: SidResult['stopReason'] | 'preview' }> => {
        if (!settings.preview && !settings.warmStart) return learnSid(input, options);
        if (settings.preview) return previewAsResult(await previewSigma(input, options), settings.alpha, height * width * channels);
        // Warm start: the first-order shape only, from one linearisation pass (learnSid's level projection and
        // calibration set the level; more passes or a calibrated level did not save steps in bench/warmStart.ts),
        // its delta_f^2 reused (same stream, same value), learnSid's warm minimum; seconds cover both.
        const first = await previewSigma(input, { ...options, measure: false, passes: 1 });
        const warm = await learnSid(input, {
          ...options,
          initialLogSigma: first.sigma.map(Math.log),
          deltaF2: { mean: first.deltaF2, relSe: first.deltaF2RelSe },
        });
        return { ...warm, seconds: first.seconds + warm.seconds };
      };
      for (const imageIndex of chosen) {
        const image = images[imageIndex];
        const t1 = performance.now();
        const native = imageIndex === chosen[0] ? firstNative : await nativeFor(image.pixels);
        if (native) runtime = native.runtime;
        else if (nativeReason) runtime = `tfjs ${settings.backend} (onnxruntime not used: ${nativeReason})`;
        const input = { probe: job.probe, pixels: image.pixels, height, width, channels, mapping, ...(native ? { native } : {}) };
        const options = searchOptions(job, mixSeed(settings.seed, seedIndex, imageIndex), (step, ratio, entropy) =>
          emit({ type: 'step', layer: name, image: imageIndex, step, maxSteps: settings.maxSteps, ratio, entropy, elapsedMs: performance.now() - t1 }),
        );
        const r = await withLayerContext(name, model.path, async () => {
          try {
            return await sidOf(input, options);
          } finally {
            await native?.dispose();
          }
        });
        const entry: LayerResult['perImage'][number] = {
          image: imageIndex,
          sidMean: r.sidMean,
          map: mapRows(r.map, height, width),
          constraintRatio: r.constraintRatio,
          constraintRatioSe: r.constraintRatioSe,
          lambda: r.lambda,
          steps: r.steps,
          saturated: r.saturated,
          seconds: r.seconds,
          deltaF2: r.deltaF2,
          deltaF2RelSe: r.deltaF2RelSe,
          stopReason: r.stopReason,
        };
        entry.quality = sidQuality(entry, settings);
        perImage.push(entry);
      }
      const means = meanStd(perImage.map((p) => p.sidMean));
      const info = byName.get(name)!;
      const result: LayerResult = {
        name,
        kind: info.kind,
        outputShape: info.outputShape,
        sid: { mean: means.mean, std: means.std, total: (means.mean * height * width * channels) },
        perImage,
        quality: layerQuality(perImage.map((p) => p.quality)),
        ...(logits ? { feature: { kind: 'logits' as const, note: logits.note } } : {}),
        ...(runtime ? { runtime } : {}),
      };
      if (metrics.has('concentration')) {
        for (const p of perImage) {
          const mask = regions.masks[p.image];
          p.concentration = mask ? concentration(p.map, mask, height, width) : null;
          if (mask && p.concentration === null && index === 0) {
            emit({ type: 'warning', message: `the object region of ${images[p.image].path} selects ${mask.some((m) => m) ? 'every' : 'no'} pixel at the model's ${height}x${width} input, so its concentration is undefined` });
          }
        }
        result.concentration = summarizeConcentration(perImage.map((p) => p.concentration));
      }
      if (metrics.has('ru')) {
        result.ru = await withLayerContext(name, model.path, () => layerRu(job, perImage, decoders));
        // The RU code passes its at-bound share where it measures one; without it only the ratio and steps are judged.
        for (const p of perImage) if (p.ru && !p.ru.quality) p.ru.quality = ruQuality(p.ru, p.ru.atBound ?? 0, settings);
        result.ruQuality = layerQuality(perImage.map((p) => p.ru?.quality));
      }
      if (metrics.has('baselines')) result.baselines = await withLayerContext(name, model.path, () => layerBaselines(job, perImage, req.targetClass));
      return result;
    }
  } catch (e) {
    if (report) {
      report.status = e instanceof CancelledError ? 'cancelled' : 'failed';
      if (!(e instanceof CancelledError)) report.error = isUserError(e) ? e.message : `internal error: ${(e as Error).message}`;
      report.seconds = (performance.now() - t0) / 1000;
      if (req.reportPath) writeReport(req.reportPath, report);
    }
    throw e;
  } finally {
    model.dispose();
    tf.disposeVariables();
  }
}
