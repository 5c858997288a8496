/** `--native` / `infodiscard.native`: onnxruntime where it can run a layer (auto), or tfjs only (off). No imports: the extension host reads it. */
export const NATIVE_CHOICES = ['auto', 'off'] as const;
export type NativeChoice = (typeof NATIVE_CHOICES)[number];
