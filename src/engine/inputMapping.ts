/**
 * How [0,1] pixels map to the model's input: model = pixel * scale[c] + offset[c], per channel. Noise is learnt
 * in pixel units (so figures compare across models) and converted through `scale` before entering the model.
 * With channel order 'bgr' the model's channel c reads the pixel's channel C-1-c (RGB images, BGR models such as
 * Caffe's); scale, offset, mean and std are then in the MODEL's channel order (B, G, R). The per-pixel sigma is
 * shared by a pixel's channels, so only the pixels, never the noise, need the swap.
 */
import { UserError } from './errors';
import type { AnalysisSettings, InputMapping } from './report';

export interface MappingOptions {
  inputRange?: [number, number] | null;
  normalize?: { mean: number[]; std: number[] } | null;
  /** 'bgr': swap the image's RGB channels before the mapping (3-channel models only). Default 'rgb'. */
  channelOrder?: 'rgb' | 'bgr';
}

/** The mapping options a run's settings give: range or normalisation, and the profile's channel order. */
export function mappingOptions(s: Pick<AnalysisSettings, 'inputRange' | 'normalize' | 'preprocessing'>): MappingOptions {
  return { inputRange: s.inputRange, normalize: s.normalize, channelOrder: s.preprocessing?.channelOrder ?? 'rgb' };
}

export function makeInputMapping(opts: MappingOptions, channels: number): InputMapping {
  const m = makeMapping(opts, channels);
  if (opts.channelOrder !== 'bgr') return m;
  if (channels !== 3) throw new UserError(`BGR channel order needs a 3-channel model, this one has ${channels}`, '--bgr');
  return { ...m, description: `${m.description} bgr`, channelOrder: 'bgr' };
}

function makeMapping(opts: MappingOptions, channels: number): InputMapping {
  if (opts.inputRange && opts.normalize) {
    throw new UserError('give either --input-range or --normalize, not both', '--normalize');
  }
  if (opts.normalize) {
    const mean = perChannel(opts.normalize.mean, channels, '--normalize mean');
    const std = perChannel(opts.normalize.std, channels, '--normalize std');
    std.forEach((s) => {
      if (!(s > 0)) throw new UserError(`std values must be positive, got ${s}`, '--normalize');
    });
    return {
      description: `normalize mean ${mean.join(',')} std ${std.join(',')}`,
      scale: std.map((s) => 1 / s),
      offset: mean.map((m, c) => -m / std[c]),
    };
  }
  const [lo, hi] = opts.inputRange ?? [0, 1];
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi <= lo) {
    throw new UserError(`input range must be two numbers lo,hi with lo < hi, got ${lo},${hi}`, '--input-range');
  }
  return {
    description: `range ${lo},${hi}`,
    scale: new Array(channels).fill(hi - lo),
    offset: new Array(channels).fill(lo),
  };
}

function perChannel(values: number[], channels: number, what: string): number[] {
  if (values.length === 1) return new Array(channels).fill(values[0]);
  if (values.length !== channels) {
    throw new UserError(`${what} needs 1 or ${channels} values (the model has ${channels} channels), got ${values.length}`, '--normalize');
  }
  return values;
}

/** Maps pixels (H*W*C, [0,1]) into model units in place-free fashion. */
export function toModelUnits(pixels: Float32Array, mapping: InputMapping): Float32Array {
  const c = mapping.scale.length;
  const out = new Float32Array(pixels.length);
  if (mapping.channelOrder === 'bgr') {
    // Model channel k reads image channel c-1-k: i - k is the pixel's first value.
    for (let i = 0; i < pixels.length; i++) {
      const k = i % c;
      out[i] = pixels[i - k + (c - 1 - k)] * mapping.scale[k] + mapping.offset[k];
    }
    return out;
  }
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] * mapping.scale[i % c] + mapping.offset[i % c];
  return out;
}
