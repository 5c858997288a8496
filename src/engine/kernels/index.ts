/**
 * Kernels and gradient fixes that make input gradients work, correctly and fast, on the tfjs wasm backend.
 * Call registerWasmKernels() after tf.setBackend('wasm') (calling it again is harmless).
 *
 *   Conv2DBackpropInput                 replaced  stock is a scalar loop; ours is XNNPACK convs + interleave
 *   MaxPoolGrad                         replaced  stock is wrong when a window's max is negative
 *   AvgPoolGrad                         replaced  stock is a slow scalar loop, and wrong at 'same' borders
 *   ResizeNearestNeighborGrad           replaced  stock is wrong for batch > 1
 *   ResizeBilinearGrad                  wrapped   stock ignores half_pixel_centers (TF2 resize default)
 *   Identity                            replaced  stock copies; the tape clones every saved tensor
 *   Tile                                replaced  stock is ~10x slower than a copy loop
 *   Cast                                replaced  stock copies for same dtype, and is wrong for casts to bool
 *   Slice                               replaced  stock copies the whole input to JS first
 *   BatchMatMul, _FusedMatMul           wrapped   transposed operands fall off XNNPACK (10-20x): Dense input grads
 *   DepthwiseConv2dNativeBackpropInput  added     missing: DepthwiseConv2D/SeparableConv2D input grads threw
 *   Conv2DBackpropFilter                added     missing: the fused conv2d custom gradient calls it eagerly
 *   DepthwiseConv2dNativeBackpropFilter added     missing: same, for the fused depthwise conv (graph models)
 *   Conv2D / DepthwiseConv2dNative grads          dilation > 1 now differentiable (any backend)
 *   FusedBatchNorm grad                           lazy, no tile: dx is one multiply (any backend)
 *   StridedSlice / DepthToSpace grads             tfjs has none (graph models), any backend
 *   tf.fused.* under tf.grad                      unfused, so weight gradients are not computed (layers models)
 *
 * Graph models: call unfuseGraphModel(artifacts.modelTopology) before loading, for the same effect (the
 * converter bundles its own fused ops) and for differentiable dilated fused convs.
 */
import { registerAvgPoolGrad } from './avgPoolGrad';
import { registerBatchMatMul } from './batchMatMul';
import { installBatchNormGrad } from './batchNormGrad';
import { registerCast } from './cast';
import { registerConv2DBackpropFilter } from './conv2dBackpropFilter';
import { registerConv2DBackpropInput } from './conv2dBackpropInput';
import { registerDepthwiseBackpropFilter } from './depthwiseBackpropFilter';
import { registerDepthwiseBackpropInput } from './depthwiseBackpropInput';
import { installDilatedConvGrads } from './dilatedConvGrads';
import { installFusedGradMode } from './fusedGradMode';
import { registerIdentity } from './identity';
import { registerMaxPoolGrad } from './maxPoolGrad';
import { installMissingGrads } from './missingGrads';
import { registerResizeBilinearGrad } from './resizeBilinearGrad';
import { registerResizeNearestNeighborGrad } from './resizeNearestNeighborGrad';
import { registerSlice } from './slice';
import { registerTile } from './tile';
import { guardWasmHeap } from '../wasmMemory';

export { clearDerivedCache, derivedCacheSize } from './derivedCache';
export { installFusedGradMode, uninstallFusedGradMode } from './fusedGradMode';
export { stockConv2DBackpropInput } from './conv2dBackpropInput';
export { unfuseGraphModel } from './graphUnfuse';

let registered = false;

export interface RegisterOptions {
  /** Run tf.fused.* unfused under tf.grad so weight gradients are skipped (default true). */
  fusedGradMode?: boolean;
}

export function registerWasmKernels(opts: RegisterOptions = {}): void {
  if (!registered) {
    registerConv2DBackpropInput();
    registerDepthwiseBackpropInput();
    registerConv2DBackpropFilter();
    registerDepthwiseBackpropFilter();
    registerMaxPoolGrad();
    registerAvgPoolGrad();
    registerResizeNearestNeighborGrad();
    registerResizeBilinearGrad();
    registerIdentity();
    registerTile();
    registerCast();
    registerSlice();
    registerBatchMatMul();
    registered = true;
  }
  guardWasmHeap();
  registerGradientFixes(opts);
}

/**
 * The backend-independent part: gradient fixes (dilated convs, StridedSlice/DepthToSpace, lazy FusedBatchNorm) and
 * the fused-op gradient mode. Used as is on webgpu, whose own kernels need no replacing.
 */
export function registerGradientFixes(opts: RegisterOptions = {}): void {
  installDilatedConvGrads();
  installMissingGrads();
  installBatchNormGrad();
  if (opts.fusedGradMode ?? true) installFusedGradMode();
}
