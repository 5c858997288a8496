/**
 * The new user's first-use path, timed in a real VS Code (issue 13 "Verify"): code-server with the built extension,
 * headless Chromium, the product's default settings, a fresh workspace holding one model and its images. Per model:
 * right-click the model in the Explorer → "Analyze Model…" → answer the questions as a new user would (images:
 * "Browse…" and the images folder; preprocessing: the first, recommended choice; layers: the recommended ones,
 * pre-checked) → the first finished layer shown in the panel. Writes the seconds of each step, from the click on
 * "Analyze Model…", and a screenshot at each step to out/e2e/timed/ (timings.json, <case>-<step>.png).
 *
 * Cases: "keras" (the third-party 0-255 Keras MNIST checkpoint from ../shared/data beside the clone, three 28×28
 * digits) and "resnet18" (torchvision's ResNet-18 ONNX from .cache/torchvision-onnx, made by
 * scripts/test-data/torchvision-onnx.py; one 224×224 photo cropped from python3-skimage's chelsea.png).
 *
 *   npm run build && node --import tsx scripts/e2e-timed-path.ts [keras] [resnet18] [--images-setting]
 *
 * --images-setting: set infodiscard.images in the workspace instead of answering the images question with the file
 * dialog (the dialog is code-server's simple one). Timings depend on the machine and its load (printed with them).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { CodeServer, ensureTools, OUT } from '../test/e2e/helpers/codeServer';
import { kerasCheckpoint, resnet18Onnx, skimagePhoto, writeDigits } from '../test/e2e/helpers/ownModel';
import { quickPickRows, waitFor, waitForQuickPick, Workbench } from '../test/e2e/helpers/workbench';

const TIMED = path.join(OUT, 'timed');

interface Case {
  name: string;
  /** Workspace-relative model path. */
  model: string;
  /** Workspace-relative images folder. */
  images: string;
  /** The panel's tab title. */
  tab: string;
  setup(ws: string): void;
}

/** A 224×224 centre crop of `src` (bilinear from the largest centred square), as an RGB PNG. */
function writeSquarePhoto(src: string, dest: string, size = 224): void {
  const img = PNG.sync.read(readFileSync(src));
  const side = Math.min(img.width, img.height);
  const x0 = (img.width - side) / 2;
  const y0 = (img.height - side) / 2;
  const out = new PNG({ width: size, height: size });
  const at = (x: number, y: number, c: number) => img.data[4 * (Math.min(img.height - 1, y) * img.width + Math.min(img.width - 1, x)) + c];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sx = x0 + ((x + 0.5) * side) / size - 0.5;
      const sy = y0 + ((y + 0.5) * side) / size - 0.5;
      const ix = Math.max(0, Math.floor(sx));
      const iy = Math.max(0, Math.floor(sy));
      const fx = sx - ix;
      const fy = sy - iy;
      for (let c = 0; c < 3; c++) {
        const v = at(ix, iy, c) * (1 - fx) * (1 - fy) + at(ix + 1, iy, c) * fx * (1 - fy) + at(ix, iy + 1, c) * (1 - fx) * fy + at(ix + 1, iy + 1, c) * fx * fy;
        out.data[4 * (y * size + x) + c] = Math.round(v);
      }
      out.data[4 * (y * size + x) + 3] = 255;
    }
  }
  writeFileSync(dest, PNG.sync.write(out));
}

