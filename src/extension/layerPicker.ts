/**
 * Analyze Model's layer choice: a multi-select list of the model's layers grouped by block (a block ends at a
 * recommended layer, engine/recommendedLayers.ts), output shapes as descriptions, the recommended layers checked
 * (or, when there is one, the last choice for this model, remembered in workspaceState), and three shortcuts first:
 * the recommended set, every layer, the last choice. The setting infodiscard.layers skips the question.
 */
import * as vscode from 'vscode';
import type { ModelLayer, ModelLayers } from '../protocol';
import type { ExtensionSettings } from './config';
import type { Ctx } from './ctx';
import { plainMessage } from './messages';
import { featureShapeText } from '../engine/featureShape';
import { layerLabel, shortLayerLabels } from '../engine/layerLabel';

export type Shortcut = 'recommended' | 'all' | 'last';

export interface LayerPickItem extends vscode.QuickPickItem {
  layer?: string;
  shortcut?: Shortcut;
}

/** workspaceState key of a model's last layer choice. */
export function lastChoiceKey(modelPath: string): string {
  return `infodiscard.layers:${modelPath}`;
}

const shape = (l: ModelLayer): string => featureShapeText(l.outputShape, l.tokenGrid);

/** The picker's items: the shortcuts, then a separator per block and its layers (checked: last choice, else recommended). */
export function layerPickItems(listed: ModelLayers, last: readonly string[] | undefined): LayerPickItem[] {
  const names = new Set(listed.layers.map((l) => l.name));
  const lastValid = last?.filter((n) => names.has(n));
  const recommended = listed.layers.filter((l) => l.recommended).map((l) => l.name);
  const checked = new Set(lastValid && lastValid.length > 0 ? lastValid : recommended);
  const preview = (list: string[]) => (list.length > 4 ? `${list.slice(0, 4).map((n) => layerLabel(n)).join(', ')}, …` : list.map((n) => layerLabel(n)).join(', '));
  const items: LayerPickItem[] = [
    { label: `$(star) Recommended layers (${recommended.length} of ${listed.layers.length})`, description: preview(recommended), detail: 'The outputs of the blocks: after residual merges, each resolution stage\'s last activation, the global pool, the output; in a transformer, each encoder block\'s output', shortcut: 'recommended', alwaysShow: true },
    { label: `$(list-flat) All ${listed.layers.length} layers`, description: 'paddings, BatchNorms and activations included', shortcut: 'all', alwaysShow: true },
  ];
  if (lastValid && lastValid.length > 0) {
    items.push({ label: `$(history) Last choice for this model (${lastValid.length} layers)`, description: preview(lastValid), shortcut: 'last', alwaysShow: true });
  }
  let block: string | undefined;
  // Short labels for long exported names ("layer1.1/relu_1"); the full name is the item's detail (searched too).
  const labels = shortLayerLabels(listed.layers.map((l) => l.name));
  listed.layers.forEach((l, i) => {
    const b = l.block ?? '';
    if (b !== block) {
      block = b;
      items.push({ label: b ? `block ending at ${layerLabel(b)}` : 'layers', kind: vscode.QuickPickItemKind.Separator });
    }
    const why = l.recommended ? `recommended: ${l.why ?? 'block output'}` : '';
    const full = labels[i] !== l.name ? l.name : '';
    const detail = [full, why].filter(Boolean).join(' · ');
    items.push({
      label: labels[i],
      description: `${l.kind} ${shape(l)}`,
      ...(detail ? { detail } : {}),
      picked: checked.has(l.name),
      layer: l.name,
    });
  });
  return items;
}

/**
 * The layers the user chose: a shortcut when one is checked (the first, in list order), else the checked layers in
 * model order. undefined when nothing was chosen.
 */
export function resolveLayerPick(picked: readonly LayerPickItem[], listed: ModelLayers, last: readonly string[] | undefined): string[] | undefined {
  const shortcut = picked.find((p) => p.shortcut)?.shortcut;
  const all = listed.layers.map((l) => l.name);
  if (shortcut === 'all') return all;
  if (shortcut === 'recommended') return listed.layers.filter((l) => l.recommended).map((l) => l.name);
  if (shortcut === 'last' && last) return all.filter((n) => last.includes(n));
  const chosen = new Set(picked.filter((p) => p.layer).map((p) => p.layer!));
  const names = all.filter((n) => chosen.has(n));
  return names.length > 0 ? names : undefined;
}

/** The model's layers from a worker (the model loads there); throws what the worker says. */
export async function listModelLayers(ctx: Ctx, modelPath: string, label: string, settings: ExtensionSettings): Promise<ModelLayers | undefined> {
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: `infodiscard: reading the layers of ${plainMessage(label)}` },
    () => ctx.pool(settings.workers).listLayers({ modelPath, backend: settings.analysis.backend, checkRescale: false }),
  );
  return result.status === 'complete' ? result.model : undefined;
}

/**
 * Which layers Analyze Model analyses, by the infodiscard.layers setting: every layer (undefined: the engine's
 * default), the recommended set, or the user's pick (remembered per model). 'cancel' when the picker was dismissed.
 */
export async function chooseLayers(ctx: Ctx, modelPath: string, label: string, settings: ExtensionSettings): Promise<string[] | undefined | 'cancel'> {
  if (settings.layers === 'all') return undefined;
  const listed = await listModelLayers(ctx, modelPath, label, settings);
  if (!listed) return 'cancel';
  if (settings.layers === 'recommended') return listed.layers.filter((l) => l.recommended).map((l) => l.name);
  const key = lastChoiceKey(modelPath);
  const last = ctx.extension.workspaceState.get<string[]>(key);
  const picked = await vscode.window.showQuickPick(layerPickItems(listed, last), {
    canPickMany: true,
    title: `infodiscard: layers of ${plainMessage(label)} to analyse`,
    placeHolder: 'Check layers, or one of the first three items (recommended, all, last choice); set "infodiscard.layers" to stop asking',
    matchOnDescription: true,
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  if (!picked) return 'cancel';
  const names = resolveLayerPick(picked as LayerPickItem[], listed, last);
  if (!names) {
    void vscode.window.showWarningMessage('infodiscard: no layer was checked; check at least one layer, or pick "Recommended layers".');
    return 'cancel';
  }
  await ctx.extension.workspaceState.update(key, names);
  return names;
}
