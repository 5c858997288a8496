// Runs inside VS Code's extension host (test/e2e/electron/run.ts starts it): plain CommonJS, `vscode` is the real API.
// Resolves when every check passed; a rejection makes VS Code exit with code 1.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vscode = require('vscode');

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`not ok - ${name}`);
    throw e;
  }
}

exports.run = async function run() {
  const ws = process.env.INFODISCARD_E2E_WORKSPACE;
  assert.ok(ws, 'INFODISCARD_E2E_WORKSPACE is not set');
  const ext = vscode.extensions.getExtension('infodiscard.infodiscard');

  await check('the extension activates and registers its commands', async () => {
    assert.ok(ext, 'extension infodiscard.infodiscard is not loaded');
    await ext.activate();
    const all = await vscode.commands.getCommands(true);
    for (const c of ext.packageJSON.contributes.commands) assert.ok(all.includes(c.command), `${c.command} is not registered`);
  });

  await check('Analyze Model… writes a complete report and opens the panel', async () => {
    const model = vscode.Uri.file(path.join(ws, 'model', 'model.json'));
    await vscode.commands.executeCommand('infodiscard.analyzeModel', model);
    const dir = path.join(ws, '.infodiscard');
    const reports = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    assert.equal(reports.length, 1);
    assert.equal(reports[0].status, 'complete');
    assert.equal(reports[0].layers.length, 7);
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs.map((t) => t.label));
    assert.ok(tabs.includes('SID: model'), `tabs: ${tabs}`);
  });
};
