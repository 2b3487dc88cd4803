//! Test-side image decoding with Pillow's pixels: JPEG through libjpeg-turbo (mozjpeg), PNG
//! through `png`, both to 8-bit RGB. Stands in for `rollcall_vision::image::decode` in the
//! detector tests until that lands; the parity test checks the pixels against Pillow's hash.

use rollcall_vision::RgbImage;

pub fn decode(bytes: &[u8]) -> RgbImage {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        let mut d = mozjpeg::Decompress::new_mem(bytes)
            .expect("jpeg header")
            .rgb()
            .expect("jpeg rgb");
        let (width, height) = (d.width() as u32, d.height() as u32);
        let data = d.read_scanlines::<u8>().expect("jpeg scanlines");
        return RgbImage {
            width,
            height,
            data,
        };
    }
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().expect("png header");
    let mut buf = vec![0; r.output_buffer_size().expect("png size")];
    let info = r.next_frame(&mut buf).expect("png frame");
    let px = &buf[..info.buffer_size()];
    let data: Vec<u8> = match info.color_type {
        png::ColorType::Rgb => px.to_vec(),
        png::ColorType::Rgba => px
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => px.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => px
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    RgbImage {
        width: info.width,
        height: info.height,
        data,
    }
}
