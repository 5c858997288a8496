/** Which layers an analysis runs: the requested names checked against the model, kept in model order. No tfjs. */
import { UserError } from './errors';
import type { FeatureLayout, ProbeLayer } from './loaders/types';
import { recommendLayers } from './recommendedLayers';

/** `--layers all`: every probe-able layer. */
export const ALL_LAYERS = 'all';
/** `--layers recommended` (the CLI's default): the block outputs of recommendedLayers.ts. */
export const RECOMMENDED_LAYERS = 'recommended';

interface ResolvableModel {
  path: string;
  /** `recommended`: set where the listing already decided it (the worker's layer list); else computed here. */
  layers: readonly (ProbeLayer & { recommended?: boolean })[];
  featureLayout?(name: string): FeatureLayout;
}

/** The recommended layer names of a model, in model order. */
export function recommendedNames(model: ResolvableModel): string[] {
  if (model.layers.some((l) => l.recommended !== undefined)) return model.layers.filter((l) => l.recommended).map((l) => l.name);
  return recommendLayers(model.layers, (name) => model.featureLayout?.(name) ?? 'nhwc').names;
}

export function resolveLayers(model: ResolvableModel, requested: string[] | undefined): string[] {
  if (!requested || requested.length === 0) return model.layers.map((l) => l.name);
  const known = new Set(model.layers.map((l) => l.name));
  // The two set names, unless the model has a layer called so.
  if (requested.length === 1 && !known.has(requested[0])) {
    if (requested[0] === ALL_LAYERS) return model.layers.map((l) => l.name);
    if (requested[0] === RECOMMENDED_LAYERS) {
      const names = recommendedNames(model);
      // A model with no block output found (nothing but passive layers) is analysed whole.
      return names.length > 0 ? names : model.layers.map((l) => l.name);
    }
  }
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
