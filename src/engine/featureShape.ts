/**
 * How a layer's feature shape reads to a user (CLI layer listing, layer picker, panel table). A rank-2 feature
 * [tokens, dim] is a token sequence (a ViT block's output), not an image-shaped map: it reads "197 tokens × 768",
 * with the patch grid when the model declares one ("1 class token + 14×14 patches"). Other shapes keep the plain
 * "[h, w, c]" / "[c, h, w]" list. Pure (no tfjs, no vscode): the webview bundles it.
 */

/** A token sequence's layout as a loader declares it (LoadedModel.tokenGrid). */
export interface TokenGrid {
  skip: number;
  height: number;
  width: number;
}

const dim = (d: unknown) => (d === null || d === undefined ? '?' : String(d));

/** True for a token sequence [tokens, dim] (batch dimension left out). */
export function isTokenShape(shape: readonly unknown[]): boolean {
  return shape.length === 2;
}

export function featureShapeText(shape: readonly unknown[], grid?: TokenGrid | null): string {
  if (!isTokenShape(shape)) return `[${shape.map(dim).join(', ')}]`;
  const [n, d] = shape;
  const layout = grid ? ` (${grid.skip > 0 ? `${grid.skip} class token${grid.skip > 1 ? 's' : ''} + ` : ''}${grid.height}×${grid.width} patches)` : '';
  return `${dim(n)} tokens × ${dim(d)}${layout}`;
}
