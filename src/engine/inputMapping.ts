/**
 * How [0,1] pixels map to the model's input: model = pixel * scale[c] + offset[c], per channel. Noise is learnt
 * in pixel units (so figures compare across models) and converted through `scale` before entering the model.
 */
import { UserError } from './errors';
import type { InputMapping } from './report';

export interface MappingOptions {
  inputRange?: [number, number] | null;
  normalize?: { mean: number[]; std: number[] } | null;
}

export function makeInputMapping(opts: MappingOptions, channels: number): InputMapping {
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
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] * mapping.scale[i % c] + mapping.offset[i % c];
  return out;
}
