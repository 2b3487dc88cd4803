//! The weight readers against the real published files, plus small hand-made torch files for
//! strided views, dtypes and every way a file can be broken.

use rollcall_test_support as common;

use rollcall_vision::weights::{load_face_api, load_torch, load_torch_bytes};
use rollcall_vision::ModelError;
use std::io::Write;
use std::path::{Path, PathBuf};

fn mtcnn(name: &str) -> PathBuf {
    common::models_dir().join("mtcnn").join(name)
}

fn parity_checkpoint() -> PathBuf {
    common::parity_dir().join("irv1_parity.pt.zst")
}

/// `m[name]` at a row-major multi-index.
fn at(m: &rollcall_vision::weights::TensorMap, name: &str, idx: &[usize]) -> f32 {
    let t = m.get(name).unwrap();
    assert_eq!(t.shape.len(), idx.len(), "{name}: rank");
    let flat = idx.iter().zip(&t.shape).fold(0, |a, (&i, &d)| {
        assert!(i < d, "{name}: index {idx:?} out of {:?}", t.shape);
        a * d + i
    });
    t.data[flat]
}

/// The error must be `Format`, name the file and contain `needle`.
fn assert_format_error(r: Result<impl std::fmt::Debug, ModelError>, path: &Path, needle: &str) {
    match r {
        Err(e @ ModelError::Format { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "error does not name the file: {msg}"
            );
            assert!(
                msg.contains(needle),
                "error `{msg}` does not mention `{needle}`"
            );
        }
        other => panic!("expected a Format error mentioning `{needle}`, got {other:?}"),
    }
}

/// A tensor name and its shape.
type Key<'a> = (&'a str, &'a [usize]);

#[test]
fn mtcnn_nets_load_with_their_keys_and_shapes() {
    let expected: [(&str, &[Key]); 3] = [
        (
            "pnet.pt",
            &[
                ("conv1.weight", &[10, 3, 3, 3]),
                ("conv1.bias", &[10]),
                ("prelu1.weight", &[10]),
                ("conv2.weight", &[16, 10, 3, 3]),
                ("conv2.bias", &[16]),
                ("prelu2.weight", &[16]),
                ("conv3.weight", &[32, 16, 3, 3]),
                ("conv3.bias", &[32]),
                ("prelu3.weight", &[32]),
                ("conv4_1.weight", &[2, 32, 1, 1]),
                ("conv4_1.bias", &[2]),
                ("conv4_2.weight", &[4, 32, 1, 1]),
                ("conv4_2.bias", &[4]),
            ],
        ),
        (
            "rnet.pt",
            &[
                ("conv1.weight", &[28, 3, 3, 3]),
                ("conv1.bias", &[28]),
                ("prelu1.weight", &[28]),
                ("conv2.weight", &[48, 28, 3, 3]),
                ("conv2.bias", &[48]),
                ("prelu2.weight", &[48]),
                ("conv3.weight", &[64, 48, 2, 2]),
                ("conv3.bias", &[64]),
                ("prelu3.weight", &[64]),
                ("dense4.weight", &[128, 576]),
                ("dense4.bias", &[128]),
                ("prelu4.weight", &[128]),
                ("dense5_1.weight", &[2, 128]),
                ("dense5_1.bias", &[2]),
                ("dense5_2.weight", &[4, 128]),
                ("dense5_2.bias", &[4]),
            ],
        ),
        (
            "onet.pt",
            &[
                ("conv1.weight", &[32, 3, 3, 3]),
                ("conv1.bias", &[32]),
                ("prelu1.weight", &[32]),
                ("conv2.weight", &[64, 32, 3, 3]),
                ("conv2.bias", &[64]),
                ("prelu2.weight", &[64]),
                ("conv3.weight", &[64, 64, 3, 3]),
                ("conv3.bias", &[64]),
                ("prelu3.weight", &[64]),
                ("conv4.weight", &[128, 64, 2, 2]),
                ("conv4.bias", &[128]),
                ("prelu4.weight", &[128]),
                ("dense5.weight", &[256, 1152]),
                ("dense5.bias", &[256]),
                ("prelu5.weight", &[256]),
                ("dense6_1.weight", &[2, 256]),
                ("dense6_1.bias", &[2]),
                ("dense6_2.weight", &[4, 256]),
                ("dense6_2.bias", &[4]),
                ("dense6_3.weight", &[10, 256]),
                ("dense6_3.bias", &[10]),
            ],
        ),
    ];
    for (file, keys) in expected {
        let m = load_torch(&mtcnn(file)).unwrap();
        let names: Vec<&str> = m.tensors.keys().map(String::as_str).collect();
        let mut want: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        want.sort_unstable();
        assert_eq!(names, want, "{file}: keys");
        for (k, shape) in keys {
            let t = m.get_shaped(k, shape).unwrap();
            assert!(
                t.data.iter().all(|v| v.is_finite()),
                "{file} {k}: non-finite value"
            );
            assert!(t.data.iter().any(|&v| v != 0.0), "{file} {k}: all zero");
        }
    }
}

