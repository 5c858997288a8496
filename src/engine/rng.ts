/**
 * Seeded random numbers. Gaussian noise is drawn here (xoshiro128** + Box-Muller into a Float32Array) rather than
 * with tf.randomNormal, so that results are identical on every backend for a given seed.
 */

/** 32-bit hash of a list of integers (seed, layer, image, purpose ...) into an independent stream seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h ^= p >>> 0;
    h = Math.imul(h, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
  }
  return h >>> 0;
}

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // splitmix32 to spread the seed over the state
    let x = seed >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next() | 1;
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    return (this.nextU32() + 0.5) / 4294967296;
  }

  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const theta = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** Fills `out` with independent standard normal values. */
  fillNormal(out: Float32Array): Float32Array {
    return this.fillNormalRange(out, 0, out.length);
  }

  /**
   * fillNormal for the values at [from, to) only: the stream advances exactly as fillNormal(out) would (the same
   * values land in that range, and the next draw is the same), but pairs outside it only step the generator,
   * without the logarithm and trigonometry (a team member's share of a batch: about a tenth of the cost).
   * The rest of `out` is left as it was.
   */
  fillNormalRange(out: Float32Array, from: number, to: number): Float32Array {
    const n = out.length;
    let i = 0;
    for (; i + 1 < n; i += 2) {
      if (i + 1 < from || i >= to) {
        this.nextU32();
        this.nextU32();
        continue;
      }
      const r = Math.sqrt(-2 * Math.log(this.uniform()));
      const theta = 2 * Math.PI * this.uniform();
      out[i] = r * Math.cos(theta);
      out[i + 1] = r * Math.sin(theta);
    }
    if (i < n) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
