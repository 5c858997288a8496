/** Analysis settings: defaults from the paper and range checks with messages that say what to do. */
import { UserError } from './errors';
import type { BackendChoice } from './backend';
import type { AnalysisSettings } from './report';

export type SettingsInput = Omit<AnalysisSettings, 'backend'> & { backend: BackendChoice };

export const DEFAULT_SETTINGS: SettingsInput = {
  alpha: 1.5,
  tau: 0.01,
  samples: 16,
  maxSteps: 200,
  seed: 0,
  backend: 'auto',
  inputRange: null,
  normalize: null,
  sigmaGrid: null,
  sigmaMax: 1.0,
  learningRate: 0.05,
};

function check(ok: boolean, option: string, message: string): void {
  if (!ok) throw new UserError(message, option);
}

export function validateSettings(s: SettingsInput): SettingsInput {
  check(Number.isFinite(s.alpha) && s.alpha > 0 && s.alpha <= 100, '--alpha', `must be a number in (0, 100], got ${s.alpha}`);
  check(Number.isFinite(s.tau) && s.tau > 0 && s.tau <= 1, '--tau', `is a pixel-noise variance and must be in (0, 1], got ${s.tau}`);
  check(Number.isInteger(s.samples) && s.samples >= 1 && s.samples <= 1024, '--samples', `must be a whole number from 1 to 1024, got ${s.samples}`);
  check(Number.isInteger(s.maxSteps) && s.maxSteps >= 1 && s.maxSteps <= 100000, '--max-steps', `must be a whole number from 1 to 100000, got ${s.maxSteps}`);
  check(Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= 0xffffffff, '--seed', `must be a whole number from 0 to 4294967295, got ${s.seed}`);
  check(Number.isFinite(s.sigmaMax) && s.sigmaMax > 0 && s.sigmaMax <= 100, '--sigma-max', `must be a number in (0, 100] (pixel units), got ${s.sigmaMax}`);
  check(s.sigmaGrid === null || (Number.isInteger(s.sigmaGrid) && s.sigmaGrid >= 2 && s.sigmaGrid <= 4096), '--sigma-grid', `must be a whole number from 2 to 4096, got ${s.sigmaGrid}`);
  check(Number.isFinite(s.learningRate) && s.learningRate > 0 && s.learningRate <= 1, '--learning-rate', `must be a number in (0, 1], got ${s.learningRate}`);
  check(Math.sqrt(s.alpha * s.tau) <= s.sigmaMax, '--sigma-max', `must be at least sqrt(alpha * tau) = ${Math.sqrt(s.alpha * s.tau).toPrecision(3)}, the starting noise level`);
  return s;
}