/// These files store their weights transposed (conv1.weight has strides (1, 10, 30, 90)), so
/// these probes check the strided copy. The expected values were read with Python's own pickle
/// module and `struct`, independently of this loader.
#[test]
fn mtcnn_strided_weights_come_out_in_row_major_order() {
    let p = load_torch(&mtcnn("pnet.pt")).unwrap();
    assert_eq!(at(&p, "conv1.weight", &[1, 2, 0, 1]), 1.187_983_4);
    assert_eq!(at(&p, "conv1.weight", &[9, 0, 2, 2]), 0.301_958_3);
    assert_eq!(at(&p, "prelu1.weight", &[3]), 0.441_120_6);
    assert_eq!(at(&p, "conv4_2.bias", &[3]), -0.012_187_507);
    let r = load_torch(&mtcnn("rnet.pt")).unwrap();
    assert_eq!(at(&r, "dense4.weight", &[5, 100]), -0.013_314_383);
    assert_eq!(at(&r, "conv3.weight", &[63, 47, 1, 0]), -0.023_884_248);
    let o = load_torch(&mtcnn("onet.pt")).unwrap();
    assert_eq!(at(&o, "dense6_3.bias", &[9]), 0.746_856_7);
    assert_eq!(at(&o, "dense5.weight", &[255, 1151]), 0.011_740_792);
    assert_eq!(at(&o, "conv2.weight", &[7, 31, 2, 1]), -0.013_276_449);
}

#[test]
fn parity_checkpoint_loads_every_float_tensor() {
    let path = parity_checkpoint();
    let m = load_torch(&path).unwrap();
    assert_eq!(m.path, path);
    // 714 keys minus the 112 int64 `num_batches_tracked`.
    assert_eq!(m.tensors.len(), 602);
    assert!(m
        .tensors
        .keys()
        .all(|k| !k.ends_with("num_batches_tracked")));
    // irv1_golden.json: 23,512,336 state elements, 112 of them num_batches_tracked.
    let elements: usize = m.tensors.values().map(|t| t.len()).sum();
    assert_eq!(elements, 23_512_336 - 112);
    assert!(m
        .tensors
        .values()
        .all(|t| t.data.iter().all(|v| v.is_finite())));

    m.get_shaped("conv2d_1a.conv.weight", &[32, 3, 3, 3])
        .unwrap();
    m.get_shaped("repeat_1.0.branch1.1.bn.running_var", &[32])
        .unwrap();
    m.get_shaped("block8.conv2d.bias", &[1792]).unwrap();
    m.get_shaped("last_linear.weight", &[512, 1792]).unwrap();
    m.get_shaped("last_bn.running_var", &[512]).unwrap();
    assert!(m.get("logits.weight").is_err());

    // Values read independently with Python's pickle + zipfile.
    assert_eq!(at(&m, "conv2d_1a.conv.weight", &[31, 2, 2, 2]), -0.375);
    assert_eq!(at(&m, "last_bn.running_var", &[0]), 5.0);
    assert_eq!(at(&m, "last_bn.running_var", &[511]), 2.5);
    assert_eq!(at(&m, "last_linear.weight", &[511, 1791]), -0.003_906_25);
    assert_eq!(at(&m, "block8.conv2d.bias", &[1791]), 0.015_625);
}

