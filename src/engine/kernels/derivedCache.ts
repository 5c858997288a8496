/**
 * Cache of tensors derived from frozen weights (e.g. a filter flipped and re-laid out for a backward conv).
 * Why: the transform is done once per weight instead of once per step, and the derived tensor keeps the same
 * wasm id, so XNNPACK's operator cache (keyed by filter id) also hits and the weights are packed only once.
 *
 * Keyed by the source's dataId object. Entries are freed when the source is freed: the wasm backend's
 * disposeData is wrapped once per backend instance to drop the derived data with it, so nothing leaks when
 * models are disposed. clearDerivedCache() frees everything explicitly.
 */
import type { BackendWasm, Info } from './util';

type Entries = Map<string, Info>;

interface Hooked {
  byId: Map<object, Entries>;
}

const hooked = new WeakMap<BackendWasm, Hooked>();

function stateFor(backend: BackendWasm): Hooked {
  let st = hooked.get(backend);
  if (st) return st;
  const state: Hooked = { byId: new Map() };
  st = state;
  hooked.set(backend, st);
  const original = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean): boolean => {
    const released = original(dataId, force);
    if (released && state.byId.size > 0) {
      const entries = state.byId.get(dataId);
      if (entries) {
        state.byId.delete(dataId);
        for (const d of entries.values()) original(d.dataId, true);
      }
    }
    return released;
  };
  return st;
}

/**
 * Returns the tensor derived from `source` under `key`, making it with `make` on first use. The result is
 * owned by the cache: never free it.
 */
export function derived(backend: BackendWasm, source: Info, key: string, make: () => Info): Info {
  const st = stateFor(backend);
  let entries = st.byId.get(source.dataId);
  let d = entries?.get(key);
  if (d) return d;
  d = make();
  if (!entries) {
    entries = new Map();
    st.byId.set(source.dataId, entries);
  }
  entries.set(key, d);
  return d;
}

/** Frees every cached derived tensor of this backend (e.g. in tests, or to release memory). */
export function clearDerivedCache(backend: BackendWasm): void {
  const st = hooked.get(backend);
  if (!st) return;
  const all = [...st.byId.values()];
  st.byId.clear();
  for (const entries of all) for (const d of entries.values()) backend.disposeData(d.dataId, true);
}

/** Number of cached derived tensors (for tests). */
export function derivedCacheSize(backend: BackendWasm): number {
  const st = hooked.get(backend);
  let n = 0;
  if (st) for (const e of st.byId.values()) n += e.size;
  return n;
}
