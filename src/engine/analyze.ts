/**
 * One analysis: choose the backend, load the model and images, and learn SID for every requested layer and
 * image, emitting progress events and writing the report after every finished layer (so a failure at layer 7
 * keeps layers 1-6 on disk).
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backend';
import { CancelledError, UserError, isUserError } from './errors';
import type { EventSink } from './events';
import { collectImagePaths, loadImages, type PreparedImage } from './images';
import { makeInputMapping } from './inputMapping';
import { loadModel, type LoadedModel } from './loaders';
import { meanStd, SCHEMA_VERSION, type BaselineMaps, type LayerResult, type ObjectRegion, type Report } from './report';
import { writeReport } from './reportFile';
import { DEFAULT_DECODER, validateSettings, type SettingsInput } from './settings';
import { learnSid } from './sid';
import { concentration, maskRows, summarizeConcentration } from './concentration';
import { matchRegions, readBoxesFile, resolveRegion } from './regions';
import { computeBaselines } from './baselines';
import { learnRu } from './ru/learnRu';
import { trainDecoder } from './ru/trainDecoder';
import { decoderKey, hashImages, loadDecoder, saveDecoder } from './ru/decoderCache';
import { toModelUnits } from './inputMapping';
import { mixSeed } from './rng';
import { VERSION } from './version';

export interface AnalyzeRequest {
  modelPath: string;
  /** Image files or folders. */
  images: string[];
  /** Layer names; all probe-able layers when omitted. */
  layers?: string[];
  settings: SettingsInput;
  /** Model input size for models whose height/width are not fixed. */
  inputSize?: [number, number];
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
  /** Changes the loaded model in memory before analysis (the coherency check rescales weights here). */
  prepareModel?: (model: LoadedModel) => void | Promise<void>;
  onEvent?: EventSink;
  signal?: AbortSignal;
}

export function resolveLayers(model: LoadedModel, requested: string[] | undefined): string[] {
  if (!requested || requested.length === 0) return model.layers.map((l) => l.name);
  const known = new Set(model.layers.map((l) => l.name));
  for (const name of requested) {
    if (!known.has(name)) {
      const sample = model.layers.slice(0, 8).map((l) => l.name).join(', ');
      throw new UserError(
        `no layer named "${name}" in ${model.path}; available: ${sample}${model.layers.length > 8 ? `, ... (${model.layers.length} in all; list them with "infodiscard layers")` : ''}`,
        '--layers',
      );
    }
  }
  // Keep model order, whatever order they were asked in.
  const want = new Set(requested);
  return model.layers.filter((l) => want.has(l.name)).map((l) => l.name);
}

function imageSize(model: LoadedModel, inputSize: [number, number] | undefined, firstImage: string): [number, number] {
  const { height, width } = model.input;
  if (height !== null && width !== null) return [height, width];
  if (inputSize) return inputSize;
  throw new UserError(`the model accepts any image size; give one with --input-size HxW (for example 224x224)`, firstImage);
}

/** Below this held-out PSNR (dB) a layer's RU is flagged: the decoder, not the layer, dominates it. */
export const POOR_DECODER_PSNR = 15;

/** Names the layer (and the model file) in user-facing errors raised while analysing it. */
async function withLayerContext<T>(layer: string, modelPath: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (isUserError(e) && !e.file) throw new UserError(`layer "${layer}": ${e.message}`, modelPath);
    const msg = e instanceof Error ? e.message : String(e);
    const kernel = /Kernel '(\w+)' not registered for backend '(\w+)'/.exec(msg);
    if (kernel) {
      throw new UserError(
        `layer "${layer}" needs the ${kernel[1]} kernel, which the ${kernel[2]} backend lacks; try --backend cpu (slower) or install @tensorflow/tfjs-node`,
        modelPath,
      );
    }
    const grad = /gradient function not found for (\w+)/.exec(msg);
    if (grad) {
      throw new UserError(`layer "${layer}" uses the op ${grad[1]}, which TensorFlow.js cannot differentiate; analyse a layer before it`, modelPath);
    }
    throw e;
  }
}

