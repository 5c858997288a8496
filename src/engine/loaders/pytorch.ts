/**
 * PyTorch files (.pt, .pth, .pt2) are not read here: the CLI and the extension export a TorchScript archive or a
 * torch.export program to ONNX first, with the user's Python (../pytorch/export.ts), and analyse the ONNX. A caller
 * that reaches this loader with the PyTorch file itself gets one line saying so, and why for the other kinds.
 */
import { UserError } from '../errors';
import { isPyTorchFile, notExportableReason, requirePyTorchFile } from '../pytorch/export';
import type { LoadedModel, ModelLoader } from './types';

export const pytorchLoader: ModelLoader = {
  format: 'onnx',
  accepts: (file) => !file.toLowerCase().endsWith('.json') && !/\.(keras|h5|hdf5|onnx)$/i.test(file) && isPyTorchFile(file),
  async load(file): Promise<LoadedModel> {
    const info = requirePyTorchFile(file);
    const why = notExportableReason(info);
    if (why) throw new UserError(why, file);
    throw new UserError(`is a PyTorch ${info.kind === 'torchscript' ? 'TorchScript archive' : 'torch.export program'}: export it to ONNX first ("infodiscard analyze" and the extension do it with your Python), then analyse the .onnx`, file);
  },
};
