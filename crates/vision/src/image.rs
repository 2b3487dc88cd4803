//! Bytes → RGB pixels: JPEG (libjpeg-turbo via mozjpeg, so pixels equal Pillow's) and PNG,
//! with the pixel count capped *before* decoding and EXIF orientation applied.

use crate::error::ImageError;

/// Decoded image: HWC, RGB, 8 bits per channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, row-major, RGB.
    pub data: Vec<u8>,
}

/// Limits checked from the image header before any pixel is decoded.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // 40 megapixels: any phone photo, far below what would exhaust memory.
        DecodeLimits {
            max_pixels: 40_000_000,
        }
    }
}

impl RgbImage {
    /// An image from RGB bytes, or `None` if `data` is not `width * height * 3` long.
    pub fn from_raw(width: u32, height: u32, data: Vec<u8>) -> Option<RgbImage> {
        let expected = (width as usize)
            .checked_mul(height as usize)?
            .checked_mul(3)?;
        (data.len() == expected).then_some(RgbImage {
            width,
            height,
            data,
        })
    }

    /// The pixel at column `x`, row `y`; panics outside the image, like slice indexing.
    pub fn get_pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x}, {y}) outside {}×{}",
            self.width,
            self.height
        );
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

const JPEG_MAGIC: [u8; 3] = [0xff, 0xd8, 0xff];
const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Decode JPEG or PNG bytes to RGB, applying EXIF orientation.
///
/// Truncated files are refused (as Pillow does by default) rather than grey-filled; other
/// damage that libjpeg or the png crate can recover from is accepted.
pub fn decode(bytes: &[u8], limits: DecodeLimits) -> Result<RgbImage, ImageError> {
    let (image, orientation) = if bytes.is_empty() {
        return Err(ImageError::Empty);
    } else if bytes.starts_with(&JPEG_MAGIC) {
        if let Some((w, h)) = jpeg_header_size(bytes) {
            check_size(w.into(), h.into(), limits)?;
        }
        jpeg::decode(bytes, limits)?
    } else if bytes.starts_with(&PNG_MAGIC) {
        if let Some((w, h)) = png_header_size(bytes) {
            check_size(w.into(), h.into(), limits)?;
        }
        png::decode(bytes, limits)?
    } else {
        return Err(ImageError::Unsupported);
    };
    Ok(match orientation {
        Some(o) => orient::apply(&image, o),
        None => image,
    })
}

/// Refuse empty images and images over the pixel limit, from header dimensions alone.
fn check_size(width: u64, height: u64, limits: DecodeLimits) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    if width.saturating_mul(height) > limits.max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// Width and height from a PNG's IHDR, which must be the first chunk.
fn png_header_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    Some((be(16)?, be(20)?))
}

/// Width and height from a JPEG's frame header (SOFn), found by walking the marker segments
/// that precede it. `None` if there is none before the first scan: libjpeg will say why.
fn jpeg_header_size(bytes: &[u8]) -> Option<(u16, u16)> {
    let be = |at: usize| Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let mut pos = 2; // after SOI
    loop {
        if *bytes.get(pos)? != 0xff {
            return None;
        }
        while *bytes.get(pos)? == 0xff {
            pos += 1; // fill bytes
        }
        let marker = *bytes.get(pos)?;
        pos += 1;
        match marker {
            0x01 | 0xd0..=0xd7 => continue, // no length field
            0xda | 0xd9 => return None,     // a scan or the end before any frame header
            // SOF0–SOF15, except DHT (c4), JPG (c8) and DAC (cc): [len, precision, height, width].
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be(pos + 5)?, be(pos + 3)?))
            }
            _ => pos += usize::from(be(pos)?),
        }
    }
}

/// The EXIF orientation (1–8) in raw TIFF-structured EXIF data, if any. Broken EXIF is
/// ignored: it should not cost the user their photo.
fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let exif = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    let o = field.value.get_uint(0)?;
    (1..=8).contains(&o).then_some(o as u16)
}

mod jpeg;
mod orient;
mod png;
mod strip;

pub use strip::strip_metadata;
