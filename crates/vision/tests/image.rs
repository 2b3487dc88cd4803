//! Decoding: Pillow-exact pixels on the parity images, typed errors for everything else,
//! EXIF orientation, and no panic on any truncation.

use rollcall_test_support as common;

use rollcall_vision::image::decode;
use rollcall_vision::{DecodeLimits, ImageError, RgbImage};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn image_path(name: &str) -> PathBuf {
    common::parity_dir().join("images").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(image_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

/// A decode result for failure messages, without dumping megabytes of pixels.
fn describe(r: &Result<RgbImage, ImageError>) -> String {
    match r {
        Ok(img) => format!("Ok({}×{} image)", img.width, img.height),
        Err(e) => format!("Err({e:?})"),
    }
}

#[test]
fn parity_images_decode_to_pillows_pixels() {
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::parity_dir().join("mtcnn_golden.json")).unwrap(),
    )
    .unwrap();
    let images = golden["images"].as_object().unwrap();
    assert_eq!(images.len(), 13);
    for (name, g) in images {
        let img = decode(&read(name), limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            img.width as u64,
            g["width"].as_u64().unwrap(),
            "{name}: width"
        );
        assert_eq!(
            img.height as u64,
            g["height"].as_u64().unwrap(),
            "{name}: height"
        );
        assert_eq!(
            hex::encode(Sha256::digest(&img.data)),
            g["decoded_rgb_sha256"].as_str().unwrap(),
            "{name}: decoded pixels differ from Pillow's"
        );
    }
}

#[test]
fn not_an_image_is_unsupported() {
    assert!(matches!(
        decode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00", limits()),
        Err(ImageError::Unsupported)
    ));
    assert!(matches!(
        decode(b"%PDF-1.7\n", limits()),
        Err(ImageError::Unsupported)
    ));
    // Deterministic pseudo-random bytes (xorshift).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    assert!(matches!(
        decode(&noise, limits()),
        Err(ImageError::Unsupported)
    ));
    // Noise behind a JPEG or PNG signature is corrupt, not a crash.
    let mut jpeg_noise = vec![0xff, 0xd8, 0xff];
    jpeg_noise.extend(&noise);
    let r = decode(&jpeg_noise, limits());
    assert!(matches!(r, Err(ImageError::Corrupt(_))), "{}", describe(&r));
    let mut png_noise = b"\x89PNG\r\n\x1a\n".to_vec();
    png_noise.extend(&noise);
    assert!(matches!(
        decode(&png_noise, limits()),
        Err(ImageError::Corrupt(_))
    ));
}

#[test]
fn empty_input_is_empty() {
    assert!(matches!(decode(b"", limits()), Err(ImageError::Empty)));
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let jpeg = read("single_640x480_sample1.jpg");
    for cut in [10, 200, jpeg.len() / 2, jpeg.len() - 100] {
        match decode(&jpeg[..cut], limits()) {
            Err(ImageError::Corrupt(msg)) => assert!(msg.contains("JPEG"), "{msg}"),
            other => panic!(
                "{cut}-byte prefix: expected Corrupt, got {}",
                describe(&other)
            ),
        }
    }
}

#[test]
fn truncated_png_is_corrupt() {
    let png = read("synthetic_noise_320x240.png");
    for cut in [10, 30, png.len() / 2, png.len() - 100] {
        assert!(
            matches!(decode(&png[..cut], limits()), Err(ImageError::Corrupt(_))),
            "{cut}-byte prefix"
        );
    }
}

/// `jpeg` with its frame header (SOF0/SOF2) patched to declare `width`×`height`.
fn with_jpeg_size(mut jpeg: Vec<u8>, width: u16, height: u16) -> Vec<u8> {
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0] || w == [0xff, 0xc2])
        .expect("no SOF");
    jpeg[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

/// A PNG signature and IHDR (valid CRC) declaring `width`×`height`, 8-bit RGB, and no data.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn huge_declared_sizes_are_refused_before_decoding() {
    // A JPEG frame header holds 16-bit sizes: 65535² is as large as a JPEG can claim.
    let huge_jpeg = with_jpeg_size(read("single_640x480_sample1.jpg"), 65535, 65535);
    match decode(&huge_jpeg, limits()) {
        Err(ImageError::TooLarge {
            width: 65535,
            height: 65535,
            max_pixels: 40_000_000,
        }) => {}
        other => panic!("expected TooLarge, got {}", describe(&other)),
    }
    let huge_png = png_header(100_000, 100_000);
    match decode(&huge_png, limits()) {
        Err(ImageError::TooLarge {
            width: 100_000,
            height: 100_000,
            ..
        }) => {}
        other => panic!("expected TooLarge, got {}", describe(&other)),
    }
    // The limit is the caller's: a real image one pixel over it is refused too.
    let tight = DecodeLimits {
        max_pixels: 640 * 480 - 1,
    };
    assert!(matches!(
        decode(&read("single_640x480_sample1.jpg"), tight),
        Err(ImageError::TooLarge { .. })
    ));
    assert!(matches!(
        decode(
            &read("synthetic_tiny_8x8.png"),
            DecodeLimits { max_pixels: 63 }
        ),
        Err(ImageError::TooLarge { .. })
    ));
    assert!(decode(
        &read("synthetic_tiny_8x8.png"),
        DecodeLimits { max_pixels: 64 }
    )
    .is_ok());
}

