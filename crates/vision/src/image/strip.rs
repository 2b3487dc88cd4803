//! Metadata out of a photo before it is kept: a walk over the JPEG segments or PNG chunks that
//! copies what draws the picture and drops the rest, without decoding or re-encoding a pixel.
//!
//! A phone photo carries where it was taken (Exif GPS), when, on which device, often a
//! thumbnail of the uncropped picture, and editing history (XMP, IPTC). None of it is needed
//! to recognise a face or to show the photo. What is kept is a list, not a list of what to
//! drop, so an unknown segment or chunk goes too:
//! - JPEG: the frame, tables and scans; APP0 JFIF (without its thumbnail), APP2 ICC profiles and
//!   APP14 Adobe (both change how colours decode); nothing after the end-of-image marker.
//! - PNG: the critical chunks and those that say how colours and pixels are read.
//!
//! Orientation is kept: the decoder turns the pixels by the Exif orientation, and a photo taken
//! sideways must still stand upright. It goes back in as an Exif block with that one tag.

use super::{exif_orientation, JPEG_MAGIC, PNG_MAGIC};
use crate::error::ImageError;

/// The photo without its metadata (JPEG or PNG); anything else is refused as unsupported.
/// Malformed structure is refused as corrupt: what cannot be walked cannot be cleaned.
pub fn strip_metadata(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    if bytes.starts_with(&JPEG_MAGIC) {
        strip_jpeg(bytes)
    } else if bytes.starts_with(&PNG_MAGIC) {
        strip_png(bytes)
    } else if bytes.is_empty() {
        Err(ImageError::Empty)
    } else {
        Err(ImageError::Unsupported)
    }
}

const SOS: u8 = 0xDA;
const EOI: u8 = 0xD9;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;

fn corrupt(what: &str) -> ImageError {
    ImageError::Corrupt(format!("JPEG: {what}"))
}

fn strip_jpeg(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut exif_written = false;
    let mut i = 2;
    loop {
        // Fill bytes (0xFF runs) may stand before a marker; they carry nothing.
        if bytes.get(i) != Some(&0xFF) {
            return match bytes.get(i) {
                // A file that ends after its last scan without EOI decodes; keep it so.
                None if i > 2 => Ok(out),
                _ => Err(corrupt("a marker was expected")),
            };
        }
        while bytes.get(i + 1) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = bytes.get(i + 1) else {
            return Err(corrupt("the file ends inside a marker"));
        };
        if marker == EOI {
            out.extend_from_slice(&[0xFF, EOI]);
            return Ok(out); // whatever follows the image (a trailer, a second image) is dropped
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            out.extend_from_slice(&[0xFF, marker]);
            i += 2;
            continue;
        }
        let len = bytes
            .get(i + 2..i + 4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| corrupt("the file ends inside a segment length"))?;
        if len < 2 {
            return Err(corrupt("a segment is shorter than its length field"));
        }
        let end = i + 2 + len;
        let segment = bytes
            .get(i..end)
            .ok_or_else(|| corrupt("a segment runs past the end of the file"))?;
        let payload = &segment[4..];
        match marker {
            APP0 if payload.starts_with(b"JFIF\0") => {
                out.extend_from_slice(&jfif_without_thumbnail(segment))
            }
            APP1 => {
                // The first Exif block is the one the decoder reads the orientation from.
                if !exif_written {
                    if let Some(o) = payload.strip_prefix(b"Exif\0\0").and_then(exif_orientation) {
                        exif_written = true;
                        if o != 1 {
                            out.extend_from_slice(&jpeg_segment(APP1, &exif_block(o)));
                        }
                    }
                }
            }
            APP2 if payload.starts_with(b"ICC_PROFILE\0") => out.extend_from_slice(segment),
            APP14 if payload.starts_with(b"Adobe") => out.extend_from_slice(segment),
            0xE0..=0xEF | COM => {}
            _ => out.extend_from_slice(segment),
        }
        i = end;
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor
            // a restart marker.
            let start = i;
            while i < bytes.len()
                && !(bytes[i] == 0xFF
                    && bytes
                        .get(i + 1)
                        .is_some_and(|&m| m != 0x00 && !(0xD0..=0xD7).contains(&m)))
            {
                i += 1;
            }
            out.extend_from_slice(&bytes[start..i]);
            if i >= bytes.len() {
                return Ok(out);
            }
        }
    }
}

/// An APP0 JFIF segment with its thumbnail (if any) removed: 16 bytes of header only.
fn jfif_without_thumbnail(segment: &[u8]) -> Vec<u8> {
    // FF E0, length, "JFIF\0", version (2), units, x density (2), y density (2), thumb w, thumb h
    const HEADER: usize = 2 + 2 + 5 + 2 + 1 + 2 + 2;
    match segment.get(..HEADER) {
        Some(header) => {
            let mut s = header.to_vec();
            s[2..4].copy_from_slice(&16u16.to_be_bytes());
            s.extend_from_slice(&[0, 0]);
            s
        }
        // Too short to hold a thumbnail: nothing to remove.
        None => segment.to_vec(),
    }
}

fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).expect("a short payload");
    let mut s = vec![0xFF, marker];
    s.extend_from_slice(&len.to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// A TIFF structure (as Exif stores it) with one entry: Orientation = `o`.
fn tiff_orientation(o: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(26);
    t.extend_from_slice(b"MM\0\x2A"); // big-endian TIFF
    t.extend_from_slice(&8u32.to_be_bytes()); // IFD0 right after the header
    t.extend_from_slice(&1u16.to_be_bytes()); // one entry
    t.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    t.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    t.extend_from_slice(&1u32.to_be_bytes()); // one value
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0]); // the value is padded to four bytes
    t.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
    t
}

/// The payload of a JPEG Exif APP1 segment holding only the orientation.
fn exif_block(o: u16) -> Vec<u8> {
    let mut p = b"Exif\0\0".to_vec();
    p.extend_from_slice(&tiff_orientation(o));
    p
}

/// PNG chunks that draw the picture or say how its colours read; every other chunk is dropped
/// (text, time, Exif, private chunks, animation frames the decoder never reads).
const PNG_KEPT: [&[u8; 4]; 14] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"cICP", b"mDCV", b"cLLI", b"pHYs",
];

fn strip_png(bytes: &[u8]) -> Result<Vec<u8>, ImageError> {
    let corrupt = |what: &str| ImageError::Corrupt(format!("PNG: {what}"));
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&PNG_MAGIC);
    let mut orientation = None;
    let mut exif_written = false;
    let mut i = PNG_MAGIC.len();
    while i < bytes.len() {
        let header = bytes
            .get(i..i + 8)
            .ok_or_else(|| corrupt("the file ends inside a chunk header"))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let end = i
            .checked_add(12)
            .and_then(|n| n.checked_add(len))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| corrupt("a chunk runs past the end of the file"))?;
        let chunk = &bytes[i..end];
        if &kind == b"eXIf" && orientation.is_none() {
            orientation = exif_orientation(&chunk[8..8 + len]);
        }
        if &kind == b"IDAT" && !exif_written {
            // eXIf must come before the image data.
            exif_written = true;
            if let Some(o) = orientation.filter(|&o| o != 1) {
                out.extend_from_slice(&png_chunk(b"eXIf", &tiff_orientation(o)));
            }
        }
        if PNG_KEPT.contains(&&kind) {
            out.extend_from_slice(chunk);
        }
        i = end;
        if &kind == b"IEND" {
            break; // anything after the end is dropped
        }
    }
    Ok(out)
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).expect("a short chunk");
    let mut c = len.to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    let crc = crc32(&c[4..]);
    c.extend_from_slice(&crc.to_be_bytes());
    c
}

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{decode, DecodeLimits};

    #[test]
    fn crc_is_the_png_one() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn the_orientation_block_reads_back() {
        for o in 1..=8 {
            assert_eq!(exif_orientation(&tiff_orientation(o)), Some(o));
        }
    }

    #[test]
    fn not_an_image_is_refused() {
        assert!(matches!(strip_metadata(b""), Err(ImageError::Empty)));
        assert!(matches!(
            strip_metadata(b"GIF89a"),
            Err(ImageError::Unsupported)
        ));
        assert!(matches!(
            strip_metadata(&[0xFF, 0xD8, 0xFF, 0xE1, 0x40, 0x00, 1, 2]),
            Err(ImageError::Corrupt(_))
        ));
    }

    fn png_with(extra_before_idat: &[Vec<u8>], extra_after: &[Vec<u8>]) -> Vec<u8> {
        // 2×1 RGB, one unfiltered row: red, green.
        let raw = [0u8, 255, 0, 0, 0, 255, 0];
        // A zlib stream of one stored (uncompressed) deflate block.
        let mut idat = vec![0x78, 0x01, 0x01];
        let n = raw.len() as u16;
        idat.extend_from_slice(&n.to_le_bytes());
        idat.extend_from_slice(&(!n).to_le_bytes());
        idat.extend_from_slice(&raw);
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &raw {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        idat.extend_from_slice(&((b << 16) | a).to_be_bytes());
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&2u32.to_be_bytes());
        ihdr.extend_from_slice(&1u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut f = PNG_MAGIC.to_vec();
        f.extend(png_chunk(b"IHDR", &ihdr));
        for c in extra_before_idat {
            f.extend_from_slice(c);
        }
        f.extend(png_chunk(b"IDAT", &idat));
        for c in extra_after {
            f.extend_from_slice(c);
        }
        f.extend(png_chunk(b"IEND", b""));
        f
    }

    #[test]
    fn png_text_time_and_exif_go_and_the_orientation_stays() {
        let mut exif = tiff_orientation(2);
        exif.extend_from_slice(b"GPS 48.8584N 2.2945E");
        let original = png_with(
            &[
                png_chunk(b"tEXt", b"Comment\0secret-place"),
                png_chunk(b"zTXt", b"k\0\0secret-place"),
                png_chunk(b"iTXt", b"k\0\0\0\0\0secret-place"),
                png_chunk(b"tIME", &[7, 234, 11, 26, 12, 0, 0]),
                png_chunk(b"eXIf", &exif),
                png_chunk(b"gAMA", &45455u32.to_be_bytes()),
            ],
            &[png_chunk(b"prVt", b"secret-place")],
        );
        let mut with_trailer = original.clone();
        with_trailer.extend_from_slice(b"secret-place");
        let stripped = strip_metadata(&with_trailer).unwrap();
        let text = String::from_utf8_lossy(&stripped);
        for gone in [
            "secret-place",
            "GPS",
            "tEXt",
            "zTXt",
            "iTXt",
            "tIME",
            "prVt",
        ] {
            assert!(!text.contains(gone), "{gone} is still there");
        }
        assert!(text.contains("gAMA") && text.contains("eXIf"));
        let limits = DecodeLimits::default();
        let (before, after) = (
            decode(&original, limits).unwrap(),
            decode(&stripped, limits).unwrap(),
        );
        assert_eq!(before, after);
        // Orientation 2 mirrors: green comes first.
        assert_eq!(after.get_pixel(0, 0), [0, 255, 0]);
        // Stripping twice changes nothing more.
        assert_eq!(strip_metadata(&stripped).unwrap(), stripped);
    }

    fn jpeg(w: usize, h: usize) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 256) as u8).collect();
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_size(w, h);
        c.set_progressive_mode();
        let mut c = c.start_compress(Vec::new()).unwrap();
        c.write_scanlines(&pixels).unwrap();
        c.finish().unwrap()
    }

    /// `jpeg` with `segments` inserted after SOI.
    fn with_segments(jpeg: &[u8], segments: &[Vec<u8>]) -> Vec<u8> {
        let mut f = jpeg[..2].to_vec();
        for s in segments {
            f.extend_from_slice(s);
        }
        f.extend_from_slice(&jpeg[2..]);
        f
    }

    #[test]
    fn jpeg_app_segments_and_comments_go_colour_and_orientation_stay() {
        let plain = jpeg(24, 16);
        let mut exif = exif_block(6);
        exif.extend_from_slice(b"GPS secret-place");
        let thumbnail = [0xA5, 0x5A, 0xC3, 0xA5, 0x5A, 0xC3];
        let mut jfif = b"JFIF\0\x01\x01\0\0\x01\0\x01\x02\x01".to_vec();
        jfif.extend_from_slice(&thumbnail); // 2×1 pixels
        let icc = b"ICC_PROFILE\0\x01\x01colours".to_vec();
        let adobe = b"Adobe\0\x64\0\0\0\0\x01".to_vec();
        let mut original = with_segments(
            &plain,
            &[
                jpeg_segment(APP0, &jfif),
                jpeg_segment(APP1, &exif),
                jpeg_segment(APP1, b"http://ns.adobe.com/xap/1.0/\0secret-place"),
                jpeg_segment(APP2, b"MPF\0secret-place"),
                jpeg_segment(APP2, &icc),
                jpeg_segment(0xED, b"Photoshop 3.0\0secret-place"),
                jpeg_segment(APP14, &adobe),
                jpeg_segment(0xEB, b"secret-place"),
                jpeg_segment(COM, b"secret-place"),
            ],
        );
        original.extend_from_slice(b"secret-place after the end");
        let stripped = strip_metadata(&original).unwrap();
        let text = String::from_utf8_lossy(&stripped);
        for gone in ["secret-place", "GPS", "xap", "MPF", "Photoshop"] {
            assert!(!text.contains(gone), "{gone} is still there");
        }
        for kept in ["JFIF", "ICC_PROFILE\0\x01\x01colours", "Adobe", "Exif"] {
            assert!(text.contains(kept), "{kept} is gone");
        }
        // The thumbnail went with its bytes.
        assert!(!stripped.windows(6).any(|w| w == thumbnail));
        let limits = DecodeLimits::default();
        let (before, after) = (
            decode(&original, limits).unwrap(),
            decode(&stripped, limits).unwrap(),
        );
        assert_eq!(
            (before.width, before.height),
            (16, 24),
            "orientation 6 turns it"
        );
        assert_eq!(before, after);
        // Every scan of the progressive file is there, byte for byte.
        let scans = |b: &[u8]| crate::image::jpeg::count_scans(b);
        assert_eq!(scans(&stripped), scans(&plain));
        assert_eq!(strip_metadata(&stripped).unwrap(), stripped);
        assert_eq!(strip_metadata(&plain).unwrap(), plain, "nothing to strip");
    }

    #[test]
    fn an_upright_orientation_is_not_kept_and_a_jpeg_without_eoi_still_decodes() {
        let plain = jpeg(8, 8);
        let exif = exif_block(1);
        let original = with_segments(&plain, &[jpeg_segment(APP1, &exif)]);
        assert_eq!(strip_metadata(&original).unwrap(), plain);
        let cut = &plain[..plain.len() - 2];
        assert_eq!(strip_metadata(cut).unwrap(), cut);
    }
}
