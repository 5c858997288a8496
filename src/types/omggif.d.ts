// omggif ships no types: the part of its GIF reader that images.ts uses.
declare module 'omggif' {
  export class GifReader {
    constructor(buf: Uint8Array);
    width: number;
    height: number;
    numFrames(): number;
    /** Decodes frame `frame` into `pixels` (width*height*4 RGBA), leaving pixels outside the frame as they were. */
    decodeAndBlitFrameRGBA(frame: number, pixels: Uint8Array | Uint8ClampedArray): void;
  }
}