#[test]
fn zero_sized_images_are_empty() {
    let zero_jpeg = with_jpeg_size(read("single_640x480_sample1.jpg"), 640, 0);
    assert!(matches!(
        decode(&zero_jpeg, limits()),
        Err(ImageError::Empty)
    ));
    assert!(matches!(
        decode(&png_header(0, 0), limits()),
        Err(ImageError::Empty)
    ));
    assert!(matches!(
        decode(&png_header(10, 0), limits()),
        Err(ImageError::Empty)
    ));
}

/// A JPEG encoded here with libjpeg (quality 100) from `pixels` in `space`.
fn encode_jpeg(space: mozjpeg::ColorSpace, width: usize, height: usize, pixels: &[u8]) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(width, height);
    c.set_quality(100.0);
    let mut c = c.start_compress(Vec::new()).unwrap();
    c.write_scanlines(pixels).unwrap();
    c.finish().unwrap()
}

#[test]
fn grayscale_jpeg_becomes_gray_rgb() {
    let (w, h) = (32, 24);
    let gray: Vec<u8> = (0..w * h).map(|i| ((i % w) * 8) as u8).collect();
    let img = decode(
        &encode_jpeg(mozjpeg::ColorSpace::JCS_GRAYSCALE, w, h, &gray),
        limits(),
    )
    .unwrap();
    assert_eq!((img.width, img.height), (w as u32, h as u32));
    for (px, &g) in img.data.chunks_exact(3).zip(&gray) {
        assert!(px[0] == px[1] && px[1] == px[2], "not gray: {px:?}");
        assert!(px[0].abs_diff(g) <= 2, "{} vs {g}", px[0]);
    }
}

#[test]
fn cmyk_jpeg_becomes_rgb() {
    // Adobe stores CMYK inverted: (255 − C, 255 − M, 255 − Y, 255 − K). Pure red, then 50% gray.
    let (w, h) = (16, 16);
    let red_then_gray: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            if i < w * h / 2 {
                [255, 0, 0, 255]
            } else {
                [255, 255, 255, 128]
            }
        })
        .collect();
    let img = decode(
        &encode_jpeg(mozjpeg::ColorSpace::JCS_CMYK, w, h, &red_then_gray),
        limits(),
    )
    .unwrap();
    let close = |a: [u8; 3], b: [u8; 3]| a.iter().zip(&b).all(|(x, y)| x.abs_diff(*y) <= 2);
    assert!(
        close(img.get_pixel(3, 2), [255, 0, 0]),
        "{:?}",
        img.get_pixel(3, 2)
    );
    assert!(
        close(img.get_pixel(3, 13), [128, 128, 128]),
        "{:?}",
        img.get_pixel(3, 13)
    );
}

