/**
 * The pixel-map section: layer and image selectors, the heatmaps of the selected layer x image with hover readout
 * and legends, facts about the selection, and a strip of small multiples (every layer, same image, same scale).
 *
 * Schema 2 adds, for the selected layer and image, the RU map and the baseline maps (gradient norm, Grad-CAM,
 * CAM) beside the SID map, all the same size, each with its own colour scale and legend (SID and RU: one scale
 * for the whole report, in nats; baselines: the map's own range, as they have no fixed units). The object region
 * is outlined on every map. In the VS Code panel the user draws the object box on the SID map (mouse drag, or the
 * keyboard: arrows, Enter, Escape, Delete); concentration is recomputed live from the stored SID maps of every
 * layer (regionEdit.ts) and the box is handed to the host to persist.
 */
import { shortLayerLabels } from '../../src/engine/layerLabel';
import { boundPrefix, isFlagged, qualityNote } from '../../src/engine/quality';
import { modelRectToBox, type Box } from '../../src/engine/concentration';
import { describeGeometry } from '../../src/engine/geometry';
import { POOR_DECODER_PSNR, type Report } from '../../src/engine/report';
import type { Scale } from './colormap';
import { button, dropdown } from './controls';
import { cardHead, el, fmt, fmtNum, isNum } from './dom';
import { basename, decoderPsnr, findLayer, globalScale, layerOrder, perImage, poorDecoderText, ruScale, scaleOf, sigmaOf, skippedReason, type Grid } from './data';
import { composeHeatmap, drawLegend, fitSize, paintHeatmap } from './heatmap';
import { regionMaskOf, restoreRegion, setRegion, snapshotRegion, type RegionSnapshot } from './regionEdit';
import type { Theme } from './theme';

export const MAIN_SIZE = 280;
const THUMB_SIZE = 100;

export interface MapsState {
  layer: string | null;
  image: number;
  opacity: number;
}

/** Drawing object boxes (the VS Code panel); without it the maps are read-only. */
export interface RegionHandlers {
  /** While a box is drawn or after it was put back: the report changed in place; refresh what shows concentration. */
  preview(): void;
  /** The box is final: [x, y, w, h] in original-image pixels, or null to clear. The report already holds it. */
  commit(image: number, bbox: Box | null): void;
}

export interface MapsHandlers {
  select(change: Partial<MapsState>): void;
  region?: RegionHandlers;
}

function fmtSigma(s: number): string {
  if (!Number.isFinite(s)) return '—';
  return s >= 0.01 && s < 1000 ? s.toPrecision(3) : s.toExponential(2);
}

const SOURCE_TEXT: Record<string, string> = { 'boxes-file': 'from the boxes file', cli: 'from the command line', panel: 'drawn in the panel' };

/** One heatmap of the selected layer x image. */
interface MapView {
  key: 'sid' | 'ru' | 'gradNorm' | 'gradCam' | 'cam';
  title: string;
  map: number[][];
  scale: Scale;
  caption: string;
  /** Readout text for a value (SID's is special-cased). */
  value(v: number): string;
  canvas: HTMLCanvasElement;
  source?: HTMLCanvasElement;
  grid?: Grid;
  size?: { width: number; height: number };
}

function rangeText(scale: Scale, digits: number): string {
  return `${scale.min.toFixed(digits)} … ${scale.max.toFixed(digits)}`;
}

function compactRange(scale: Scale): string {
  return `${fmtNum(scale.min, 3)} … ${fmtNum(scale.max, 3)}`;
}

