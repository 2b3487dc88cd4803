//! What the tests of both crates share: where the shared fixtures and models are (production
//! code never knows), a reader for the `.npy` golden outputs of the Python reference,
//! [`layout`], checks that keep the source tree's shape (no import circles, no huge files),
//! [`log_capture`], a log writer whose lines a test can count, and
//! (feature `tcp-proxy`) `tcp_proxy`, a proxy a test cuts between a server and its database.

pub mod layout;
pub mod log_capture;
#[cfg(feature = "tcp-proxy")]
pub mod tcp_proxy;

use std::path::PathBuf;

/// `../shared` beside the checkout, or `ROLLCALL_SHARED`.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("ROLLCALL_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The model files: `ROLLCALL_MODELS`, or `shared/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("ROLLCALL_MODELS") {
        Some(p) => PathBuf::from(p),
        None => shared_dir().join("models"),
    }
}

/// `shared/fixtures/parity`.
pub fn parity_dir() -> PathBuf {
    shared_dir().join("fixtures/parity")
}

/// A little-endian float32 C-order `.npy` file: (shape, values).
pub fn read_npy(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{}: not an .npy file",
        path.display()
    );
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[header_start..header_start + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'"),
        "{}: expected float32, header {header}",
        path.display()
    );
    assert!(
        header.contains("'fortran_order': False"),
        "{}: Fortran order",
        path.display()
    );
    let shape_src = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_src
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[header_start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}: size",
        path.display()
    );
    (shape, data)
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
