//! PNG through the `png` crate, converted to RGB the way Pillow's `convert('RGB')` does:
//! palettes expanded, gray replicated, alpha dropped (not composited).

use super::{check_size, exif_orientation, DecodeLimits, RgbImage};
use crate::error::ImageError;
use png::{ColorType, Transformations};

pub(super) fn decode(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Result<(RgbImage, Option<u16>), ImageError> {
    let corrupt = |e: png::DecodingError| ImageError::Corrupt(format!("PNG: {e}"));
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    // 16-bit samples keep their high byte (Pillow's RGB;16B does the same for colour images).
    decoder.set_transformations(Transformations::EXPAND | Transformations::STRIP_16);
    let header = decoder.read_header_info().map_err(corrupt)?;
    check_size(header.width.into(), header.height.into(), limits)?;
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ImageError::Corrupt("PNG: image too large".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(corrupt)?;
    let channels = match frame.color_type {
        ColorType::Grayscale => 1,
        ColorType::GrayscaleAlpha => 2,
        ColorType::Rgb => 3,
        ColorType::Rgba => 4,
        ColorType::Indexed => {
            return Err(ImageError::Corrupt("PNG: palette was not expanded".into()))
        }
    };
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut data = Vec::with_capacity(w * h * 3);
    for row in buf.chunks(frame.line_size).take(h) {
        for px in row[..w * channels].chunks_exact(channels) {
            match channels {
                1 | 2 => data.extend_from_slice(&[px[0]; 3]),
                _ => data.extend_from_slice(&px[..3]),
            }
        }
    }
    let orientation = reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(exif_orientation);
    Ok((
        RgbImage {
            width: frame.width,
            height: frame.height,
            data,
        },
        orientation,
    ))
}
