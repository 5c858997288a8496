/**
 * Which Python exports PyTorch files: the Python extension's selected interpreter for the file's folder when that
 * extension is installed, else the `infodiscard.python` setting, else `python3` (`python` on Windows) on PATH.
 */
import * as vscode from 'vscode';
import { SECTION } from '../config';

export interface PythonChoice {
  /** What to run. */
  command: string;
  /** Where it came from, for the log and messages. */
  source: 'python extension' | 'setting' | 'PATH';
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath?(resource?: vscode.Uri): { path?: string } | undefined;
    resolveEnvironment?(env: { path?: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
  settings?: { getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } | undefined };
}

/** The selected interpreter of the Python extension (ms-python.python), if it is installed and has one. */
async function fromPythonExtension(resource: vscode.Uri | undefined): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>('ms-python.python');
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const env = api?.environments?.getActiveEnvironmentPath?.(resource);
    if (env?.path) {
      // An environment folder resolves to its executable; an executable path is itself.
      const resolved = await api.environments?.resolveEnvironment?.(env).catch(() => undefined);
      return resolved?.executable?.uri?.fsPath ?? env.path;
    }
    const exec = api?.settings?.getExecutionDetails?.(resource)?.execCommand;
    return exec?.[0] || undefined;
  } catch {
    return undefined; // the Python extension failed to start: fall back to the setting
  }
}

export async function pythonFor(resource: vscode.Uri | undefined): Promise<PythonChoice> {
  const fromExt = await fromPythonExtension(resource);
  if (fromExt) return { command: fromExt, source: 'python extension' };
  const setting = String(vscode.workspace.getConfiguration(SECTION, resource).get('python') ?? '').trim();
  if (setting) return { command: setting, source: 'setting' };
  return { command: process.platform === 'win32' ? 'python' : 'python3', source: 'PATH' };
}
