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
