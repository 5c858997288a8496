/**
 * A mistake in what the user gave us (a file, an option). Its message is one line that names the file or option
 * and says what to do; front ends print it without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Thrown inside the engine when the caller's AbortSignal fires; partial results have already been emitted. */
export class CancelledError extends Error {
  constructor() {
    super('analysis cancelled');
    this.name = 'CancelledError';
  }
}

/**
 * A layer that cannot be analysed on its own terms (its output does not change under noise, or TensorFlow.js
 * cannot differentiate it): the analysis skips it, records `reason` in report.skippedLayers and goes on.
 */
export class SkipLayerError extends UserError {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SkipLayerError';
  }
}

/** The reason recorded when a layer's feature does not move under the pixel noise. */
export const ZERO_RESPONSE_REASON = 'its output does not change when the input changes (delta_f^2 = 0), so SID is undefined';

/** The reason recorded when a layer's feature is not finite under the pixel noise (NaN or Infinity). */
export const NON_FINITE_REASON = 'its output is not finite (NaN or Infinity) under the pixel noise, so SID is undefined; check the input range';