/// The checkpoint's recipe (irv1_golden.json) fixes every BatchNorm and bias value to a small
/// grid, which checks far more values than spot probes can.
#[test]
fn parity_checkpoint_values_follow_the_recipe() {
    let m = load_torch(&parity_checkpoint()).unwrap();
    let on_grid = |v: f32, step: f32, lo: i32, hi: i32| {
        let k = v / step;
        k.fract() == 0.0 && (lo as f32..=hi as f32).contains(&k)
    };
    let mut checked = 0;
    for (name, t) in &m.tensors {
        let ok = |f: &dyn Fn(f32) -> bool| {
            assert!(
                t.data.iter().all(|&v| f(v)),
                "{name} is off the recipe's grid"
            )
        };
        if name.starts_with("last_bn.running_") {
            continue; // calibrated, rounded to 1/16
        } else if name.ends_with("bn.weight") || name == "last_bn.weight" {
            ok(&|v| on_grid(v - 1.0, 1.0 / 32.0, -8, 7));
        } else if name.ends_with("running_mean")
            || name.ends_with("bn.bias")
            || name == "last_bn.bias"
        {
            ok(&|v| on_grid(v, 1.0 / 64.0, -8, 7));
        } else if name.ends_with("running_var") {
            ok(&|v| on_grid(v - 0.5, 1.0 / 64.0, 0, 63)); // 0.5..1.48
        } else if name.ends_with(".bias") {
            ok(&|v| on_grid(v, 1.0 / 128.0, -8, 7));
        } else {
            // Weights are k·step, k in −32..31, step a power of two (the smallest magnitude).
            let step = t
                .data
                .iter()
                .map(|v| v.abs())
                .filter(|&v| v > 0.0)
                .fold(f32::INFINITY, f32::min);
            assert_eq!(
                step.log2().fract(),
                0.0,
                "{name}: step {step} is not a power of two"
            );
            ok(&|v| on_grid(v, step, -32, 31));
        }
        checked += 1;
    }
    assert_eq!(checked, 600);
    let var = &m.get("last_bn.running_var").unwrap().data;
    assert!(var
        .iter()
        .all(|&v| v > 0.0 && on_grid(v, 1.0 / 16.0, 0, i32::MAX)));
}

#[test]
fn plain_and_compressed_checkpoints_read_the_same() {
    let packed = std::fs::read(parity_checkpoint()).unwrap();
    let plain = zstd::stream::decode_all(&packed[..]).unwrap();
    let a = load_torch_bytes(&plain, Path::new("irv1_parity.pt")).unwrap();
    let b = load_torch_bytes(&packed, Path::new("irv1_parity.pt.zst")).unwrap();
    assert_eq!(a.tensors, b.tensors);
}

#[test]
fn face_api_weights_load_with_manifest_shapes() {
    let dir = common::models_dir().join("face-api");
    let manifest = dir.join("face_recognition_model-weights_manifest.json");
    let m = load_face_api(&manifest, &dir.join("face_recognition_model.bin")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let entries = json[0]["weights"].as_array().unwrap();
    assert_eq!(m.tensors.len(), entries.len());
    assert_eq!(entries.len(), 117);
    for e in entries {
        let name = e["name"].as_str().unwrap();
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let t = m.get_shaped(name, &shape).unwrap();
        assert!(t.data.iter().all(|v| v.is_finite()), "{name}: non-finite");
        // Dequantised values lie within [min, min + 255·scale].
        if let Some(q) = e.get("quantization") {
            let (min, scale) = (q["min"].as_f64().unwrap(), q["scale"].as_f64().unwrap());
            let (lo, hi) = ((min - 1e-6) as f32, (min + 255.0 * scale + 1e-6) as f32);
            assert!(
                t.data.iter().all(|&v| (lo..=hi).contains(&v)),
                "{name}: outside the quantisation range"
            );
        }
    }
    m.get_shaped("conv32_down/conv/filters", &[7, 7, 3, 32])
        .unwrap();
    m.get_shaped("fc", &[256, 128]).unwrap();
}

#[test]
fn face_api_bin_of_the_wrong_length_is_refused() {
    let dir = common::models_dir().join("face-api");
    let manifest = dir.join("face_recognition_model-weights_manifest.json");
    let bin = std::fs::read(dir.join("face_recognition_model.bin")).unwrap();
    let tmp = tempdir("faceapi");
    let short = tmp.join("short.bin");
    std::fs::write(&short, &bin[..bin.len() - 1]).unwrap();
    assert_format_error(load_face_api(&manifest, &short), &short, "needs more");
    let long = tmp.join("long.bin");
    let mut extra = bin.clone();
    extra.push(0);
    std::fs::write(&long, &extra).unwrap();
    assert_format_error(
        load_face_api(&manifest, &long),
        &long,
        "the manifest describes",
    );
    let bad_manifest = tmp.join("manifest.json");
    std::fs::write(&bad_manifest, b"{\"weights\": 3}").unwrap();
    assert_format_error(
        load_face_api(&bad_manifest, &long),
        &bad_manifest,
        "manifest",
    );
}

#[test]
fn broken_torch_files_are_format_errors_naming_the_file() {
    let p = Path::new("models/broken.pt");
    assert_format_error(load_torch_bytes(b"", p), p, "empty");
    assert_format_error(
        load_torch_bytes(b"hello, I am not a checkpoint", p),
        p,
        "not a torch file",
    );
    assert_format_error(
        load_torch_bytes(&[0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3], p),
        p,
        "zstd",
    );

    let pnet = std::fs::read(mtcnn("pnet.pt")).unwrap();
    // Cut inside each part: the magic, the state-dict pickle, the key list, the raw data.
    assert_format_error(load_torch_bytes(&pnet[..3], p), p, "not a torch file");
    for cut in [4, 20, 500, 1700, 2000, pnet.len() - 1] {
        assert_format_error(load_torch_bytes(&pnet[..cut], p), p, "truncated");
    }
    let mut wrong_magic = pnet.clone();
    wrong_magic[5] ^= 0xff;
    assert_format_error(load_torch_bytes(&wrong_magic, p), p, "magic");

    let packed = std::fs::read(parity_checkpoint()).unwrap();
    let zip = zstd::stream::decode_all(&packed[..]).unwrap();
    assert!(load_torch_bytes(&zip[..zip.len() / 2], p).is_err());
    assert!(load_torch_bytes(&packed[..packed.len() / 2], p).is_err());
}

#[test]
fn io_errors_name_the_file() {
    let missing = Path::new("no/such/dir/pnet.pt");
    match load_torch(missing) {
        Err(e @ ModelError::Io { .. }) => assert!(e.to_string().contains("no/such/dir/pnet.pt")),
        other => panic!("expected an Io error, got {other:?}"),
    }
}

// ---- hand-made zip checkpoints ----

/// One `_rebuild_tensor_v2` entry of a hand-written state dict.
struct Entry<'a> {
    name: &'a str,
    storage_type: &'a str,
    key: &'a str,
    numel: u8,
    offset: u8,
    size: &'a [u8],
    stride: &'a [u8],
}

fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

fn small_ints(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'(');
    for &i in v {
        out.extend([b'K', i]);
    }
    out.push(b't');
}

/// A protocol-2 pickle of an OrderedDict of tensors, as `torch.save` writes it.
fn state_dict_pickle(entries: &[Entry]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    p.extend(b"ccollections\nOrderedDict\n)R(");
    for e in entries {
        unicode(&mut p, e.name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        unicode(&mut p, "storage");
        p.extend(format!("ctorch\n{}\n", e.storage_type).as_bytes());
        unicode(&mut p, e.key);
        unicode(&mut p, "cpu");
        p.extend([b'K', e.numel, b't', b'Q', b'K', e.offset]);
        small_ints(&mut p, e.size);
        small_ints(&mut p, e.stride);
        p.push(0x89);
        p.extend(b"ccollections\nOrderedDict\n)Rt");
        p.push(b'R');
    }
    p.extend(b"u.");
    p
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rollcall-weights-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn zip_checkpoints_with_any_prefix_views_and_dtypes() {
    let entries = [
        // A transposed view: stride (1, 2) over [0..6].
        Entry {
            name: "t",
            storage_type: "FloatStorage",
            key: "0",
            numel: 6,
            offset: 0,
            size: &[2, 3],
            stride: &[1, 2],
        },
        // An offset view into the same storage.
        Entry {
            name: "odd",
            storage_type: "FloatStorage",
            key: "0",
            numel: 6,
            offset: 1,
            size: &[3],
            stride: &[2],
        },
        Entry {
            name: "half",
            storage_type: "HalfStorage",
            key: "1",
            numel: 3,
            offset: 0,
            size: &[3],
            stride: &[1],
        },
        Entry {
            name: "double",
            storage_type: "DoubleStorage",
            key: "2",
            numel: 1,
            offset: 0,
            size: &[],
            stride: &[],
        },
        Entry {
            name: "steps",
            storage_type: "LongStorage",
            key: "3",
            numel: 1,
            offset: 0,
            size: &[],
            stride: &[],
        },
    ];
    let pkl = state_dict_pickle(&entries);
    let half: Vec<u8> = [0x3c00u16, 0xc000, 0x3800]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let bytes = zip_of(&[
        ("my_model/data.pkl", &pkl),
        ("my_model/byteorder", b"little"),
        (
            "my_model/data/0",
            &f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        ),
        ("my_model/data/1", &half),
        ("my_model/data/2", &(-0.25f64).to_le_bytes()),
        ("my_model/data/3", &7i64.to_le_bytes()),
        ("my_model/version", b"3\n"),
    ]);
    let m = load_torch_bytes(&bytes, Path::new("my_model.pt")).unwrap();
    assert_eq!(m.tensors.len(), 4, "the int64 tensor is skipped");
    assert_eq!(
        m.get_shaped("t", &[2, 3]).unwrap().data,
        [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    );
    assert_eq!(m.get("odd").unwrap().data, [1.0, 3.0, 5.0]);
    assert_eq!(m.get("half").unwrap().data, [1.0, -2.0, 0.5]);
    let d = m.get("double").unwrap();
    assert_eq!(
        (d.shape.as_slice(), d.data.as_slice()),
        (&[][..], &[-0.25f32][..])
    );
    assert!(m.get("steps").is_err());
}

#[test]
fn broken_zip_checkpoints_are_format_errors() {
    let p = Path::new("weird.pt");
    let good = |name| Entry {
        name,
        storage_type: "FloatStorage",
        key: "0",
        numel: 4,
        offset: 0,
        size: &[4],
        stride: &[1],
    };
    let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0]);

    let no_pkl = zip_of(&[("archive/data/0", &data)]);
    assert_format_error(load_torch_bytes(&no_pkl, p), p, "data.pkl");

    let no_storage = zip_of(&[("archive/data.pkl", &state_dict_pickle(&[good("w")]))]);
    assert_format_error(load_torch_bytes(&no_storage, p), p, "archive/data/0");

    let short_storage = zip_of(&[
        ("archive/data.pkl", &state_dict_pickle(&[good("w")])),
        ("archive/data/0", &data[..12]),
    ]);
    assert_format_error(load_torch_bytes(&short_storage, p), p, "declared");

    let past_end = Entry {
        name: "w",
        storage_type: "FloatStorage",
        key: "0",
        numel: 4,
        offset: 2,
        size: &[2, 2],
        stride: &[2, 1],
    };
    let z = zip_of(&[
        ("archive/data.pkl", &state_dict_pickle(&[past_end])),
        ("archive/data/0", &data),
    ]);
    assert_format_error(load_torch_bytes(&z, p), p, "tensor `w`");

    let broadcast = Entry {
        name: "w",
        storage_type: "FloatStorage",
        key: "0",
        numel: 4,
        offset: 0,
        size: &[200, 200],
        stride: &[0, 0],
    };
    let z = zip_of(&[
        ("archive/data.pkl", &state_dict_pickle(&[broadcast])),
        ("archive/data/0", &data),
    ]);
    assert_format_error(load_torch_bytes(&z, p), p, "tensor `w`");

    let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
    let z = zip_of(&[("archive/data.pkl", evil)]);
    assert_format_error(
        load_torch_bytes(&z, p),
        p,
        "foreign pickle global `os.system`",
    );

    let big_endian = zip_of(&[
        ("archive/data.pkl", &state_dict_pickle(&[good("w")])),
        ("archive/byteorder", b"big"),
        ("archive/data/0", &data),
    ]);
    assert_format_error(load_torch_bytes(&big_endian, p), p, "big-endian");

    let not_a_dict = zip_of(&[("archive/data.pkl", b"\x80\x02K\x05.")]);
    assert_format_error(load_torch_bytes(&not_a_dict, p), p, "not a state dict");
}

/// Every prefix of a real file, and many single-byte corruptions, give an error or a result,
/// never a panic.
#[test]
fn truncated_and_corrupted_legacy_files_never_panic() {
    let pnet = std::fs::read(mtcnn("pnet.pt")).unwrap();
    let p = Path::new("pnet.pt");
    for cut in 0..pnet.len() {
        assert!(
            load_torch_bytes(&pnet[..cut], p).is_err(),
            "a {cut}-byte prefix loaded"
        );
    }
    // Flip bytes in the pickles (the first 2 KB); the raw floats behind them are not checked.
    for i in 0..1938 {
        let mut bad = pnet.clone();
        bad[i] = bad[i].wrapping_add(0x5b);
        let _ = load_torch_bytes(&bad, p);
    }
}

/// Pickles built to exhaust the stack or memory of a naive unpickler: a million nested tuples,
/// and a value doubled through the memo 60 times (2^60 leaves if copied).
#[test]
fn hostile_pickles_are_refused_cheaply() {
    let p = Path::new("hostile.pt");
    let mut deep = vec![0x80, 2, b')'];
    deep.extend(std::iter::repeat_n(0x85u8, 1_000_000)); // TUPLE1
    deep.push(b'.');
    let z = zip_of(&[("archive/data.pkl", &deep)]);
    assert_format_error(load_torch_bytes(&z, p), p, "not a state dict");

    let mut laughs = vec![0x80, 2, b')'];
    for _ in 0..60 {
        laughs.extend([b'q', 0, b'h', 0, 0x86]); // memo it, fetch it, pair the two
    }
    laughs.push(b'.');
    let z = zip_of(&[("archive/data.pkl", &laughs)]);
    assert_format_error(load_torch_bytes(&z, p), p, "not a state dict");
}