export async function analyze(req: AnalyzeRequest): Promise<Report> {
  const t0 = performance.now();
  const settingsIn = validateSettings(req.settings);
  const imagePaths = collectImagePaths(req.images);
  const backend = await selectBackend(settingsIn.backend);
  const model = await loadModel(req.modelPath);
  let report: Report | undefined;
  try {
    await req.prepareModel?.(model);
    const layers = resolveLayers(model, req.layers);
    const [height, width] = imageSize(model, req.inputSize, imagePaths[0]);
    const channels = model.input.channels;
    const images: PreparedImage[] = loadImages(imagePaths, height, width, channels);
    // RU decoders train on the analysis images plus --train-images (each file once).
    let trainPixels: Float32Array[] = [];
    if ((settingsIn.metrics ?? []).includes('ru')) {
      const seen = new Set(imagePaths.map((p) => path.resolve(p)));
      const extra = req.trainImages && req.trainImages.length > 0 ? collectImagePaths(req.trainImages).filter((p) => !seen.has(path.resolve(p))) : [];
      trainPixels = [...images.map((im) => im.pixels), ...loadImages(extra, height, width, channels).map((im) => im.pixels)];
    }
    const mapping = makeInputMapping({ inputRange: settingsIn.inputRange, normalize: settingsIn.normalize }, channels);
    const settings = { ...settingsIn, backend };
    const metrics = new Set(settings.metrics ?? ['sid']);

    // Object regions (concentration): matched to images by path or file name, mapped to the model's input size.
    const regionOf: (ObjectRegion | undefined)[] = [];
    const regionMasks: (Uint8Array | undefined)[] = [];
    const warnings: string[] = [];
    if (metrics.has('concentration')) {
      const fromFile = req.boxesFile ? readBoxesFile(req.boxesFile) : undefined;
      // Keys that are paths are relative to the boxes file (bare file names match in any folder).
      const matched = matchRegions(fromFile, images.map((im) => path.resolve(im.path)), {
        fallback: req.defaultRegion,
        file: req.boxesFile,
        cwd: req.boxesFile ? path.dirname(path.resolve(req.boxesFile)) : undefined,
      });
      if (matched.unused.length > 0) {
        warnings.push(`${req.boxesFile}: no analysed image matches ${matched.unused.slice(0, 5).map((k) => `"${k}"`).join(', ')}${matched.unused.length > 5 ? ', ...' : ''}`);
      }
      matched.regions.forEach((region, i) => {
        const im = images[i];
        regionOf[i] = region;
        regionMasks[i] = region ? resolveRegion(region, im.path, im.width, im.height, height, width) : undefined;
      });
      const missing = images.filter((_, i) => !regionMasks[i]).length;
      if (missing > 0) warnings.push(`${missing} of ${images.length} images have no object region; their concentration is left empty`);
    }

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
        ...(regionOf[i] ? { region: regionOf[i], regionMask: maskRows(regionMasks[i]!, height, width) } : {}),
      })),
      layers: [],
      requestedLayers: layers,
      seconds: 0,
    };
    const save = () => {
      report!.seconds = (performance.now() - t0) / 1000;
      if (req.reportPath) writeReport(req.reportPath, report!);
    };
    save();
    req.onEvent?.({ type: 'started', layers, images: images.length, backend });
    for (const message of warnings) req.onEvent?.({ type: 'warning', message });

    const byName = new Map(model.layers.map((l) => [l.name, l]));
    const decoderSettings = settings.decoder ?? DEFAULT_DECODER;
    const decoderCacheDir = req.decoderCacheDir ?? (req.reportPath ? path.join(path.dirname(path.resolve(req.reportPath)), 'decoders') : undefined);
    const trainingPixelsHash = trainPixels.length > 0 ? hashImages(trainPixels) : '';

    /** RU of one layer (paper Sec. 3.2): its decoder (cached or trained), then the RU search per image. */
    const reconstructionUncertainty = async (
      name: string,
      index: number,
      probe: (x: tf.Tensor4D) => tf.Tensor,
      perImage: LayerResult['perImage'],
    ): Promise<NonNullable<LayerResult['ru']>> => {
      const t1 = performance.now();
      const featureShape = tf.tidy(() => probe(tf.tensor4d(toModelUnits(images[0].pixels, mapping), [1, height, width, channels])).shape.slice(1));
      const key = decoderKey({
        modelSha256: model.sha256,
        layer: name,
        settings: decoderSettings,
        trainingPixelsHash,
        mappingDescription: mapping.description,
        height,
        width,
        channels,
        seed: settings.seed,
      });
      let trained = decoderCacheDir ? await loadDecoder(decoderCacheDir, key) : null;
      const cached = trained !== null;
      req.onEvent?.({
        type: 'phase',
        layer: name,
        phase: 'decoder',
        detail: cached ? `decoder from the cache (${key})` : `training the decoder on ${trainPixels.length} images`,
      });
      if (!trained) {
        trained = await trainDecoder({
          probe,
          mapping,
          images: trainPixels,
          height,
          width,
          channels,
          layerName: name,
          featureShape,
          settings: decoderSettings,
          seed: mixSeed(settings.seed, index, 0xdec0de),
          signal: req.signal,
          onEpoch: (epoch, maxEpochs, trainLoss, heldOutLoss) => req.onEvent?.({ type: 'decoderEpoch', layer: name, epoch, maxEpochs, trainLoss, heldOutLoss }),
        });
        if (decoderCacheDir) await saveDecoder(decoderCacheDir, key, trained);
      }
      const decoder = trained;
      try {
        const info = { ...decoder.info, key, cached, seconds: cached ? (performance.now() - t1) / 1000 : decoder.info.seconds };
        if (info.psnr < POOR_DECODER_PSNR) {
          req.onEvent?.({
            type: 'warning',
            layer: name,
            message: `its decoder reconstructs held-out images poorly (${info.psnr.toFixed(1)} dB PSNR), so its RU says more about the decoder than the layer; train on more images (--train-images)`,
          });
        }
        req.onEvent?.({ type: 'phase', layer: name, phase: 'ru' });
        for (const p of perImage) {
          const image = images[p.image];
          const t2 = performance.now();
          const r = await learnRu(
            { probe, decoder: decoder.decoder, pixels: image.pixels, height, width, channels, mapping },
            {
              alpha: settings.alpha,
              tau: settings.tau,
              samples: settings.samples,
              maxSteps: settings.maxSteps,
              sigmaMax: settings.sigmaMax,
              sigmaGrid: settings.sigmaGrid,
              learningRate: settings.learningRate,
              seed: mixSeed(settings.seed, index, p.image, 0x2e),
              signal: req.signal,
              onStep: (step, ratio, entropy) =>
                req.onEvent?.({ type: 'step', metric: 'ru', layer: name, image: p.image, step, maxSteps: settings.maxSteps, ratio, entropy, elapsedMs: performance.now() - t2 }),
            },
          );
          p.ruMap = Array.from({ length: height }, (_, y) => Array.from(r.map.subarray(y * width, (y + 1) * width), (h) => Math.round(h * 1e4) / 1e4));
          p.ruMean = r.ruMean;
          p.ru = {
            constraintRatio: r.constraintRatio,
            constraintRatioSe: r.constraintRatioSe,
            lambda: r.lambda,
            steps: r.steps,
            stopReason: r.stopReason,
            seconds: r.seconds,
          };
          p.decoderPsnr = info.psnr;
        }
        const ru = meanStd(perImage.map((p) => p.ruMean!));
        return { mean: ru.mean, std: ru.std, total: ru.mean * height * width * channels, decoder: info };
      } finally {
        decoder.dispose();
      }
    };
    for (const [index, name] of layers.entries()) {
      req.onEvent?.({ type: 'layerStarted', layer: name, index, total: layers.length });
      const probe = model.probe(name);
      const perImage: LayerResult['perImage'] = [];
      for (const [imageIndex, image] of images.entries()) {
        const t1 = performance.now();
        const r = await withLayerContext(name, model.path, () => learnSid(
          { probe, pixels: image.pixels, height, width, channels, mapping },
          {
            alpha: settings.alpha,
            tau: settings.tau,
            samples: settings.samples,
            maxSteps: settings.maxSteps,
            sigmaMax: settings.sigmaMax,
            sigmaGrid: settings.sigmaGrid,
            learningRate: settings.learningRate,
            seed: mixSeed(settings.seed, index, imageIndex),
            signal: req.signal,
            onStep: (step, ratio, entropy) =>
              req.onEvent?.({ type: 'step', layer: name, image: imageIndex, step, maxSteps: settings.maxSteps, ratio, entropy, elapsedMs: performance.now() - t1 }),
          },
        ));
        perImage.push({
          image: imageIndex,
          sidMean: r.sidMean,
          map: Array.from({ length: height }, (_, y) => Array.from(r.map.subarray(y * width, (y + 1) * width), (h) => Math.round(h * 1e4) / 1e4)),
          constraintRatio: r.constraintRatio,
          constraintRatioSe: r.constraintRatioSe,
          lambda: r.lambda,
          steps: r.steps,
          saturated: r.saturated,
          seconds: r.seconds,
          deltaF2: r.deltaF2,
          deltaF2RelSe: r.deltaF2RelSe,
          stopReason: r.stopReason,
        });
      }
      const means = meanStd(perImage.map((p) => p.sidMean));
      const info = byName.get(name)!;
      const result: LayerResult = {
        name,
        kind: info.kind,
        outputShape: info.outputShape,
        sid: { mean: means.mean, std: means.std, total: (means.mean * height * width * channels) },
        perImage,
      };
      if (metrics.has('concentration')) {
        for (const p of perImage) {
          const mask = regionMasks[p.image];
          p.concentration = mask ? concentration(p.map, mask, height, width) : null;
          if (mask && p.concentration === null && index === 0) {
            req.onEvent?.({ type: 'warning', message: `the object region of ${images[p.image].path} selects ${mask.some((m) => m) ? 'every' : 'no'} pixel at the model's ${height}x${width} input, so its concentration is undefined` });
          }
        }
        result.concentration = summarizeConcentration(perImage.map((p) => p.concentration));
      }
      if (metrics.has('ru')) {
        result.ru = await withLayerContext(name, model.path, () => reconstructionUncertainty(name, index, probe, perImage));
      }
      if (metrics.has('baselines')) {
        req.onEvent?.({ type: 'phase', layer: name, phase: 'baselines' });
        for (const p of perImage) {
          if (req.signal?.aborted) throw new CancelledError();
          const x = tf.tensor4d(toModelUnits(images[p.image].pixels, mapping), [1, height, width, channels]);
          try {
            p.baselines = await withLayerContext(name, model.path, () => computeBaselines(model, name, x, height, width, req.targetClass));
          } finally {
            x.dispose();
          }
        }
        const stat = (get: (b: BaselineMaps) => number | null) => {
          const values = perImage.map((p) => get(p.baselines!));
          return values.every((v): v is number => v !== null) ? meanStd(values) : null;
        };
        result.baselines = {
          gradNorm: stat((b) => b.magnitude.gradNorm)!,
          gradCam: stat((b) => b.magnitude.gradCam),
          cam: stat((b) => b.magnitude.cam),
        };
      }
      report.layers.push(result);
      save();
      req.onEvent?.({ type: 'layerDone', layer: name, index, total: layers.length, result });
    }
    report.status = 'complete';
    save();
    req.onEvent?.({ type: 'done', report });
    return report;
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
