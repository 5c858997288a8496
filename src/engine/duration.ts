/** Durations for people: "42.3 s", "3 min 05 s", "1 h 02 min". Rounded once, then split (never "3 min 60 s"). Pure. */
export function formatDuration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 59.95) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600 - 0.5) {
    const s = Math.round(seconds);
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  }
  const m = Math.round(seconds / 60);
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
