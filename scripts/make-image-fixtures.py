#!/usr/bin/python3
"""Writes the tiny image fixtures of test/image-pipeline.test.ts into test/fixtures/images/ (committed; rerun only
to change them). Needs Debian's python3-pil (Pillow with WebP and TIFF support): apt-get install python3-pil.

  exif/o1.jpg ... exif/o8.jpg   one upright 48x32 picture (red | green over blue | white quadrants), each stored
                                the way a camera with EXIF orientation N stores it: the file's pixels are turned or
                                mirrored and the tag says how to show them upright
  exif/o6.png, exif/o6.webp     the same with orientation 6 in a PNG eXIf chunk and a WebP EXIF chunk (lossless)
  rgba.png                      4x2 RGBA with known alpha (opaque, half and fully transparent pixels)
  formats/pattern.{png,bmp,gif,tif,webp}
                                the same 8x6 pattern of distinct colours in each format (lossless); the GIF has a
                                second, different frame (only the first is read)
Run: /usr/bin/python3 scripts/make-image-fixtures.py
"""
import os
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'images')

# What a viewer does to the stored pixels to show them upright (PIL's exif_transpose), and its inverse (what the
# camera did to the upright picture before storing it).
SHOW = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
STORE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}

QUADRANTS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]  # top-left, top-right, bottom-left, bottom-right


def upright():
    img = Image.new('RGB', (48, 32))
    for y in range(32):
        for x in range(48):
            img.putpixel((x, y), QUADRANTS[(y >= 16) * 2 + (x >= 24)])
    return img


def near(a, b, tol=40):
    return all(abs(p - q) <= tol for p, q in zip(a, b))


def exif_fixtures():
    os.makedirs(os.path.join(ROOT, 'exif'), exist_ok=True)
    up = upright()
    for o in range(1, 9):
        stored = up.transpose(STORE[o]) if o in STORE else up.copy()
        exif = Image.Exif()
        exif[0x0112] = o
        path = os.path.join(ROOT, 'exif', f'o{o}.jpg')
        stored.save(path, 'JPEG', quality=95, subsampling=0, exif=exif.tobytes())
        # Check with Pillow's own reading that a viewer shows it upright.
        back = Image.open(path)
        assert back.getexif().get(0x0112) == o, o
        shown = ImageOps.exif_transpose(back).convert('RGB')
        assert shown.size == (48, 32), (o, shown.size)
        for (x, y), want in zip([(12, 8), (36, 8), (12, 24), (36, 24)], QUADRANTS):
            assert near(shown.getpixel((x, y)), want), (o, x, y, shown.getpixel((x, y)))
    # PNG (eXIf chunk) and WebP (EXIF chunk) carry the tag too: orientation 6, lossless.
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = up.transpose(STORE[6])
    stored.save(os.path.join(ROOT, 'exif', 'o6.png'), exif=exif.tobytes())
    stored.save(os.path.join(ROOT, 'exif', 'o6.webp'), lossless=True, exif=exif.tobytes())
    for ext in ['png', 'webp']:
        back = Image.open(os.path.join(ROOT, 'exif', f'o6.{ext}'))
        assert back.getexif().get(0x0112) == 6, ext
        assert list(ImageOps.exif_transpose(back).convert('RGB').getdata()) == list(up.getdata()), ext


def rgba_fixture():
    img = Image.new('RGBA', (4, 2))
    pixels = [
        (255, 0, 0, 255), (255, 0, 0, 128), (0, 255, 0, 0), (0, 0, 255, 64),
        (255, 255, 255, 255), (200, 100, 50, 0), (0, 0, 0, 128), (10, 20, 30, 255),
    ]
    img.putdata(pixels)
    img.save(os.path.join(ROOT, 'rgba.png'))


def pattern():
    img = Image.new('RGB', (8, 6))
    img.putdata([((x * 37) % 256, (y * 51) % 256, ((x + y) * 23 + 7) % 256) for y in range(6) for x in range(8)])
    return img


def format_fixtures():
    d = os.path.join(ROOT, 'formats')
    os.makedirs(d, exist_ok=True)
    img = pattern()
    img.save(os.path.join(d, 'pattern.png'))
    img.save(os.path.join(d, 'pattern.bmp'))
    img.save(os.path.join(d, 'pattern.tif'), compression='tiff_lzw')
    img.save(os.path.join(d, 'pattern.webp'), lossless=True, exact=True)
    # GIF: palette image (48 colours, exact), a second frame of another picture.
    other = Image.new('RGB', (8, 6), (255, 0, 255))
    frames = [img.quantize(colors=256, method=Image.Quantize.MEDIANCUT), other.quantize(colors=2)]
    frames[0].save(os.path.join(d, 'pattern.gif'), save_all=True, append_images=frames[1:], duration=100, loop=0)
    for name in ['pattern.bmp', 'pattern.gif', 'pattern.tif', 'pattern.webp']:
        back = Image.open(os.path.join(d, name)).convert('RGB')
        assert list(back.getdata()) == list(img.getdata()), name


if __name__ == '__main__':
    exif_fixtures()
    rgba_fixture()
    format_fixtures()
    for dirpath, _, files in os.walk(ROOT):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            print(os.path.relpath(p, ROOT), os.path.getsize(p), 'bytes')