/// `jpeg` with an APP1 Exif segment (little-endian TIFF, one IFD entry) setting `orientation`.
fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // IFD0 offset
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes()); // count
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]); // value padding
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = vec![0xff, 0xe1];
    app1.extend(((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend(b"Exif\0\0");
    app1.extend(&tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend(&app1);
    out.extend(&jpeg[2..]);
    out
}

#[test]
fn exif_orientation_is_applied() {
    let jpeg = read("single_640x480_sample1.jpg");
    let upright = decode(&jpeg, limits()).unwrap();
    let (w, h) = (upright.width, upright.height);
    assert_eq!((w, h), (640, 480));

    // Orientation 1 changes nothing.
    assert_eq!(
        decode(&with_orientation(&jpeg, 1), limits()).unwrap(),
        upright
    );

    // 6: the camera was turned clockwise, so the picture is turned 90° clockwise to stand up:
    // its top-left pixel was the stored bottom-left one.
    let r6 = decode(&with_orientation(&jpeg, 6), limits()).unwrap();
    assert_eq!((r6.width, r6.height), (h, w));
    assert_eq!(r6.get_pixel(0, 0), upright.get_pixel(0, h - 1));
    assert_eq!(r6.get_pixel(h - 1, 0), upright.get_pixel(0, 0));
    for y in (0..w).step_by(7) {
        for x in (0..h).step_by(5) {
            assert_eq!(r6.get_pixel(x, y), upright.get_pixel(y, h - 1 - x));
        }
    }

    // 8 is the opposite turn; 3 is 180°, i.e. 6 twice.
    let r8 = decode(&with_orientation(&jpeg, 8), limits()).unwrap();
    assert_eq!((r8.width, r8.height), (h, w));
    assert_eq!(r8.get_pixel(0, 0), upright.get_pixel(w - 1, 0));
    let r3 = decode(&with_orientation(&jpeg, 3), limits()).unwrap();
    assert_eq!((r3.width, r3.height), (w, h));
    assert_eq!(r3.get_pixel(0, 0), upright.get_pixel(w - 1, h - 1));
    assert_eq!(r3.get_pixel(w - 1, 0), upright.get_pixel(0, h - 1));

    // Mirrors: 2 horizontal, 4 vertical, 5 transpose, 7 transverse.
    let r2 = decode(&with_orientation(&jpeg, 2), limits()).unwrap();
    assert_eq!(r2.get_pixel(0, 5), upright.get_pixel(w - 1, 5));
    let r4 = decode(&with_orientation(&jpeg, 4), limits()).unwrap();
    assert_eq!(r4.get_pixel(5, 0), upright.get_pixel(5, h - 1));
    let r5 = decode(&with_orientation(&jpeg, 5), limits()).unwrap();
    assert_eq!(r5.get_pixel(3, 9), upright.get_pixel(9, 3));
    let r7 = decode(&with_orientation(&jpeg, 7), limits()).unwrap();
    assert_eq!(r7.get_pixel(3, 9), upright.get_pixel(w - 1 - 9, h - 1 - 3));

    // The same pixels in total, only moved.
    let sorted = |img: &RgbImage| {
        let mut v: Vec<[u8; 3]> = img
            .data
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        v.sort_unstable();
        v
    };
    assert!(sorted(&r6) == sorted(&upright));

    // An invalid orientation value is ignored.
    assert_eq!(
        decode(&with_orientation(&jpeg, 9), limits()).unwrap(),
        upright
    );
}

/// A `width`×`height` PNG of `color`/`depth` samples, with an optional palette and tRNS.
fn encode_png(
    (width, height): (u32, u32),
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<&[u8]>,
    samples: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = png::Encoder::new(&mut out, width, height);
    e.set_color(color);
    e.set_depth(depth);
    if let Some(p) = palette {
        e.set_palette(p.to_vec());
        e.set_trns(vec![0u8, 255]); // a transparent entry: must not change the colour
    }
    let mut w = e.write_header().unwrap();
    w.write_image_data(samples).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn png_colour_types_become_rgb_like_pillow_convert() {
    use png::{BitDepth, ColorType};
    let size = (3, 2);
    let rgb: Vec<u8> = (0..18u8).map(|i| i * 13).collect();
    let expect_rgb = RgbImage::from_raw(3, 2, rgb.clone()).unwrap();
    let check = |bytes: Vec<u8>, want: &RgbImage, what: &str| {
        let img = decode(&bytes, limits()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(&img, want, "{what}");
    };
    check(
        encode_png(size, ColorType::Rgb, BitDepth::Eight, None, &rgb),
        &expect_rgb,
        "RGB8",
    );
    // Alpha is dropped, not composited.
    let rgba: Vec<u8> = rgb.chunks(3).flat_map(|p| [p[0], p[1], p[2], 7]).collect();
    check(
        encode_png(size, ColorType::Rgba, BitDepth::Eight, None, &rgba),
        &expect_rgb,
        "RGBA8",
    );
    // 16-bit samples keep their high byte.
    let rgb16: Vec<u8> = rgb.iter().flat_map(|&v| [v, 0xa5]).collect();
    check(
        encode_png(size, ColorType::Rgb, BitDepth::Sixteen, None, &rgb16),
        &expect_rgb,
        "RGB16",
    );
    let palette: Vec<u8> = rgb.clone();
    check(
        encode_png(
            size,
            ColorType::Indexed,
            BitDepth::Eight,
            Some(&palette),
            &[0, 1, 2, 3, 4, 5],
        ),
        &expect_rgb,
        "palette",
    );

    let gray = [0u8, 40, 80, 120, 160, 250];
    let expect_gray =
        RgbImage::from_raw(3, 2, gray.iter().flat_map(|&g| [g; 3]).collect()).unwrap();
    check(
        encode_png(size, ColorType::Grayscale, BitDepth::Eight, None, &gray),
        &expect_gray,
        "L",
    );
    let gray_alpha: Vec<u8> = gray.iter().flat_map(|&g| [g, 99]).collect();
    check(
        encode_png(
            size,
            ColorType::GrayscaleAlpha,
            BitDepth::Eight,
            None,
            &gray_alpha,
        ),
        &expect_gray,
        "LA",
    );
    // 1-bit gray: 0 → black, 1 → white; rows are byte-padded.
    let bits = [0b1010_0000, 0b0100_0000];
    let expect_bits = RgbImage::from_raw(
        3,
        2,
        [255, 0, 255, 0, 255, 0]
            .iter()
            .flat_map(|&g| [g; 3])
            .collect(),
    )
    .unwrap();
    check(
        encode_png(size, ColorType::Grayscale, BitDepth::One, None, &bits),
        &expect_bits,
        "1-bit",
    );
}

#[test]
fn broken_exif_is_ignored() {
    let jpeg = read("single_640x480_sample1.jpg");
    let upright = decode(&jpeg, limits()).unwrap();
    let rotated = with_orientation(&jpeg, 6);
    // Flip every byte of the APP1 payload (bytes 6..38, after its marker and length) in turn.
    for i in 6..38 {
        let mut bad = rotated.clone();
        bad[i] ^= 0xa5;
        let img = decode(&bad, limits()).unwrap_or_else(|e| panic!("byte {i}: {e}"));
        assert!(img.data.len() == upright.data.len(), "byte {i}");
    }
}

#[test]
fn rgb_image_helpers() {
    assert!(RgbImage::from_raw(2, 2, vec![0; 11]).is_none());
    let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
    assert_eq!(img.get_pixel(1, 0), [4, 5, 6]);
}

/// Every prefix of a small JPEG and PNG, and byte flips all through them: an error or an
/// image, never a panic or an abort.
#[test]
fn truncations_and_corruptions_never_panic() {
    let (w, h) = (48, 40);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    let jpeg = encode_jpeg(mozjpeg::ColorSpace::JCS_RGB, w, h, &rgb);
    let png = read("synthetic_tiny_8x8.png");
    for file in [&jpeg, &png] {
        let full = decode(file, limits()).unwrap();
        for cut in 0..file.len() {
            if let Ok(img) = decode(&file[..cut], limits()) {
                // Only the closing marker/chunk may be missing.
                assert!(
                    cut + 12 >= file.len(),
                    "a {cut}-byte prefix of {} decoded",
                    file.len()
                );
                assert_eq!(img, full);
            }
        }
        for i in 0..file.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x55;
            if let Ok(img) = decode(&bad, limits()) {
                assert_eq!(img.data.len(), img.width as usize * img.height as usize * 3);
            }
        }
    }
}

/// A progressive JPEG encoded here (libjpeg's standard progressive script).
fn progressive_jpeg(width: usize, height: usize) -> Vec<u8> {
    let pixels: Vec<u8> = (0..width * height * 3)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(width, height);
    c.set_quality(90.0);
    c.set_progressive_mode();
    let mut c = c.start_compress(Vec::new()).unwrap();
    c.write_scanlines(&pixels).unwrap();
    c.finish().unwrap()
}

#[test]
fn progressive_jpegs_decode() {
    let jpeg = progressive_jpeg(64, 48);
    let img = decode(&jpeg, limits()).unwrap_or_else(|e| panic!("progressive JPEG: {e}"));
    assert_eq!((img.width, img.height), (64, 48));
}

#[test]
fn a_jpeg_with_too_many_scans_is_refused_before_decoding() {
    // A real progressive file whose first scan is repeated 150 times: small, but each scan would
    // cost the decoder a pass over the image.
    let jpeg = progressive_jpeg(64, 48);
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a start of scan");
    let next = sos
        + 2
        + jpeg[sos + 2..]
            .windows(2)
            .position(|w| w[0] == 0xFF && w[1] != 0x00 && !(0xD0..=0xD7).contains(&w[1]))
            .expect("the marker after the first scan");
    let mut hostile = jpeg[..sos].to_vec();
    for _ in 0..150 {
        hostile.extend_from_slice(&jpeg[sos..next]);
    }
    hostile.extend_from_slice(&[0xFF, 0xD9]);
    match decode(&hostile, limits()) {
        Err(ImageError::TooManyScans { scans, max }) => {
            assert_eq!(scans, 150);
            assert!(max < scans);
        }
        other => panic!("expected TooManyScans, got {}", describe(&other)),
    }
}
