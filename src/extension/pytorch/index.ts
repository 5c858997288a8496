/**
 * PyTorch files in the extension: a TorchScript archive or a torch.export .pt2 is exported to ONNX with the user's
 * Python (after asking for the input shape, which doubles as the offer: Escape declines), in a cancellable
 * notification, the exact command and its output in the log; the ONNX goes into the reports folder and is reused
 * while the file is unchanged. A state_dict (or a pickled model) gets one line and its export snippet in an
 * untitled editor. The engine does the work (src/engine/pytorch); this is the VS Code side only.
 */
import path from 'node:path';
import * as vscode from 'vscode';
import { CancelledError } from '../../engine/errors';
import { DEFAULT_INPUT_SHAPE, exportPyTorchToOnnx, isPyTorchFile, notExportableReason, parseInputShape, requirePyTorchFile, snippetFor } from '../../engine/pytorch/export';
import { readSettings } from '../config';
import type { Ctx } from '../ctx';
import { plainMessage } from '../messages';
import { reportsFolderFor } from '../reportStore';
import { pythonFor } from './python';

const SHAPE_KEY = 'infodiscard.exportShape:';
export const OPEN_SNIPPET = 'Open Export Snippet';

function shapeText(shape: number[]): string {
  return shape.join('x');
}

/**
 * The model file to analyse for `uri`: itself when it is not a PyTorch file; the exported (or reused) ONNX for a
 * TorchScript or torch.export file; undefined when the user declined or the file cannot be exported (the user has
 * been told). Export failures throw a UserError (one line) for the caller's error display.
 */
export async function modelToAnalyse(ctx: Ctx, uri: vscode.Uri): Promise<vscode.Uri | undefined> {
  if (!isPyTorchFile(uri.fsPath)) return uri;
  const file = uri.fsPath;
  const name = path.basename(file);
  const info = requirePyTorchFile(file);
  const why = notExportableReason(info);
  if (why) {
    ctx.log.info(`${name}: ${why}`);
    const offer = info.kind === 'aoti-package' ? [] : [OPEN_SNIPPET];
    const pick = await vscode.window.showWarningMessage(`infodiscard: ${plainMessage(`${name} ${why}`)}`, ...offer);
    if (pick === OPEN_SNIPPET) {
      const doc = await vscode.workspace.openTextDocument({ language: 'python', content: snippetFor(info) });
      await vscode.window.showTextDocument(doc, { preview: false });
    }
    return undefined;
  }
  const python = await pythonFor(uri);
  const remembered = ctx.extension.workspaceState.get<number[]>(SHAPE_KEY + file);
  const suggested = remembered ?? info.recordedInputShape ?? DEFAULT_INPUT_SHAPE;
  const what = info.kind === 'torchscript' ? 'a TorchScript archive' : 'a torch.export program';
  const answer = await vscode.window.showInputBox({
    title: `infodiscard: ${name} is ${what}: export it to ONNX with ${python.command}?`,
    prompt: `The input shape to export with (N x C x H x W)${info.recordedInputShape ? ', as recorded in the file' : ''}. The ONNX is kept in the reports folder and reused while ${name} is unchanged. Escape: do not export.`,
    value: shapeText(suggested),
    ignoreFocusOut: true,
    validateInput: (v) => (parseInputShape(v) ? undefined : 'an input shape such as 1x3x224x224'),
  });
  if (answer === undefined) return undefined;
  const inputShape = parseInputShape(answer)!;
  await ctx.extension.workspaceState.update(SHAPE_KEY + file, inputShape);
  const settings = readSettings(uri);
  const outDir = reportsFolderFor(settings.reportsFolder, uri, ctx.extension.globalStorageUri);
  ctx.log.info(`${name}: exporting to ONNX with the Python of the ${python.source} (${python.command}), input ${shapeText(inputShape)}`);
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `infodiscard: exporting ${name} to ONNX`, cancellable: true },
      async (progress, token) => {
        const controller = new AbortController();
        token.onCancellationRequested(() => controller.abort());
        return exportPyTorchToOnnx(file, {
          python: python.command,
          inputShape,
          outDir,
          signal: controller.signal,
          log: (line) => {
            ctx.log.info(line);
            if (!line.startsWith('$ ') && line.trim()) progress.report({ message: line.slice(0, 80) });
          },
        });
      },
    );
    ctx.log.info(`${name}: ${result.reused ? 'reusing the ONNX exported before' : 'exported'}: ${result.onnxPath}`);
    return vscode.Uri.file(result.onnxPath);
  } catch (e) {
    if (e instanceof CancelledError) {
      ctx.log.info(`${name}: export cancelled`);
      return undefined;
    }
    throw e;
  }
}
