//! A fake webcam for Chromium: a still photo, or a sequence of photos, turned into a Y4M clip,
//! which `--use-file-for-fake-video-capture` plays in a loop as the camera.

use std::path::Path;

pub const WIDTH: usize = 640;
pub const HEIGHT: usize = 480;
const FRAMES: usize = 5;
/// The backdrop around the photo: a dark grey, like a dim room.
const BACKDROP: [u8; 3] = [38, 42, 50];

/// Decode `jpeg`, fit it into 640×480 (scaled to the full height, centred on the backdrop) and
/// write `FRAMES` identical YUV 4:2:0 frames to `out`.
pub fn write_from_jpeg(jpeg: &Path, out: &Path) {
    let rgb = fit(&decode(jpeg));
    let (y, u, v) = to_yuv420(&rgb);
    let mut file = format!("YUV4MPEG2 W{WIDTH} H{HEIGHT} F30:1 Ip A1:1 C420jpeg\n").into_bytes();
    for _ in 0..FRAMES {
        file.extend_from_slice(b"FRAME\n");
        file.extend_from_slice(&y);
        file.extend_from_slice(&u);
        file.extend_from_slice(&v);
    }
    std::fs::write(out, file).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

/// The side of the square in the top-left corner (on the backdrop, away from the face) that
/// is white in a clip's first frame and black in the others: a page can tell from it when the
/// looping clip starts over.
pub const MARKER: usize = 24;

/// One frame of `photos[i]` for each `i` of `frames`, fitted as [`write_from_jpeg`] does, at
/// `fps` frames a second; the first frame carries the white [`MARKER`].
pub fn write_clip(photos: &[&Path], frames: &[usize], fps: u32, out: &Path) {
    let planes: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> =
        photos.iter().map(|p| to_yuv420(&fit(&decode(p)))).collect();
    let mut file = format!("YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n").into_bytes();
    for (n, &i) in frames.iter().enumerate() {
        let (mut y, u, v) = planes[i].clone();
        let level = if n == 0 { 235 } else { 16 };
        for row in y.chunks_mut(WIDTH).take(MARKER) {
            row[..MARKER].fill(level);
        }
        file.extend_from_slice(b"FRAME\n");
        file.extend_from_slice(&y);
        file.extend_from_slice(&u);
        file.extend_from_slice(&v);
    }
    std::fs::write(out, file).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

struct Rgb {
    width: usize,
    height: usize,
    data: Vec<[u8; 3]>,
}

fn decode(path: &Path) -> Rgb {
    let read = || -> std::io::Result<Rgb> {
        let mut started = mozjpeg::Decompress::new_path(path)?.rgb()?;
        let (width, height) = (started.width(), started.height());
        let data = started.read_scanlines::<[u8; 3]>()?;
        started.finish()?;
        Ok(Rgb {
            width,
            height,
            data,
        })
    };
    read().unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()))
}

/// Bilinear scale to the frame height, centred horizontally on the backdrop.
fn fit(src: &Rgb) -> Rgb {
    let scale = (HEIGHT as f32 / src.height as f32).min(WIDTH as f32 / src.width as f32);
    let (w, h) = (
        (src.width as f32 * scale) as usize,
        (src.height as f32 * scale) as usize,
    );
    let (left, top) = ((WIDTH - w) / 2, (HEIGHT - h) / 2);
    let mut data = vec![BACKDROP; WIDTH * HEIGHT];
    for y in 0..h {
        let sy = ((y as f32 + 0.5) / scale - 0.5).clamp(0.0, (src.height - 1) as f32);
        let (y0, fy) = (sy.floor() as usize, sy.fract());
        let y1 = (y0 + 1).min(src.height - 1);
        for x in 0..w {
            let sx = ((x as f32 + 0.5) / scale - 0.5).clamp(0.0, (src.width - 1) as f32);
            let (x0, fx) = (sx.floor() as usize, sx.fract());
            let x1 = (x0 + 1).min(src.width - 1);
            let px = |xx: usize, yy: usize| src.data[yy * src.width + xx];
            let (a, b, c, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
            let mut out = [0u8; 3];
            for ch in 0..3 {
                let top_row = a[ch] as f32 * (1.0 - fx) + b[ch] as f32 * fx;
                let bottom_row = c[ch] as f32 * (1.0 - fx) + d[ch] as f32 * fx;
                out[ch] = (top_row * (1.0 - fy) + bottom_row * fy).round() as u8;
            }
            data[(y + top) * WIDTH + x + left] = out;
        }
    }
    Rgb {
        width: WIDTH,
        height: HEIGHT,
        data,
    }
}

/// BT.601 studio range, the colour space Chromium assumes for camera frames.
fn to_yuv420(rgb: &Rgb) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let y = rgb
        .data
        .iter()
        .map(|&[r, g, b]| {
            let (r, g, b) = (r as f32, g as f32, b as f32);
            clamp(16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0)
        })
        .collect();
    let (cw, chh) = (rgb.width / 2, rgb.height / 2);
    let (mut u, mut v) = (Vec::with_capacity(cw * chh), Vec::with_capacity(cw * chh));
    for cy in 0..chh {
        for cx in 0..cw {
            let mut sum = [0f32; 3];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = rgb.data[(2 * cy + dy) * rgb.width + 2 * cx + dx];
                for ch in 0..3 {
                    sum[ch] += p[ch] as f32 / 4.0;
                }
            }
            let [r, g, b] = sum;
            u.push(clamp(
                128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0,
            ));
            v.push(clamp(128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0));
        }
    }
    (y, u, v)
}
