//! EXIF orientation: turn the stored pixels so the picture stands the way it was taken.

use super::RgbImage;

/// Apply EXIF orientation `o` (1–8; anything else leaves the image as it is).
pub(super) fn apply(img: &RgbImage, o: u16) -> RgbImage {
    let (w, h) = (img.width as usize, img.height as usize);
    let swap = matches!(o, 5..=8);
    let (ow, oh) = if swap { (h, w) } else { (w, h) };
    // For output (x, y): the source pixel, per the EXIF 2.3 definition of each tag value.
    let source = |x: usize, y: usize| -> (usize, usize) {
        match o {
            2 => (w - 1 - x, y),         // mirrored horizontally
            3 => (w - 1 - x, h - 1 - y), // rotated 180°
            4 => (x, h - 1 - y),         // mirrored vertically
            5 => (y, x),                 // transposed
            6 => (y, h - 1 - x),         // needs 90° clockwise
            7 => (w - 1 - y, h - 1 - x), // transversed
            8 => (w - 1 - y, x),         // needs 90° counter-clockwise
            _ => (x, y),
        }
    };
    let mut data = Vec::with_capacity(img.data.len());
    for y in 0..oh {
        for x in 0..ow {
            let (sx, sy) = source(x, y);
            let i = (sy * w + sx) * 3;
            data.extend_from_slice(&img.data[i..i + 3]);
        }
    }
    RgbImage {
        width: ow as u32,
        height: oh as u32,
        data,
    }
}
