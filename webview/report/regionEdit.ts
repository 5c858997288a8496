/**
 * Setting or clearing an image's object region in a report and recomputing concentration (paper Eq. 7) from the
 * stored SID maps of every layer. PURE (no DOM, no node, no vscode): the webview runs it live while a box is
 * dragged, and the extension (src/extension/panel.ts) runs the same code to persist the box in the report file.
 * The geometry and the formula are the engine's own (src/engine/concentration.ts).
 */
import { boxProblem, concentration, maskRows, regionMaskFromBox, summarizeConcentration, type Box } from '../../src/engine/concentration';
import type { ImageInfo, LayerResult, ObjectRegion, PerImageResult, Report } from '../../src/engine/report';

export interface ModelGrid {
  /** Rows (H) and columns (W) of the SID maps: the model's input size. */
  height: number;
  width: number;
}

function isRows(v: unknown): v is number[][] {
  return Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r));
}

/** The image's result in a layer: matched by `image`, else by position. */
export function perImageOf(layer: LayerResult, image: number): PerImageResult | undefined {
  const list = Array.isArray(layer.perImage) ? layer.perImage : [];
  return list.find((p) => p && p.image === image) ?? (list[image] && (list[image].image === undefined || list[image].image === image) ? list[image] : undefined);
}

/** The grid the SID maps of image `image` share (the first layer with a map decides); null when there is none. */
export function modelGridOf(report: Report, image: number): ModelGrid | null {
  for (const l of report.layers ?? []) {
    const p = perImageOf(l, image);
    if (p && isRows(p.map)) {
      const width = p.map[0].length;
      if (width > 0) return { height: p.map.length, width };
    }
  }
  const mask = report.images?.[image]?.regionMask;
  if (isRows(mask) && mask[0].length > 0) return { height: mask.length, width: mask[0].length };
  return null;
}

/** Why `bbox` cannot be the region of `image` ("" when it can): the box's own checks, then that it meets the image. */
export function regionProblem(report: Report, image: number, bbox: readonly number[]): string {
  const info: ImageInfo | undefined = report.images?.[image];
  if (!info) return `there is no image ${image + 1}`;
  const problem = boxProblem(bbox);
  if (problem) return `the box ${problem}`;
  if (!(info.width > 0 && info.height > 0)) return 'the image size is not recorded in the report';
  if (bbox[0] >= info.width || bbox[1] >= info.height) return `the box lies outside the ${info.width}x${info.height} image`;
  const grid = modelGridOf(report, image);
  if (!grid) return 'the report has no SID map for this image';
  if (!regionMaskFromBox(bbox, info.width, info.height, grid.height, grid.width, info.geometry).some((v) => v)) return 'the box selects no model pixel';
  return '';
}

/** The region of an image as the model sees it (H x W 0/1, flat), from its stored mask or else its box. */
export function regionMaskOf(report: Report, image: number): Uint8Array | null {
  const info = report.images?.[image];
  const grid = modelGridOf(report, image);
  if (!info || !grid) return null;
  const stored = info.regionMask;
  if (isRows(stored) && stored.length === grid.height && stored.every((r) => r.length === grid.width)) {
    const flat = new Uint8Array(grid.height * grid.width);
    stored.forEach((row, y) => row.forEach((v, x) => (flat[y * grid.width + x] = v ? 1 : 0)));
    return flat;
  }
  const bbox = info.region?.bbox;
  if (Array.isArray(bbox) && boxProblem(bbox) === '' && info.width > 0 && info.height > 0) {
    return regionMaskFromBox(bbox, info.width, info.height, grid.height, grid.width, info.geometry);
  }
  return null;
}

/** Concentration of one layer for one image under `mask` (null without a usable map). */
export function layerConcentration(layer: LayerResult, image: number, mask: Uint8Array, grid: ModelGrid): number | null {
  const p = perImageOf(layer, image);
  if (!p || !isRows(p.map) || p.map.length !== grid.height || !p.map.every((r) => r.length === grid.width)) return null;
  return concentration(p.map, mask, grid.height, grid.width);
}

/** What `setRegion` changed, to put back (a drag cancelled with Escape, a write the extension refused). */
export interface RegionSnapshot {
  image: number;
  region: ObjectRegion | undefined;
  regionMask: number[][] | undefined;
  perImage: (number | null | undefined)[];
  layers: (LayerResult['concentration'] | undefined)[];
  hadPerImage: boolean[];
  hadLayer: boolean[];
}

export function snapshotRegion(report: Report, image: number): RegionSnapshot {
  const info = report.images[image];
  const copy = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
  return {
    image,
    region: copy(info?.region),
    regionMask: copy(info?.regionMask),
    perImage: report.layers.map((l) => perImageOf(l, image)?.concentration),
    hadPerImage: report.layers.map((l) => { const p = perImageOf(l, image); return !!p && 'concentration' in p; }),
    layers: report.layers.map((l) => copy(l.concentration)),
    hadLayer: report.layers.map((l) => 'concentration' in l),
  };
}

export function restoreRegion(report: Report, snap: RegionSnapshot): void {
  const info = report.images[snap.image];
  if (info) {
    if (snap.region === undefined) delete info.region;
    else info.region = snap.region;
    if (snap.regionMask === undefined) delete info.regionMask;
    else info.regionMask = snap.regionMask;
  }
  report.layers.forEach((l, i) => {
    const p = perImageOf(l, snap.image);
    if (p) {
      if (snap.hadPerImage[i]) p.concentration = snap.perImage[i];
      else delete p.concentration;
    }
    if (snap.hadLayer[i]) l.concentration = snap.layers[i];
    else delete l.concentration;
  });
}

/**
 * Sets image `image`'s region to `bbox` (original-image pixels; `source` says where it came from) or clears it
 * (`bbox` null), then recomputes that image's concentration in every layer and every layer's summary over the
 * images with a region. Mutates `report`. Returns "" or why nothing was changed.
 */
export function setRegion(report: Report, image: number, bbox: Box | readonly number[] | null, source: ObjectRegion['source'] = 'panel'): string {
  const info = report.images?.[image];
  if (!info) return `there is no image ${image + 1}`;
  let mask: Uint8Array | null = null;
  const grid = modelGridOf(report, image);
  if (bbox) {
    const problem = regionProblem(report, image, bbox);
    if (problem) return problem;
    mask = regionMaskFromBox(bbox, info.width, info.height, grid!.height, grid!.width, info.geometry);
    info.region = { bbox: [bbox[0], bbox[1], bbox[2], bbox[3]], source };
    info.regionMask = maskRows(mask, grid!.height, grid!.width);
  } else {
    delete info.region;
    delete info.regionMask;
  }
  for (const layer of report.layers) {
    const p = perImageOf(layer, image);
    if (p) p.concentration = mask && grid ? layerConcentration(layer, image, mask, grid) : null;
    layer.concentration = summarizeConcentration((Array.isArray(layer.perImage) ? layer.perImage : []).map((q) => q?.concentration));
  }
  return '';
}
