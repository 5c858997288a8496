/** Errors from commands, shown as one-line notifications (plain text; untrusted parts through plainMessage). */
import * as vscode from 'vscode';
import { isUserError } from '../engine/errors';
import { SettingError } from './config';
import type { Ctx } from './ctx';
import { plainMessage } from './messages';

/** Shows `e` to the user: a bad setting offers to open it; a user error is its message; anything else is logged. */
export function showError(ctx: Ctx, e: unknown): void {
  if (e instanceof SettingError) {
    void vscode.window.showErrorMessage(`infodiscard: ${plainMessage(e.message)}`, 'Open Settings').then((pick) => {
      if (pick) void vscode.commands.executeCommand('workbench.action.openSettings', e.setting);
    });
    return;
  }
  if (isUserError(e)) {
    void vscode.window.showErrorMessage(`infodiscard: ${plainMessage(e.message)}`);
    return;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  ctx.log.error(err.stack ?? err.message);
  void vscode.window.showErrorMessage(`infodiscard: internal error: ${plainMessage(err.message)}`, 'Show Log').then((pick) => {
    if (pick) ctx.log.show(true);
  });
}