function cases(): Case[] {
  const out: Case[] = [];
  const keras = kerasCheckpoint();
  if (keras) {
    out.push({
      name: 'keras',
      model: 'saved-model-01-0.96.hdf5',
      images: 'digits',
      tab: 'SID: saved-model-01-0.96',
      setup: (ws) => {
        cpSync(keras, path.join(ws, 'saved-model-01-0.96.hdf5'));
        writeDigits(path.join(ws, 'digits'));
      },
    });
  } else console.log('keras: skipped (no ../shared/data/keras-mnist-dnn-repair beside the clone)');
  const resnet = resnet18Onnx();
  const photo = skimagePhoto();
  if (resnet && photo) {
    out.push({
      name: 'resnet18',
      model: 'resnet18.onnx',
      images: 'photos',
      tab: 'SID: resnet18',
      setup: (ws) => {
        cpSync(resnet, path.join(ws, 'resnet18.onnx'));
        mkdirSync(path.join(ws, 'photos'));
        writeSquarePhoto(photo, path.join(ws, 'photos', 'chelsea-224.png'));
      },
    });
  } else console.log(`resnet18: skipped (${resnet ? 'no python3-skimage data (apt-get install python3-skimage)' : 'no .cache/torchvision-onnx/resnet18.onnx: python3 scripts/test-data/torchvision-onnx.py'})`);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function timeCase(c: Case, imagesSetting: boolean): Promise<Record<string, number | string>> {
  const tools = ensureTools();
  const ws = mkdtempSync(path.join(os.tmpdir(), `infodiscard-timed-${c.name}-`));
  c.setup(ws);
  if (imagesSetting) {
    mkdirSync(path.join(ws, '.vscode'));
    writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'infodiscard.images': c.images }, null, 2));
  }
  const server = await CodeServer.start(tools, ws);
  const wb = await Workbench.open(tools.chromium, server.url, ws);
  const times: Record<string, number | string> = { case: c.name, loadavgStart: os.loadavg().map((l) => l.toFixed(2)).join(' ') };
  const shot = (step: string) => wb.page.screenshot({ path: path.join(TIMED, `${c.name}-${step}.png`) }).catch(() => undefined);
  let t0 = 0;
  const mark = async (step: string) => {
    times[step] = Number(((Date.now() - t0) / 1000).toFixed(1));
    console.log(`${c.name}: ${step} at ${times[step]} s`);
    await shot(step);
  };
  try {
    // Wait for the extension to be there (its menu entry), then the timed path: the click on "Analyze Model…".
    const row = await wb.revealInExplorer(c.model);
    const item = wb.page.locator('.monaco-menu .action-item', { hasText: 'Analyze Model…' });
    const tMenu = Date.now();
    await waitFor('the context menu entry', async () => {
      if (await item.first().isVisible()) return true;
      await wb.page.keyboard.press('Escape');
      await row.click({ button: 'right' });
      await item.first().waitFor({ state: 'visible', timeout: 2_000 }).catch(() => {});
      return item.first().isVisible();
    }, 120_000, 500);
    times.menuShownAfterRightClick = Number(((Date.now() - tMenu) / 1000).toFixed(1));
    await shot('0-menu');
    t0 = Date.now();
    await waitFor('"Analyze Model…" clicked', async () => {
      await item.first().click({ timeout: 2_000 }).catch(() => {});
      await item.first().waitFor({ state: 'hidden', timeout: 1_000 }).catch(() => {});
      return !(await item.first().isVisible());
    }, 15_000, 0);
    await mark('1-menuClicked');

    if (!imagesSetting) {
      await waitForQuickPick(wb, 'images to analyse with', 120_000);
      await mark('2-imagesAsked');
      await wb.quickInput.locator('.quick-input-list .monaco-list-row', { hasText: 'Browse…' }).first().click();
      // code-server's simple file dialog: type the folder (with its trailing slash: the dialog goes into it and lists
      // its images), then its OK button ("Use these images"), again while the dialog is still busy navigating.
      const input = wb.quickInput.locator('.quick-input-box input').first();
      await waitFor('the file dialog', async () => (await wb.quickInput.isVisible()) && (await input.inputValue().catch(() => '')).startsWith('/'), 30_000);
      const folder = `${path.join(ws, c.images)}/`;
      await input.fill(folder);
      await waitFor('the images listed in the dialog', async () => (await quickPickRows(wb)).some((r) => /\.png$/i.test(r.label)), 30_000);
      const ok = wb.quickInput.locator('.monaco-button', { hasText: 'Use these images' }).first();
      await waitFor('the file dialog accepted', async () => {
        if (!(await ok.isVisible().catch(() => false))) return true;
        await ok.click({ timeout: 2_000 }).catch(() => {});
        await sleep(1_500);
        return !(await ok.isVisible().catch(() => false));
      }, 60_000, 0);
      await mark('3-imagesAnswered');
    }

    const prep = await waitForQuickPick(wb, 'preprocessing of', 600_000);
    await sleep(300);
    await mark('4-preprocessingAsked');
    times.preprocessingFirst = `${prep[0].label} · ${prep[0].description} · ${prep[0].detail}`;
    await wb.page.keyboard.press('Enter');

    const layers = await waitForQuickPick(wb, 'layers of', 600_000);
    await sleep(300);
    await mark('5-layersAsked');
    // The list is virtual (only the visible rows are in the page): the count badge says how many are checked.
    const badge = ((await wb.quickInput.locator('.quick-input-count').textContent().catch(() => '')) ?? '').trim();
    const visibleChecked = (await quickPickRows(wb)).filter((r) => r.checked && !/^(Recommended layers|All \d+ layers|Last choice)/.test(r.label)).map((r) => r.label);
    times.layersChecked = `${badge} · ${layers[0].label} · first checked: ${visibleChecked.slice(0, 3).join(', ')}`;
    await wb.page.keyboard.press('Enter');

    await wb.tab(c.tab).waitFor({ timeout: 600_000 });
    await mark('6-panelOpen');
    const frame = wb.reportFrame();
    await frame.locator('.id-app[data-rendered]').waitFor({ timeout: 600_000 });
    await mark('7-panelDrawn');
    await waitFor('the first finished layer in the panel', async () => {
      const s = await wb.chartState(frame).catch(() => null);
      return s && s.points[0] >= 1;
    }, 30 * 60_000, 250);
    await mark('8-firstLayerShown');
    await sleep(1_500);
    await shot('9-firstLayerSettled');
    times.loadavgEnd = os.loadavg().map((l) => l.toFixed(2)).join(' ');
    await wb.runCommand('infodiscard: Cancel Analysis').catch(() => undefined);
    await sleep(2_000);
  } catch (e) {
    times.error = (e as Error).message.split('\n')[0];
    await shot('failure');
    console.error(`${c.name}: ${times.error}`);
  } finally {
    await wb.close();
    await server.stop();
    rmSync(ws, { recursive: true, force: true });
  }
  return times;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const imagesSetting = args.includes('--images-setting');
  const only = args.filter((a) => !a.startsWith('--'));
  mkdirSync(TIMED, { recursive: true });
  const results: Record<string, number | string>[] = [];
  for (const c of cases().filter((c) => only.length === 0 || only.includes(c.name))) results.push(await timeCase(c, imagesSetting));
  const file = path.join(TIMED, 'timings.json');
  writeFileSync(file, JSON.stringify({ machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`, date: new Date().toISOString(), results }, null, 2));
  console.log(JSON.stringify(results, null, 2));
  console.log(`written: ${file}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

void main();
