/**
 * The Python side of the PyTorch export: a script written beside the ONNX it makes (so the logged command can be
 * run again by hand) and the snippet a user completes for a state_dict. No tfjs, no vscode.
 */

/** Exit codes of EXPORT_SCRIPT that mean something the user can fix. */
export const EXIT_NO_TORCH = 3;
export const EXIT_TORCH_TOO_OLD = 4;
export const EXIT_NOT_EXPORTABLE = 5;

/**
 * export_onnx.py <model.pt> <out.onnx> --kind torchscript|exported-program [--input-shape 1,3,224,224] [--opset 13]
 * Prints "INFODISCARD_RESULT {json}" as its last line on success: the input shape used, torch's version.
 */
export const EXPORT_SCRIPT = String.raw`"""Exports a TorchScript archive or a torch.export program to ONNX (written by infodiscard; safe to run by hand)."""
import argparse, json, os, sys

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("out")
p.add_argument("--kind", choices=["torchscript", "exported-program"], required=True)
p.add_argument("--input-shape", default="")
p.add_argument("--opset", type=int, default=13)
a = p.parse_args()

try:
    import torch
except ImportError as e:
    print("infodiscard: no PyTorch in this Python (%s): %s" % (sys.executable, e), file=sys.stderr)
    sys.exit(${EXIT_NO_TORCH})

print("torch %s, python %s" % (torch.__version__, sys.version.split()[0]), flush=True)
shape = [int(d) for d in a.input_shape.split(",")] if a.input_shape else None
recorded = None

if a.kind == "torchscript":
    extra = {"input_shape": ""}
    model = torch.jit.load(a.model, map_location="cpu", _extra_files=extra)
    text = extra["input_shape"]
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip().strip("[]()")
    if text:
        try:
            recorded = [int(d) for d in text.replace("x", ",").split(",") if d.strip()]
        except ValueError:
            recorded = None
else:
    if not hasattr(torch, "export") or not hasattr(torch.export, "load"):
        print("infodiscard: torch %s cannot read torch.export .pt2 files (needs torch 2.1 or newer)" % torch.__version__, file=sys.stderr)
        sys.exit(${EXIT_TORCH_TOO_OLD})
    program = torch.export.load(a.model)
    try:  # the traced example input's shape: example_inputs (torch >= 2.3), else the first user input's fake tensor
        ex = getattr(program, "example_inputs", None)
        if ex and ex[0] and hasattr(ex[0][0], "shape"):
            recorded = [int(d) for d in ex[0][0].shape]
        else:
            user_inputs = [s.arg.name for s in program.graph_signature.input_specs if str(s.kind).endswith("USER_INPUT")]
            for node in program.graph.nodes:
                if node.op == "placeholder" and node.name in user_inputs[:1]:
                    val = node.meta.get("val")
                    if val is not None and all(isinstance(d, int) for d in val.shape):
                        recorded = list(val.shape)
    except Exception as e:
        print("no input shape recorded in the program (%s)" % e, flush=True)
    model = program.module()

if shape is None:
    shape = recorded or [1, 3, 224, 224]
print("input shape %s%s" % ("x".join(map(str, shape)), " (recorded in the file)" if recorded == shape else ""), flush=True)

if hasattr(model, "eval"):
    model.eval()
x = torch.rand(*shape)
kwargs = dict(opset_version=a.opset, input_names=["input"], output_names=["output"], do_constant_folding=True)
import inspect
if "dynamo" in inspect.signature(torch.onnx.export).parameters:
    kwargs["dynamo"] = False  # the TorchScript-based exporter: no onnxscript needed, opset as asked
tmp = a.out + ".part"
try:
    with torch.no_grad():
        torch.onnx.export(model, (x,), tmp, **kwargs)
except Exception as e:
    print("infodiscard: torch.onnx.export failed: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""), file=sys.stderr)
    sys.exit(${EXIT_NOT_EXPORTABLE})
os.replace(tmp, a.out)
print("INFODISCARD_RESULT " + json.dumps({"inputShape": shape, "recordedShape": recorded, "torch": torch.__version__, "opset": a.opset}), flush=True)
`;

/**
 * A ready script for a state_dict (or a checkpoint dict, or a pickled module): the user fills in their model class.
 * `className` is left as a placeholder the user replaces (MyModel).
 */
export function stateDictSnippet(modelFile: string, onnxFile: string, inputShape: number[], kind: 'state-dict' | 'pickled-module' | 'legacy-pickle', userClasses: string[] = []): string {
  const py = (s: string) => JSON.stringify(s);
  const cls = userClasses[0]?.split('.').pop() ?? 'MyModel';
  const mod = userClasses[0]?.includes('.') ? userClasses[0].slice(0, userClasses[0].lastIndexOf('.')) : 'my_project.models';
  const lines = [
    `# ${modelFile}`,
    kind === 'pickled-module'
      ? `# holds a whole pickled model (torch.save(model)): loading it needs its class, ${userClasses[0] ?? 'your model class'}, importable.`
      : '# holds weights only (a state_dict): the layers are defined by your model class, in your code.',
    '# Fill in the import and the constructor below, run this with your Python, then analyse the .onnx it writes.',
    'import torch',
    '',
    `from ${mod} import ${cls}  # TODO: your model class`,
    '',
  ];
  if (kind === 'pickled-module') {
    lines.push(`model = torch.load(${py(modelFile)}, map_location="cpu", weights_only=False)`);
  } else {
    lines.push(
      `model = ${cls}()  # TODO: the same arguments as in training`,
      `state = torch.load(${py(modelFile)}, map_location="cpu")`,
      '# checkpoints often wrap the weights: {"state_dict": ...} or {"model": ...}',
      'for key in ("state_dict", "model_state_dict", "model"):',
      '    if isinstance(state, dict) and isinstance(state.get(key), dict):',
      '        state = state[key]',
      '# weights saved from DataParallel/DistributedDataParallel carry a "module." prefix',
      'state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}',
      'model.load_state_dict(state)',
    );
  }
  lines.push(
    'model.eval()',
    '',
    `x = torch.rand(${inputShape.join(', ')})  # the input shape the model expects (N, C, H, W)`,
    'with torch.no_grad():',
    `    torch.onnx.export(model, (x,), ${py(onnxFile)}, opset_version=13, input_names=["input"], output_names=["output"])`,
    `print("wrote", ${py(onnxFile)})`,
    '',
  );
  return lines.join('\n');
}
