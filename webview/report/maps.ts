/**
 * The pixel-map section: layer and image selectors, the big heatmap with hover readout, the legend, facts about the
 * selected layer x image, and a strip of small multiples (every layer, same image, same scale).
 */
import type { Report } from '../../src/engine/report';
import type { Scale } from './colormap';
import { dropdown } from './controls';
import { cardHead, el, fmt, fmtNum, isNum } from './dom';
import { basename, findLayer, globalScale, layerOrder, perImage, sigmaOf } from './data';
import { composeHeatmap, drawLegend, fitSize, paintHeatmap } from './heatmap';
import type { Theme } from './theme';

export const MAIN_SIZE = 280;
const THUMB_SIZE = 100;

export interface MapsState {
  layer: string | null;
  image: number;
  opacity: number;
}

export interface MapsHandlers {
  select(change: Partial<MapsState>): void;
}

function fmtSigma(s: number): string {
  if (!Number.isFinite(s)) return '—';
  return s >= 0.01 && s < 1000 ? s.toPrecision(3) : s.toExponential(2);
}

export function renderMaps(report: Report, state: MapsState, theme: Theme, handlers: MapsHandlers): HTMLElement {
  const card = el('section', { class: 'id-card', 'aria-label': 'Pixel SID maps' });
  const scale: Scale = globalScale(report);
  card.append(...cardHead('Pixel SID maps', 'Brighter = the layer discards more of that pixel. One colour scale for every layer and image.'));
  if (report.layers.length === 0) {
    card.append(el('p', { class: 'id-empty' }, report.status === 'running' ? 'Waiting for the first layer to finish…' : 'No layer results in this report.'));
    return card;
  }
  const layer = findLayer(report, state.layer) ?? report.layers[0];
  const imageIndex = Math.min(Math.max(0, state.image), Math.max(0, report.images.length - 1));

  // Controls.
  const order = layerOrder(report);
  const layerSelect = dropdown('Layer', report.layers.map((l) => ({ value: l.name, label: `${order.indexOf(l.name) + 1}. ${l.name}`, selected: l === layer })),
    (value) => handlers.select({ layer: value }));
  const imageCount = Math.max(report.images.length, layer.perImage.length);
  const imageSelect = dropdown('Image', Array.from({ length: imageCount }, (_, i) => {
    const info = report.images[i];
    return { value: String(i), label: `${i + 1}. ${info ? basename(info.path) : `image ${i + 1}`}`, selected: i === imageIndex };
  }), (value) => handlers.select({ image: Number(value) }));
  const opacity = el('input', { type: 'range', min: 0, max: 100, step: 5, value: Math.round(state.opacity * 100), 'aria-label': 'Map opacity over the image' });
  opacity.addEventListener('input', () => handlers.select({ opacity: Number(opacity.value) / 100 }));
  card.append(el('div', { class: 'id-controls' },
    el('label', null, 'Layer', layerSelect),
    el('label', null, 'Image', imageSelect),
    el('label', { title: '0 = image only, 100 = map only' }, 'Map opacity', opacity),
  ));

  // Big heatmap + legend + readout.
  const result = perImage(layer, imageIndex);
  const heat = el('div', { class: 'id-heat' });
  const main = el('div', { class: 'id-heat-main' });
  const side = el('div', { class: 'id-side' });
  heat.append(main, side);
  card.append(heat);
  const big = el('canvas', { class: 'id-heat-canvas', role: 'img', 'aria-label': `Pixel SID map of layer ${layer.name}, image ${imageIndex + 1}` });
  const readout = el('div', { class: 'id-readout idle' });
  const hint = 'Hover the map for per-pixel values.';
  readout.textContent = hint;
  if (result && result.map.length) {
    const { canvas: source, grid } = composeHeatmap({ map: result.map, image: report.images[imageIndex], scale, opacity: state.opacity });
    const size = fitSize(grid, MAIN_SIZE);
    paintHeatmap(big, source, size.width, size.height);
    big.addEventListener('mousemove', (e) => {
      const rect = big.getBoundingClientRect();
      const x = Math.floor(((e.clientX - rect.left) / rect.width) * grid.width);
      const y = Math.floor(((e.clientY - rect.top) / rect.height) * grid.height);
      if (x < 0 || y < 0 || x >= grid.width || y >= grid.height) return;
      const h = result.map[y]?.[x];
      readout.classList.remove('idle');
      readout.textContent = isNum(h)
        ? `pixel (${x}, ${y}): H = ${h.toFixed(3)} nats, sigma = ${fmtSigma(sigmaOf(h))}`
        : `pixel (${x}, ${y}): no value`;
      paintHeatmap(big, source, size.width, size.height, { x, y, grid });
    });
    big.addEventListener('mouseleave', () => {
      readout.classList.add('idle');
      readout.textContent = hint;
      paintHeatmap(big, source, size.width, size.height);
    });
    const legend = el('canvas', { role: 'img', 'aria-label': `Colour scale from ${scale.min.toFixed(3)} to ${scale.max.toFixed(3)} nats` });
    drawLegend(legend, scale, theme, size.width);
    main.append(big, el('div', { class: 'id-legend' }, legend, el('div', { class: 'id-legend-caption' }, `pixel SID H, nats (${scale.min.toFixed(2)} … ${scale.max.toFixed(2)})`)), readout);
  } else {
    main.append(el('p', { class: 'id-empty' }, `No map for image ${imageIndex + 1} in this layer.`));
  }

  // Facts about the selection.
  const facts = el('dl', { class: 'id-facts' });
  const fact = (k: string, v: string | Node, title?: string): void => {
    facts.append(el('dt', null, k), el('dd', title ? { title } : null, v));
  };
  fact('Layer', `${layer.name}${layer.kind ? ` (${layer.kind})` : ''}`);
  fact('Image', report.images[imageIndex]?.path ?? `#${imageIndex + 1}`);
  if (result) {
    const alpha = report.settings?.alpha;
    fact('SID mean', `${fmt(result.sidMean, 3)} nats/pixel`);
    fact('σ at the mean', fmtSigma(sigmaOf(result.sidMean)), 'exp(H − ½ log 2πe): the noise std a typical pixel tolerates, [0,1] pixel units');
    const ratioOk = !(isNum(alpha) && isNum(result.constraintRatio)) || Math.abs(result.constraintRatio / alpha - 1) <= 0.05;
    fact('Constraint ratio', `${fmt(result.constraintRatio, 4)} ± ${fmt(result.constraintRatioSe, 4)}${isNum(alpha) ? ` (α = ${alpha})${ratioOk ? '' : ' ⚠'}` : ''}`);
    fact('λ', fmtNum(result.lambda, 4));
    fact('Steps', `${fmt(result.steps, 0)}${result.stopReason ? ` (${result.stopReason === 'maxSteps' ? 'hit max steps' : 'converged'})` : ''}`);
    fact('Saturated pixels', fmt(result.saturated, 0));
    fact('Δf²', `${fmtNum(result.deltaF2, 4)}${isNum(result.deltaF2RelSe) ? ` (±${(result.deltaF2RelSe * 100).toFixed(1)} %)` : ''}`);
    fact('Time', `${fmt(result.seconds, 1)} s`);
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
      const pendingText = !l && report.status === 'running' && firstPending ? 'running…' : !l ? 'pending' : 'no map';
      if (!l) firstPending = false;
      const b = el('button', { class: 'id-thumb', type: 'button', disabled: true, title: name },
        el('div', { class: 'id-pending' }, pendingText), el('span', { class: 'id-thumb-name' }, label), el('span', { class: 'id-thumb-value' }, ' '));
      strip.append(b);
      continue;
    }
    const { canvas: source, grid } = composeHeatmap({ map: p.map, image: report.images[imageIndex], scale, opacity: state.opacity });
    const size = fitSize(grid, THUMB_SIZE);
    const c = el('canvas');
    paintHeatmap(c, source, size.width, size.height);
    const b = el('button', { class: `id-thumb${l === layer ? ' selected' : ''}`, type: 'button', title: name, 'aria-pressed': l === layer ? 'true' : 'false' },
      c, el('span', { class: 'id-thumb-name' }, label), el('span', { class: 'id-thumb-value' }, `${fmt(p.sidMean, 3)} nats/px`));
    b.addEventListener('click', () => handlers.select({ layer: name }));
    strip.append(b);
  }
  card.append(strip);
  return card;
}
