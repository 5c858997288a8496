/** Which layers an analysis runs: the requested names checked against the model, kept in model order. No tfjs. */
import { UserError } from './errors';
import type { ProbeLayer } from './loaders/types';

export function resolveLayers(model: { path: string; layers: readonly ProbeLayer[] }, requested: string[] | undefined): string[] {
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