export function renderMaps(report: Report, state: MapsState, theme: Theme, handlers: MapsHandlers): HTMLElement {
  const card = el('section', { class: 'id-card', 'aria-label': 'Pixel SID maps' });
  const scale: Scale = globalScale(report);
  const layer0 = findLayer(report, state.layer) ?? report.layers[0];
  const imageIndex0 = Math.min(Math.max(0, state.image), Math.max(0, report.images.length - 1));
  const result0 = layer0 ? perImage(layer0, imageIndex0) : undefined;

  // Schema 2 maps of the selection, in a fixed order; only what the report has.
  const extras: Omit<MapView, 'canvas'>[] = [];
  if (result0) {
    const ru = ruScale(report);
    if (Array.isArray(result0.ruMap) && result0.ruMap.length && ru) {
      extras.push({ key: 'ru', title: 'RU Ĥ (nats)', map: result0.ruMap, scale: ru, caption: `pixel RU Ĥ, nats (${rangeText(ru, 2)})`, value: (v) => `RU Ĥ = ${v.toFixed(3)} nats` });
    }
    const b = result0.baselines;
    const baselineMaps: [MapView['key'], string, number[][] | null | undefined][] = [
      ['gradNorm', 'gradient norm', b?.gradNorm],
      ['gradCam', 'Grad-CAM', b?.gradCam],
      ['cam', 'CAM', b?.cam],
    ];
    for (const [key, title, map] of baselineMaps) {
      const s = map && map.length ? scaleOf([map]) : null;
      if (!map || !s) continue;
      extras.push({ key, title: `${title}${isNum(b?.targetClass) ? ` (class ${b!.targetClass})` : ''}`, map, scale: s, caption: `${title}, this map's scale (${compactRange(s)})`, value: (v) => `${title} = ${fmtNum(v, 3)}` });
    }
  }
  const multi = extras.length > 0;
  card.append(...cardHead(multi ? 'Pixel maps' : 'Pixel SID maps', multi
    ? 'SID and RU in nats (brighter = more of that pixel discarded; one scale per metric for every layer and image). Baseline maps have no fixed units: each is shown on its own scale.'
    : 'Brighter = the layer discards more of that pixel. One colour scale for every layer and image.'));
  if (report.layers.length === 0) {
    card.append(el('p', { class: 'id-empty' }, report.status === 'running' ? 'Waiting for the first layer to finish…' : 'No layer results in this report.'));
    return card;
  }
  const layer = layer0!;
  const imageIndex = imageIndex0;
  const info = report.images[imageIndex];

  // Controls.
  const order = layerOrder(report);
  // Short labels for long exported names ("layer1.1/relu_1"), the full name as the tooltip.
  const labels = shortLayerLabels(report.layers.map((l) => l.name));
  const layerSelect = dropdown('Layer', report.layers.map((l, i) => ({ value: l.name, label: `${order.indexOf(l.name) + 1}. ${labels[i]}`, selected: l === layer, ...(labels[i] !== l.name ? { title: l.name } : {}) })),
    (value) => handlers.select({ layer: value }));
  const imageCount = Math.max(report.images.length, layer.perImage.length);
  const imageSelect = dropdown('Image', Array.from({ length: imageCount }, (_, i) => {
    const im = report.images[i];
    return { value: String(i), label: `${i + 1}. ${im ? basename(im.path) : `image ${i + 1}`}`, selected: i === imageIndex };
  }), (value) => handlers.select({ image: Number(value) }));
  const opacity = el('input', { type: 'range', min: 0, max: 100, step: 5, value: Math.round(state.opacity * 100), 'aria-label': 'Map opacity over the image' });
  opacity.addEventListener('input', () => handlers.select({ opacity: Number(opacity.value) / 100 }));
  const controls = el('div', { class: 'id-controls' },
    el('label', null, 'Layer', layerSelect),
    el('label', null, 'Image', imageSelect),
    el('label', { title: '0 = image only, 100 = map only' }, 'Map opacity', opacity),
  );
  card.append(controls);

  // Box drawing: the panel, schema 2, a finished analysis, and an image whose original size is known.
  const schema2 = (Number(report.schemaVersion) || 1) >= 2;
  const wantsEdit = !!handlers.region && schema2;
  const editable = wantsEdit && report.status !== 'running' && !!info && info.width > 0 && info.height > 0;

  // Heatmaps + legends + readout.
  const result = result0;
  const heat = el('div', { class: 'id-heat' });
  const main = el('div', { class: 'id-heat-main' });
  const side = el('div', { class: 'id-side' });
  heat.append(main, side);
  card.append(heat);
  const big = el('canvas', { class: 'id-heat-canvas', role: 'img', 'data-map': 'sid', 'aria-label': `Pixel SID map of layer ${layer.name}, image ${imageIndex + 1}` });
  const readout = el('div', { class: 'id-readout idle' });
  const hint = 'Hover the map for per-pixel values.';
  readout.textContent = hint;
  const concentrationValue = el('span');
  const showConcentration = (): void => {
    const c = perImage(layer, imageIndex)?.concentration;
    concentrationValue.textContent = isNum(c) ? `${c.toFixed(3)} nats/pixel` : regionMaskOf(report, imageIndex) ? '— (no value)' : '— (no object region)';
  };
  if (result && result.map.length) {
    const views: MapView[] = [
      { key: 'sid', title: 'SID H (nats)', map: result.map, scale, caption: `pixel SID H, nats (${rangeText(scale, 2)})`, value: (v) => `H = ${v.toFixed(3)} nats`, canvas: big },
      ...extras.map((x) => ({ ...x, canvas: el('canvas', { class: 'id-heat-canvas', role: 'img', 'data-map': x.key, 'aria-label': `${x.title} map of layer ${layer.name}, image ${imageIndex + 1}` }) })),
    ];
    const target = views.length <= 2 ? MAIN_SIZE : views.length <= 4 ? 240 : 200;
    for (const v of views) {
      const { canvas: source, grid } = composeHeatmap({ map: v.map, image: info, scale: v.scale, opacity: state.opacity });
      v.source = source;
      v.grid = grid;
      v.size = fitSize(grid, target);
    }
    const sid = views[0];
    const grid = sid.grid!;
    const size = sid.size!;
    const stored = (): { mask: Uint8Array; grid: Grid; dashed?: boolean } | null => {
      const mask = regionMaskOf(report, imageIndex);
      return mask && mask.length === grid.width * grid.height ? { mask, grid } : null;
    };
    let region: { mask: Uint8Array; grid: Grid; dashed?: boolean } | null = stored();
    let cell: { x: number; y: number } | null = null;
    const paintAll = (): void => {
      for (const v of views) paintHeatmap(v.canvas, v.source!, v.size!.width, v.size!.height, cell ? { ...cell, grid: v.grid! } : null, { region });
    };
    const showCell = (x: number, y: number): void => {
      const h = result.map[y]?.[x];
      readout.classList.remove('idle');
      let text = isNum(h) ? `pixel (${x}, ${y}): H = ${h.toFixed(3)} nats, sigma = ${fmtSigma(sigmaOf(h))}` : `pixel (${x}, ${y}): no value`;
      for (const v of views.slice(1)) {
        const value = v.map[y]?.[x];
        text += `; ${isNum(value) ? v.value(value) : `${v.title}: no value`}`;
      }
      readout.textContent = text;
      cell = { x, y };
      paintAll();
    };
    const cellAt = (e: MouseEvent, clamp: boolean): { x: number; y: number } | null => {
      const rect = (e.currentTarget as HTMLCanvasElement).getBoundingClientRect();
      let x = Math.floor(((e.clientX - rect.left) / rect.width) * grid.width);
      let y = Math.floor(((e.clientY - rect.top) / rect.height) * grid.height);
      if (clamp) {
        x = Math.min(grid.width - 1, Math.max(0, x));
        y = Math.min(grid.height - 1, Math.max(0, y));
      }
      return x < 0 || y < 0 || x >= grid.width || y >= grid.height ? null : { x, y };
    };
    const idle = (): void => {
      readout.classList.add('idle');
      readout.textContent = hint;
      cell = null;
      paintAll();
    };

    // Drawing the object box (editable only).
    let drawing: { anchor: { x: number; y: number }; end: { x: number; y: number }; snap: RegionSnapshot; pointer?: number; from?: { x: number; y: number }; moved: boolean } | null = null;
    const boxOf = (a: { x: number; y: number }, b: { x: number; y: number }): Box =>
      modelRectToBox(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x) + 1, Math.max(a.y, b.y) + 1, info!.width, info!.height, grid.height, grid.width, info!.geometry);
    const preview = (): void => {
      if (!drawing) return;
      const problem = setRegion(report, imageIndex, boxOf(drawing.anchor, drawing.end), 'panel');
      if (!problem) {
        const mask = regionMaskOf(report, imageIndex);
        region = mask ? { mask, grid, dashed: true } : null;
      }
      showConcentration();
      handlers.region!.preview();
      paintAll();
    };
    const cancel = (): void => {
      if (!drawing) return;
      restoreRegion(report, drawing.snap);
      drawing = null;
      region = stored();
      big.removeAttribute('data-drawing');
      showConcentration();
      handlers.region!.preview();
      paintAll();
    };
    const commit = (): void => {
      if (!drawing) return;
      const box = boxOf(drawing.anchor, drawing.end);
      drawing = null;
      big.removeAttribute('data-drawing');
      region = stored();
      paintAll();
      handlers.region!.commit(imageIndex, box);
    };
    const start = (at: { x: number; y: number }, pointer?: number, from?: { x: number; y: number }): void => {
      drawing = { anchor: at, end: at, snap: snapshotRegion(report, imageIndex), pointer, from, moved: false };
      big.setAttribute('data-drawing', '');
    };

    big.addEventListener('mousemove', (e) => {
      if (drawing?.pointer !== undefined) return;
      const at = cellAt(e, false);
      if (at) showCell(at.x, at.y);
    });
    big.addEventListener('mouseleave', () => {
      if (!drawing) idle();
    });
    if (editable) {
      big.tabIndex = 0;
      big.classList.add('id-editable');
      big.setAttribute('aria-label', `Pixel SID map of layer ${layer.name}, image ${imageIndex + 1}. Draw the object box: drag, or arrow keys and Enter to start and finish; Escape cancels, Delete clears the box.`);
      big.addEventListener('pointerdown', (e) => {
        if (e.button !== 0 || drawing) return;
        const at = cellAt(e, true);
        if (!at) return;
        e.preventDefault();
        big.focus();
        try {
          big.setPointerCapture(e.pointerId);
        } catch {
          // synthetic events: no capture, the window listeners below still see the drag
        }
        start(at, e.pointerId, { x: e.clientX, y: e.clientY });
      });
      big.addEventListener('pointermove', (e) => {
        if (!drawing || drawing.pointer !== e.pointerId) return;
        const at = cellAt(e, true)!;
        if (drawing.from && Math.hypot(e.clientX - drawing.from.x, e.clientY - drawing.from.y) >= 3) drawing.moved = true;
        showCell(at.x, at.y);
        if (at.x === drawing.end.x && at.y === drawing.end.y && region?.dashed) return;
        if (!drawing.moved) return;
        drawing.end = at;
        preview();
      });
      big.addEventListener('pointerup', (e) => {
        if (!drawing || drawing.pointer !== e.pointerId) return;
        // A click without a drag is not a box.
        if (!drawing.moved) cancel();
        else commit();
      });
      big.addEventListener('pointercancel', () => cancel());
      big.addEventListener('keydown', (e) => {
        const k = e.key;
        if (k === 'Escape') {
          if (drawing) {
            e.preventDefault();
            e.stopPropagation();
            cancel();
          }
          return;
        }
        const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
        if (moves[k]) {
          e.preventDefault();
          if (drawing?.pointer !== undefined) return;
          const step = e.shiftKey ? 4 : 1;
          const from = drawing?.end ?? cell ?? { x: Math.floor(grid.width / 2), y: Math.floor(grid.height / 2) };
          const at = { x: Math.min(grid.width - 1, Math.max(0, from.x + moves[k][0] * step)), y: Math.min(grid.height - 1, Math.max(0, from.y + moves[k][1] * step)) };
          showCell(at.x, at.y);
          if (drawing) {
            drawing.end = at;
            preview();
          }
          return;
        }
        if (k === 'Enter' || k === ' ') {
          e.preventDefault();
          if (drawing?.pointer !== undefined) return;
          if (!drawing) {
            const at = cell ?? { x: Math.floor(grid.width / 2), y: Math.floor(grid.height / 2) };
            showCell(at.x, at.y);
            start(at);
            preview();
          } else {
            commit();
          }
          return;
        }
        if ((k === 'Delete' || k === 'Backspace') && !drawing && report.images[imageIndex]?.region) {
          e.preventDefault();
          handlers.region!.commit(imageIndex, null);
        }
      });
      big.addEventListener('blur', () => {
        if (drawing && drawing.pointer === undefined) cancel();
      });
    }
    paintAll();
    if (region) big.setAttribute('data-region', JSON.stringify(report.images[imageIndex]?.region?.bbox ?? null));

    const legendOf = (v: MapView): HTMLElement => {
      const legend = el('canvas', { role: 'img', 'aria-label': `Colour scale from ${fmtNum(v.scale.min, 3)} to ${fmtNum(v.scale.max, 3)}${v.key === 'sid' || v.key === 'ru' ? ' nats' : ''}` });
      drawLegend(legend, v.scale, theme, v.size!.width);
      return el('div', { class: 'id-legend' }, legend, el('div', { class: 'id-legend-caption' }, v.caption));
    };
    if (!multi) {
      const legend = el('canvas', { role: 'img', 'aria-label': `Colour scale from ${scale.min.toFixed(3)} to ${scale.max.toFixed(3)} nats` });
      drawLegend(legend, scale, theme, size.width);
      main.append(big, el('div', { class: 'id-legend' }, legend, el('div', { class: 'id-legend-caption' }, `pixel SID H, nats (${scale.min.toFixed(2)} … ${scale.max.toFixed(2)})`)), readout);
    } else {
      const row = el('div', { class: 'id-maps-row' });
      for (const v of views) {
        v.canvas.addEventListener('mousemove', (e) => {
          if (v.key === 'sid' || drawing) return;
          const at = cellAt(e, false);
          if (at) showCell(at.x, at.y);
        });
        if (v.key !== 'sid') v.canvas.addEventListener('mouseleave', () => idle());
        const figure = el('figure', { class: 'id-map' }, el('figcaption', null, v.title), v.canvas, legendOf(v));
        figure.style.width = `${v.size!.width}px`;
        row.append(figure);
      }
      main.append(row, readout);
    }

    // The object box: how to draw it (panel), or where the outline came from (read-only page).
    const regionInfo = report.images[imageIndex]?.region;
    if (wantsEdit && !editable && report.status === 'running') {
      main.append(el('p', { class: 'id-hint id-box-hint' }, 'Object boxes can be drawn once the analysis has finished.'));
    } else if (editable) {
      const bar = el('div', { class: 'id-box-bar' },
        el('p', { class: 'id-hint id-box-hint' },
          'Draw the object box on the SID map: drag, or focus the map and use the arrow keys with Enter to start and finish (Escape cancels). ',
          'Concentration is recomputed for every layer and saved in the report.'),
      );
      if (regionInfo) {
        bar.append(el('div', { class: 'id-box-row' },
          el('span', { class: 'id-muted' }, regionText(regionInfo)),
          button('Clear box', 'Remove the object box of this image (Delete on the focused map)', () => handlers.region!.commit(imageIndex, null))));
      }
      main.append(bar);
    } else if (regionInfo && region) {
      const where = SOURCE_TEXT[regionInfo.source];
      main.append(el('p', { class: 'id-hint id-box-hint' }, `Outlined: the object region${where ? ` (${where})` : ''}. Concentration compares the SID outside it with inside.`));
    }
  } else {
    main.append(el('p', { class: 'id-empty' }, `No map for image ${imageIndex + 1} in this layer.`));
  }

  // Facts about the selection.
  const facts = el('dl', { class: 'id-facts' });
  const fact = (k: string, v: string | Node, title?: string, cls?: string): void => {
    facts.append(el('dt', null, k), el('dd', title || cls ? { title, class: cls } : null, v));
  };
  fact('Layer', `${layer.name}${layer.kind ? ` (${layer.kind})` : ''}`);
  fact('Image', report.images[imageIndex]?.path ?? `#${imageIndex + 1}`);
  const fitted = report.images[imageIndex] ? describeGeometry(report.images[imageIndex]) : undefined;
  if (fitted) fact('Fitted', fitted, 'How the file became the model input; the maps and the box are on the image as the model saw it');
  if (result) {
    const alpha = report.settings?.alpha;
    // Schema 3: the value's quality verdict; a bound prints with "≥", a flagged value is hatched with its reason.
    const q = result.quality && typeof result.quality === 'object' && typeof result.quality.verdict === 'string' ? result.quality : undefined;
    fact('SID mean', `${boundPrefix(q)}${fmt(result.sidMean, 3)} nats/pixel${isFlagged(q) ? ' ⚠' : ''}`, isFlagged(q) ? qualityNote(q) : undefined, isFlagged(q) ? 'warn flagged' : undefined);
    if (q) fact('Quality', q.verdict === 'ok' ? `ok${q.reason ? ` (${q.reason})` : ''}` : `${q.verdict}${q.bound ? ' (a lower bound)' : ''}: ${q.reason ?? ''}`, undefined, isFlagged(q) ? 'warn' : undefined);
    if (layer.feature && typeof layer.feature === 'object' && layer.feature.kind === 'logits') fact('Feature', `logits: ${layer.feature.note ?? 'the scores before the softmax'}`, 'An output softmax is analysed at its pre-softmax scores by default (--output-softmax for the probabilities)');
    fact('σ at the mean', fmtSigma(sigmaOf(result.sidMean)), 'exp(H − ½ log 2πe): the noise std a typical pixel tolerates, [0,1] pixel units');
    const ratioOk = !(isNum(alpha) && isNum(result.constraintRatio)) || Math.abs(result.constraintRatio / alpha - 1) <= 0.05;
    fact('Constraint ratio', `${fmt(result.constraintRatio, 4)} ± ${fmt(result.constraintRatioSe, 4)}${isNum(alpha) ? ` (α = ${alpha})${ratioOk ? '' : ' ⚠'}` : ''}`);
    fact('λ', fmtNum(result.lambda, 4));
    const stop = { maxSteps: 'hit max steps', converged: 'converged', preview: 'first-order preview, not optimised' } as const;
    fact('Steps', `${fmt(result.steps, 0)}${result.stopReason && result.stopReason in stop ? ` (${stop[result.stopReason]})` : ''}`);
    fact('Saturated pixels', fmt(result.saturated, 0));
    fact('Δf²', `${fmtNum(result.deltaF2, 4)}${isNum(result.deltaF2RelSe) ? ` (±${(result.deltaF2RelSe * 100).toFixed(1)} %)` : ''}`);
    fact('Time', `${fmt(result.seconds, 1)} s`);
    // Schema 2.
    const ruQ = result.ru && typeof result.ru === 'object' && result.ru.quality && typeof result.ru.quality.verdict === 'string' ? result.ru.quality : undefined;
    if (isNum(result.ruMean)) {
      fact('RU mean', `${boundPrefix(ruQ)}${fmt(result.ruMean, 3)} nats/pixel${isFlagged(ruQ) ? ' ⚠' : ''}`,
        isFlagged(ruQ) ? qualityNote(ruQ) : 'Reconstruction uncertainty: mean over input units of Ĥ = ½ log E[(x − x̂′)²] + C', isFlagged(ruQ) ? 'warn flagged' : undefined);
    }
    const psnr = isNum(result.decoderPsnr) ? result.decoderPsnr : decoderPsnr(layer);
    if (psnr !== null && (isNum(result.ruMean) || layer.ru)) {
      const poor = poorDecoderText(layer) ?? (psnr < POOR_DECODER_PSNR ? 'decoder reconstructs poorly: RU is not trustworthy here' : null);
      fact('Decoder PSNR', `${psnr.toFixed(1)} dB${poor ? ' ⚠' : ''}`, poor ?? 'held-out reconstruction PSNR of this layer\'s decoder', poor ? 'warn' : undefined);
      const dec = layer.ru?.decoder;
      if (dec) {
        // Schema 3 says how the decoder bounds and was trained; older decoders were unbounded and trained on clean images.
        const head = dec.output === 'clamp' ? 'output clamped to the [0,1] pixel range' : 'unbounded linear output (older report)';
        const training = dec.training === 'noisy' ? 'trained on clean and noisy images' : 'trained on clean images only';
        fact('Decoder', `${head}; ${training}`, 'RU = ½ log E[(x − g(h(x′)))²] + C: a bounded decoder trained where the RU search evaluates it measures the layer, not the decoder\'s extrapolation');
      }
    }
    const ru = result.ru;
    if (ru && typeof ru === 'object') {
      const ruOk = !(isNum(alpha) && isNum(ru.constraintRatio)) || Math.abs(ru.constraintRatio / alpha - 1) <= 0.05;
      fact('RU constraint ratio', `${fmt(ru.constraintRatio, 4)} ± ${fmt(ru.constraintRatioSe, 4)}${ruOk ? '' : ' ⚠'}; ${fmt(ru.steps, 0)} steps${ru.stopReason === 'maxSteps' ? ' (hit max steps)' : ''}`);
      if (isNum(ru.atBound) && ru.atBound > 0) {
        fact('RU at the range bound', `${(ru.atBound * 100).toFixed(1)} % of input units`, 'units whose reconstruction error is at least 90 % of the largest the [0,1] range allows: their RU is a lower bound', ru.atBound > 0.5 ? 'warn' : undefined);
      }
    }
    if ('concentration' in result || regionMaskOf(report, imageIndex) || editable) {
      showConcentration();
      fact('Concentration', concentrationValue, 'Eq. 7: mean pixel SID outside the object minus inside, nats; positive = the layer discards more of the background');
    }
    const b = result.baselines;
    if (b && typeof b === 'object') {
      const m = b.magnitude ?? { gradNorm: NaN, gradCam: null, cam: null };
      fact('Baselines', `class ${isNum(b.targetClass) ? b.targetClass : '?'}; magnitude: gradient norm ${fmtNum(m.gradNorm, 3)}, Grad-CAM ${fmtNum(m.gradCam, 3)}, CAM ${fmtNum(m.cam, 3)}`,
        'Mean of each baseline map before upsampling; "—": the layer has no such map');
      // A token feature [tokens, dim]: how its tokens were mapped to the image, or why there is no Grad-CAM/CAM.
      if (typeof b.note === 'string' && b.note) fact('Baseline maps', b.note, 'Grad-CAM and CAM need a spatial map: a token sequence is drawn on its patch grid when the model declares one (ViT: class token dropped)');
    }
  }
  side.append(facts);

  // Small multiples: every layer in model order, for the selected image, on the shared scale.
  card.append(el('div', { class: 'id-strip-title' }, `All layers, image ${imageIndex + 1}`));
  const strip = el('div', { class: 'id-strip' });
  let firstPending = true;
  for (const name of order) {
    const l = findLayer(report, name);
    const p = perImage(l, imageIndex);
    const label = `${order.indexOf(name) + 1}. ${name}`;
    if (!l || !p || !p.map.length) {
      const skipped = !l ? skippedReason(report, name) : undefined;
      const pendingText = skipped !== undefined ? 'skipped' : !l && report.status === 'running' && firstPending ? 'running…' : !l ? 'pending' : 'no map';
      if (!l && skipped === undefined) firstPending = false;
      const b = el('button', { class: 'id-thumb', type: 'button', disabled: true, title: skipped !== undefined ? `${name}: skipped: ${skipped}` : name },
        el('div', { class: 'id-pending' }, pendingText), el('span', { class: 'id-thumb-name' }, label), el('span', { class: 'id-thumb-value' }, ' '));
      strip.append(b);
      continue;
    }
    const { canvas: source, grid } = composeHeatmap({ map: p.map, image: report.images[imageIndex], scale, opacity: state.opacity });
    const size = fitSize(grid, THUMB_SIZE);
    const c = el('canvas');
    paintHeatmap(c, source, size.width, size.height);
    const pq = p.quality && typeof p.quality === 'object' && typeof p.quality.verdict === 'string' ? p.quality : undefined;
    const b = el('button', { class: `id-thumb${l === layer ? ' selected' : ''}${isFlagged(pq) ? ' flagged' : ''}`, type: 'button', title: isFlagged(pq) ? `${name}\n${qualityNote(pq)}` : name, 'aria-pressed': l === layer ? 'true' : 'false' },
      c, el('span', { class: 'id-thumb-name' }, label), el('span', { class: 'id-thumb-value' }, `${boundPrefix(pq)}${fmt(p.sidMean, 3)} nats/px${isFlagged(pq) ? ' ⚠' : ''}`));
    b.addEventListener('click', () => handlers.select({ layer: name }));
    strip.append(b);
  }
  card.append(strip);
  return card;
}

function regionText(region: { bbox?: number[]; mask?: string; source?: string }): string {
  const where = SOURCE_TEXT[region.source ?? ''] ?? '';
  if (Array.isArray(region.bbox) && region.bbox.length === 4) {
    const [x, y, w, h] = region.bbox.map((v) => (!isNum(v) ? '?' : Number.isInteger(v) ? String(v) : v.toFixed(1)));
    return `Box x ${x}, y ${y}, ${w} × ${h} px (original image)${where ? `, ${where}` : ''}`;
  }
  return `Object mask${where ? ` ${where}` : ''}`;
}
