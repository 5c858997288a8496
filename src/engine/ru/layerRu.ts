/**
 * RU of one layer (paper Sec. 3.2): its decoder, from the cache or trained on the training images, then the RU
 * search on every image. Fills perImage[].ruMap/ruMean/ru/decoderPsnr and returns the layer's summary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { toModelUnits } from '../inputMapping';
import { mapRows, searchOptions, type LayerJob } from '../layerJob';
import { meanStd, POOR_DECODER_PSNR, type DecoderSettings, type LayerResult } from '../report';
import { mixSeed } from '../rng';
import { decoderKey, loadDecoder, saveDecoder } from './decoderCache';
import { learnRu } from './learnRu';
import { trainDecoder } from './trainDecoder';

export interface DecoderSource {
  settings: DecoderSettings;
  /** Training images ([0,1] pixels at the model's input size): the analysis images plus --train-images. */
  trainPixels: Float32Array[];
  /** hashImages(trainPixels), part of the cache key. */
  trainingPixelsHash: string;
  /** Where decoders are kept and reused; none: always train. */
  cacheDir?: string;
}

export async function layerRu(job: LayerJob, perImage: LayerResult['perImage'], source: DecoderSource): Promise<NonNullable<LayerResult['ru']>> {
  const { name, index, images, height, width, channels, mapping, settings, emit } = job;
  // The decoder reads a feature map as [h, w, c]: an NCHW feature (ONNX convolutions) is transposed to NHWC first.
  const nchw = job.model.featureLayout?.(name) === 'nchw';
  const probe = nchw
    ? (x: tf.Tensor4D) => {
        const f = job.probe(x);
        return f.rank === 4 ? tf.transpose(f, [0, 2, 3, 1]) : f;
      }
    : job.probe;
  const t0 = performance.now();
  // Noisy decoder training uses the scale of the RU search's feature change: isotropic pixel noise of variance α·τ
  // moves the feature by α·δ_f² on average, the constraint the search holds.
  const noiseStd = Math.sqrt(settings.alpha * settings.tau);
  const featureShape = tf.tidy(() => probe(tf.tensor4d(toModelUnits(images[0].pixels, mapping), [1, height, width, channels])).shape.slice(1));
  const key = decoderKey({
    modelSha256: job.model.sha256,
    layer: name,
    settings: source.settings,
    trainingPixelsHash: source.trainingPixelsHash,
    mappingDescription: mapping.description,
    height,
    width,
    channels,
    seed: settings.seed,
    noiseStd: source.settings.training === 'noisy' ? noiseStd : undefined,
  });
  let trained = source.cacheDir ? await loadDecoder(source.cacheDir, key) : null;
  const cached = trained !== null;
  emit({
    type: 'phase',
    layer: name,
    phase: 'decoder',
    detail: cached ? `decoder from the cache (${key})` : `training the decoder on ${source.trainPixels.length} images`,
  });
  if (!trained) {
    trained = await trainDecoder({
      probe,
      mapping,
      images: source.trainPixels,
      height,
      width,
      channels,
      layerName: name,
      noiseStd,
      featureShape,
      settings: source.settings,
      seed: mixSeed(settings.seed, index, 0xdec0de),
      signal: job.signal,
      onEpoch: (epoch, maxEpochs, trainLoss, heldOutLoss) => emit({ type: 'decoderEpoch', layer: name, epoch, maxEpochs, trainLoss, heldOutLoss }),
    });
    if (source.cacheDir) await saveDecoder(source.cacheDir, key, trained);
  }
  const decoder = trained;
  try {
    const info = { ...decoder.info, key, cached, seconds: cached ? (performance.now() - t0) / 1000 : decoder.info.seconds };
    if (info.psnr < POOR_DECODER_PSNR) {
      emit({
        type: 'warning',
        layer: name,
        message: `its decoder reconstructs held-out images poorly (${info.psnr.toFixed(1)} dB PSNR), so its RU says more about the decoder than the layer; train on more images (--train-images)`,
      });
    }
    emit({ type: 'phase', layer: name, phase: 'ru' });
    for (const p of perImage) {
      const t1 = performance.now();
      const r = await learnRu(
        { probe, decoder: decoder.decoder, pixels: images[p.image].pixels, height, width, channels, mapping },
        searchOptions(job, mixSeed(settings.seed, index, p.image, 0x2e), (step, ratio, entropy) =>
          emit({ type: 'step', metric: 'ru', layer: name, image: p.image, step, maxSteps: settings.maxSteps, ratio, entropy, elapsedMs: performance.now() - t1 }),
        ),
      );
      p.ruMap = mapRows(r.map, height, width);
      p.ruMean = r.ruMean;
      p.ru = {
        constraintRatio: r.constraintRatio,
        constraintRatioSe: r.constraintRatioSe,
        lambda: r.lambda,
        steps: r.steps,
        stopReason: r.stopReason,
        seconds: r.seconds,
        atBound: r.atBound,
      };
      p.decoderPsnr = info.psnr;
    }
    const ru = meanStd(perImage.map((p) => p.ruMean!));
    return { mean: ru.mean, std: ru.std, total: ru.mean * height * width * channels, decoder: info };
  } finally {
    decoder.dispose();
  }
}
