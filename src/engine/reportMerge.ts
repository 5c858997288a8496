/**
 * One report from several partial ones over the same model, images and settings (the CLI's parallel workers
 * each analyse some layers): the layers in requested order, the worst status, the first error.
 */
import type { Report, ReportStatus } from './report';

const SEVERITY: Record<ReportStatus, number> = { complete: 0, running: 1, cancelled: 2, failed: 3 };

export function mergeReports(parts: readonly Report[], requestedLayers: readonly string[], seconds: number): Report {
  if (parts.length === 0) throw new Error('mergeReports: no reports');
  const first = parts[0];
  const byName = new Map(parts.flatMap((r) => r.layers.map((l) => [l.name, l] as const)));
  const status = parts.map((r) => r.status).reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a), 'complete' as ReportStatus);
  const error = parts.find((r) => r.error)?.error;
  const createdAt = parts.map((r) => r.createdAt).sort()[0];
  return {
    ...first,
    createdAt,
    status,
    ...(error ? { error } : {}),
    layers: requestedLayers.flatMap((name) => (byName.has(name) ? [byName.get(name)!] : [])),
    requestedLayers: [...requestedLayers],
    seconds,
  };
}
