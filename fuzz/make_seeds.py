#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, made at run time (nothing large is kept in the repo).

corpus/decode_image:   tiny JPEGs and PNGs written here byte by byte (baseline, progressive,
                       restart intervals, 4:2:0, grey, CMYK, EXIF orientations; every PNG colour
                       type and bit depth, palettes, Adam7, eXIf), truncated and bit-flipped
                       copies, and a few small photos from the shared fixtures when they are
                       there (copied into the corpus, never into the repo).
corpus/multipart_form: hand-written multipart bodies for the upload routes.

Usage: make_seeds.py [SHARED_DIR]   (default: $ROLLCALL_SHARED, else ../../shared from here)
"""

import os
import random
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BOUNDARY = b"rcfuzz"  # fuzz_targets/multipart_form.rs's BOUNDARY


def write(corpus, name, data):
    path = os.path.join(HERE, "corpus", corpus)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- JPEG
# Every block is coded as "DC difference 0, end of block": one-code Huffman tables make that
# two bits a block, so any size, sampling or scan layout costs a few bytes.


def segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def exif_app1(orientation):
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)
    return segment(0xE1, b"Exif\x00\x00" + tiff)


class Bits:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, bit):
        self.acc = (self.acc << 1) | bit
        self.n += 1
        if self.n == 8:
            self._byte(self.acc)
            self.acc, self.n = 0, 0

    def _byte(self, b):
        self.out.append(b)
        if b == 0xFF:
            self.out.append(0x00)  # byte stuffing

    def flush(self):
        while self.n:
            self.put(1)

    def marker(self, m):
        self.flush()
        self.out += bytes([0xFF, m])


def ceil_div(a, b):
    return -(-a // b)


def jpeg(w, h, comps=((1, 1, 1),), progressive=False, restart=0, orientation=None,
         adobe=None, sof=0xC0):
    """comps: (id, H, V) each."""
    hmax = max(c[1] for c in comps)
    vmax = max(c[2] for c in comps)
    out = bytearray(b"\xFF\xD8")
    if orientation:
        out += exif_app1(orientation)
    if adobe is not None:
        out += segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, adobe))
    out += segment(0xDB, b"\x00" + bytes([1] * 64))
    frame = struct.pack(">BHHB", 8, h, w, len(comps))
    for cid, hs, vs in comps:
        frame += bytes([cid, (hs << 4) | vs, 0])
    out += segment(0xC2 if progressive else sof, frame)
    one_code = bytes([1] + [0] * 15)
    out += segment(0xC4, b"\x00" + one_code + b"\x00")  # DC table 0: category 0 only
    out += segment(0xC4, b"\x10" + one_code + b"\x00")  # AC table 0: EOB only
    if restart:
        out += segment(0xDD, struct.pack(">H", restart))

    def blocks_of(c):
        cw = ceil_div(w * c[1], hmax)
        ch = ceil_div(h * c[2], vmax)
        return ceil_div(cw, 8) * ceil_div(ch, 8)

    def scan(scomps, ss, se, bits_per_block):
        header = bytes([len(scomps)])
        for c in scomps:
            header += bytes([c[0], 0x00])
        header += bytes([ss, se, 0])
        data = Bits()
        if len(scomps) == 1:
            units = [1] * blocks_of(scomps[0])  # non-interleaved: one block a unit
        else:
            mcus = ceil_div(w, 8 * hmax) * ceil_div(h, 8 * vmax)
            units = [sum(c[1] * c[2] for c in scomps)] * mcus
        for i, blocks in enumerate(units):
            if restart and i and i % restart == 0:
                data.marker(0xD0 + (i // restart - 1) % 8)
            for _ in range(blocks * bits_per_block):
                data.put(0)
        data.flush()
        return segment(0xDA, header) + bytes(data.out)

    if progressive:
        out += scan(comps, 0, 0, 1)  # DC first: one bit (category 0) a block
        for c in comps:
            out += scan([c], 1, 63, 1)  # AC first: one bit (EOB run of 1) a block
    else:
        out += scan(comps, 0, 63, 2)
    out += b"\xFF\xD9"
    return bytes(out)


def jpegs():
    gray = ((1, 1, 1),)
    ycc420 = ((1, 2, 2), (2, 1, 1), (3, 1, 1))
    ycc444 = ((1, 1, 1), (2, 1, 1), (3, 1, 1))
    cmyk = ((1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 1))
    yield "gray_8x8.jpg", jpeg(8, 8, gray)
    yield "gray_13x7.jpg", jpeg(13, 7, gray)
    yield "ycc444_16x16.jpg", jpeg(16, 16, ycc444)
    yield "ycc420_17x9.jpg", jpeg(17, 9, ycc420)
    yield "ycc420_restart.jpg", jpeg(40, 24, ycc420, restart=1)
    yield "gray_progressive.jpg", jpeg(12, 10, gray, progressive=True)
    yield "ycc420_progressive.jpg", jpeg(20, 18, ycc420, progressive=True)
    yield "cmyk_adobe.jpg", jpeg(9, 9, cmyk, adobe=0)
    yield "ycck_adobe.jpg", jpeg(9, 9, cmyk, adobe=2)
    yield "extended_sof1.jpg", jpeg(8, 8, gray, sof=0xC1)
    for o in range(1, 9):
        yield f"exif_orientation_{o}.jpg", jpeg(5, 3, ycc444, orientation=o)


# ---------------------------------------------------------------- PNG


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png(w, h, color, depth, interlace=False, orientation=None, split=False, palette=None,
        trns=None):
    bits = CHANNELS[color] * depth
    rng = random.Random(w * 1000 + h * 10 + color + depth)

    def rows(pw, ph):
        raw = b""
        for y in range(ph):
            line = bytes(rng.randrange(256) for _ in range(ceil_div(pw * bits, 8)))
            raw += bytes([y % 5]) + line  # every filter type in turn
        return raw

    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            pw, ph = ceil_div(w - x0, dx) if w > x0 else 0, ceil_div(h - y0, dy) if h > y0 else 0
            if pw and ph:
                raw += rows(pw, ph)
    else:
        raw = rows(w, h)
    if color == 3:
        # Indices beyond the palette are data too: keep them in range for a valid seed.
        raw = bytes(b if i % (ceil_div(w * bits, 8) + 1) == 0 else b & 0 for i, b in enumerate(raw))
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, int(interlace)))
    if orientation:
        ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
        out += chunk(b"eXIf", b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    data = zlib.compress(raw, 9)
    if split:
        half = len(data) // 2
        out += chunk(b"IDAT", data[:half]) + chunk(b"IDAT", data[half:])
    else:
        out += chunk(b"IDAT", data)
    out += chunk(b"IEND", b"")
    return out


def pngs():
    for color, depths in ((0, (1, 2, 4, 8, 16)), (2, (8, 16)), (4, (8, 16)), (6, (8, 16))):
        for depth in depths:
            yield f"c{color}_d{depth}.png", png(5, 3, color, depth)
    for depth in (1, 2, 4, 8):
        yield f"palette_d{depth}.png", png(6, 2, 3, depth, palette=b"\x00\x00\x00\xff\x00\x00")
    yield "palette_trns.png", png(4, 4, 3, 8, palette=b"\x10\x20\x30" * 3, trns=b"\x80")
    yield "gray_trns.png", png(4, 4, 0, 8, trns=b"\x00\x07")
    yield "rgb_trns16.png", png(3, 3, 2, 16, trns=b"\x00\x01\x00\x02\x00\x03")
    yield "adam7_rgba.png", png(9, 9, 6, 8, interlace=True)
    yield "adam7_gray1.png", png(11, 5, 0, 1, interlace=True)
    yield "split_idat.png", png(16, 8, 2, 8, split=True)
    for o in (3, 6, 8):
        yield f"exif_orientation_{o}.png", png(4, 2, 2, 8, orientation=o)


# ---------------------------------------------------------------- image variants


def damaged(name, data, rng):
    """Truncated and bit-flipped copies: the decoder's refusals are the interesting part."""
    for cut in sorted({len(data) // 4, len(data) // 2, len(data) - 3, len(data) - 1}):
        if 8 < cut < len(data):
            yield f"{name}.cut{cut}", data[:cut]
    flipped = bytearray(data)
    for _ in range(3):
        i = rng.randrange(8, len(flipped))
        flipped[i] ^= 1 << rng.randrange(8)
    yield f"{name}.flip", bytes(flipped)


def shared_photos(shared):
    """A few small real photos: real entropy-coded data and encoder quirks."""
    picks = [
        os.path.join(shared, "fixtures", "parity", "images", "synthetic_tiny_8x8.png"),
        os.path.join(shared, "fixtures", "parity", "images", "synthetic_gradient_320x240.png"),
    ]
    faces = os.path.join(shared, "fixtures", "faces")
    if os.path.isdir(faces):
        for person in sorted(os.listdir(faces))[:40]:
            folder = os.path.join(faces, person)
            for f in sorted(os.listdir(folder))[:1]:
                picks.append(os.path.join(folder, f))
    found = [p for p in picks if os.path.isfile(p)]
    # The smallest few: large seeds slow every execution that starts from them.
    found.sort(key=os.path.getsize)
    return found[:6]


# ---------------------------------------------------------------- multipart


def part(name, body, filename=None, content_type=None, extra=b""):
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    head = disposition + b"\r\n"
    if content_type:
        head += b"Content-Type: " + content_type + b"\r\n"
    return b"--" + BOUNDARY + b"\r\n" + head + extra + b"\r\n" + body + b"\r\n"


def form(*parts, close=True):
    return b"".join(parts) + (b"--" + BOUNDARY + b"--\r\n" if close else b"")


def bodies(image):
    img = part(b"image", image, b"me.png", b"image/png")
    first, last = part(b"first_name", b"Ada"), part(b"last_name", b"Lovelace")
    yield "register", form(first, last, img)
    yield "register_three_images", form(first, last, img, img, img)
    yield "verify_kiosk", form(img, part(b"kiosk", b"front door"))
    yield "detect", form(img)
    yield "missing_last_name", form(first, img)
    yield "blank_name", form(part(b"first_name", b"   "), last, img)
    yield "empty_image", form(first, last, part(b"image", b"", b"e.png"))
    yield "image_as_photo", form(first, last, part(b"photo", image, b"me.png"))
    yield "image_without_filename", form(first, last, part(b"image", image))
    yield "non_utf8_text", form(part(b"first_name", b"\xff\xfe"), last, img)
    yield "control_chars", form(part(b"first_name", b"A\x07da"), last, img)
    yield "long_kiosk", form(img, part(b"kiosk", b"k" * 300))
    yield "repeated_field", form(first, part(b"first_name", b"Bob"), last, img)
    yield "unterminated", form(first, last, img, close=False)
    yield "cut_in_part", form(first, last, img)[:-60]
    yield "preamble_epilogue", b"preamble\r\n" + form(first, img) + b"epilogue"
    yield "lf_only", form(first, last, img).replace(b"\r\n", b"\n")
    yield "part_headers", form(part(b"image", image, b"a\\\"b.png", b"image/png",
                                    extra=b"Content-Transfer-Encoding: binary\r\nX-A: b\r\n"))
    yield "filename_star", (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; "
                            b"name=image; filename*=UTF-8''%E2%82%AC.png\r\n\r\n" + image
                            + b"\r\n--" + BOUNDARY + b"--\r\n")
    yield "no_disposition", b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + \
        BOUNDARY + b"--\r\n"
    yield "empty", b""
    yield "close_only", b"--" + BOUNDARY + b"--\r\n"
    yield "over_limit", form(first, last, part(b"image", image + b"\0" * 5000, b"big.png"))
    yield "many_small_parts", form(*[part(b"f%d" % i, b"v") for i in range(40)])


def main():
    shared = (sys.argv[1] if len(sys.argv) > 1 else
              os.environ.get("ROLLCALL_SHARED", os.path.join(HERE, "..", "..", "shared")))
    rng = random.Random(16)
    images = list(jpegs()) + list(pngs())
    for name, data in images:
        write("decode_image", name, data)
    for name, data in images[::3]:
        for vname, vdata in damaged(name, data, rng):
            write("decode_image", vname, vdata)
    photos = shared_photos(shared)
    for path in photos:
        data = open(path, "rb").read()
        name = "shared_" + os.path.basename(path)
        write("decode_image", name, data)
        for vname, vdata in damaged(name, data, rng):
            write("decode_image", vname, vdata)
    tiny = dict(images)["c2_d8.png"]
    for name, data in bodies(tiny):
        write("multipart_form", name, data)
    print(f"decode_image: {len(os.listdir(os.path.join(HERE, 'corpus', 'decode_image')))} seeds "
          f"({len(photos)} shared photos); multipart_form: "
          f"{len(os.listdir(os.path.join(HERE, 'corpus', 'multipart_form')))} seeds")


if __name__ == "__main__":
    main()
