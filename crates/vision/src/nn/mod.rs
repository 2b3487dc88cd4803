//! The layers the networks are built from. Each holds its (BatchNorm-folded) weights and has a
//! `forward`. Convolution is almost all of the arithmetic: im2col + GEMM (the `gemm` crate) in
//! one of the paths [`Conv2d::plan`] chooses, or Winograd F(2×2, 3×3). Figures and the
//! reasons for the choices are in `docs/engine.md`.
//!
//! One module per concept: `gemm` (the calls into the `gemm` crate), `threads` (entering
//! rayon's pool, splitting work by channels), `scratch` (per-thread buffers), `activation`,
//! `conv` (the convolution and its paths), `winograd`, `channels_last` (NHWC for MTCNN's crop
//! batches), `layers` (Linear, PReLU, MaxPool2d) and `ops` (weightless tensor operations).

mod activation;
pub mod channels_last;
mod conv;
mod gemm;
mod layers;
mod ops;
mod scratch;
#[cfg(test)]
mod testing;
mod threads;
mod winograd;

pub use activation::{relu_inplace, Activation};
pub use conv::Conv2d;
pub use layers::{Linear, MaxPool2d, PReLU};
pub use ops::{avg_pool2d, cat_channels, global_avg_pool, l2_normalize_rows, softmax_channels};
pub use threads::in_pool;
