//! torch `.pt` state dicts: the legacy (pre-1.6) stream of pickles and the zip archive.

use super::pickle::{self, DType, Obj, TensorRef, Unpickled, Value};
use crate::tensor::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// The legacy format starts with this number, pickled.
const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const LEGACY_PROTOCOL: i128 = 1001;

/// Parse a `.pt` file already in memory (not compressed). Errors are plain reasons; the caller
/// adds the path.
pub(crate) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    if bytes.starts_with(b"PK\x03\x04") {
        parse_zip(bytes)
    } else if bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        parse_legacy(bytes)
    } else {
        Err("not a torch file (neither a zip archive nor a legacy torch pickle)".into())
    }
}

fn parse_legacy(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Unpickled, String> {
        let (u, n) = pickle::unpickle(&bytes[pos..]).map_err(|e| format!("{what}: {e}"))?;
        pos += n;
        Ok(u)
    };
    let magic = next("magic number")?;
    if !matches!(magic.root, Value::Int(LEGACY_MAGIC)) {
        return Err("not a torch file (wrong magic number)".into());
    }
    let proto = next("protocol version")?;
    if !matches!(proto.root, Value::Int(LEGACY_PROTOCOL)) {
        return Err(format!(
            "unsupported legacy torch protocol {:?}",
            proto.root
        ));
    }
    let sys_info = next("sys_info")?;
    if let Some(Obj::Dict(items)) = sys_info.obj(&sys_info.root) {
        let big_endian = items
            .iter()
            .any(|(k, v)| matches!((k, v), (Value::Str(k), Value::Bool(false)) if &**k == "little_endian"));
        if big_endian {
            return Err("big-endian torch files are not supported".into());
        }
    }
    let state = next("state dict")?;
    let keys = next("storage key list")?;
    let Some(Obj::List(keys)) = keys.obj(&keys.root) else {
        return Err("storage key list is not a list".into());
    };

    // Each storage: its element count (u64 LE), then the raw elements, in key-list order.
    let dtypes = storage_dtypes(&state);
    let mut raw: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let key = match key {
            Value::Str(s) => s.to_string(),
            _ => return Err("storage key is not a string".into()),
        };
        let dtype = *dtypes
            .get(&key)
            .ok_or_else(|| format!("storage `{key}` is listed but no tensor uses it"))?;
        let head = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| format!("truncated before storage `{key}`"))?;
        let count = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(dtype.size()))
            .ok_or_else(|| format!("storage `{key}` declares an impossible size"))?;
        let start = pos + 8;
        let data = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| format!("truncated inside storage `{key}`"))?;
        raw.insert(key, data);
        pos = start + len;
    }
    collect(&state, |key| {
        raw.get(key)
            .copied()
            .ok_or_else(|| format!("missing storage `{key}`"))
            .map(Into::into)
    })
}

fn parse_zip(bytes: &[u8]) -> Result<BTreeMap<String, Tensor>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("bad zip archive: {e}"))?;
    // The top-level folder is the file stem at save time, not always `archive/`.
    let pkl = zip
        .file_names()
        .filter(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .min_by_key(|n| n.len())
        .map(str::to_string)
        .ok_or("zip archive without data.pkl (not a torch checkpoint)")?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    if let Ok(bo) = read_entry(&mut zip, &format!("{prefix}byteorder")) {
        if bo.trim_ascii() != b"little" {
            return Err("big-endian torch files are not supported".into());
        }
    }
    let pickled = read_entry(&mut zip, &pkl)?;
    let (state, _) = pickle::unpickle(&pickled).map_err(|e| format!("data.pkl: {e}"))?;
    collect(&state, |key| {
        read_entry(&mut zip, &format!("{prefix}data/{key}")).map(Into::into)
    })
}

/// Entries are read up to their declared size and at most this much, so a deflate bomb
/// cannot take the machine down (torch stores its entries uncompressed anyway).
const MAX_ENTRY: u64 = 2 << 30;

fn read_entry(
    zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let f = zip
        .by_name(name)
        .map_err(|e| format!("zip entry `{name}`: {e}"))?;
    let limit = f.size().min(MAX_ENTRY);
    let mut out = Vec::new();
    f.take(limit)
        .read_to_end(&mut out)
        .map_err(|e| format!("zip entry `{name}`: {e}"))?;
    Ok(out)
}

/// Element type of every root storage the pickle mentions.
fn storage_dtypes(state: &Unpickled) -> HashMap<String, DType> {
    state
        .arena
        .iter()
        .filter_map(|o| match o {
            Obj::Storage(s) => Some((s.key.clone(), s.dtype)),
            _ => None,
        })
        .collect()
}

/// Walk the state dict and copy every floating tensor out of its storage. `storage(key)` yields
/// the raw bytes of a root storage (borrowed or owned).
fn collect<'a>(
    state: &Unpickled,
    mut storage: impl FnMut(&str) -> Result<std::borrow::Cow<'a, [u8]>, String>,
) -> Result<BTreeMap<String, Tensor>, String> {
    let Some(Obj::Dict(items)) = state.obj(&state.root) else {
        return Err("the pickle is not a state dict (no dict at the top)".into());
    };
    let mut cache: HashMap<String, std::borrow::Cow<'a, [u8]>> = HashMap::new();
    let mut out = BTreeMap::new();
    for (k, v) in items {
        let Value::Str(name) = k else {
            return Err("state dict key is not a string".into());
        };
        let Some(Obj::Tensor(t)) = state.obj(v) else {
            return Err(format!("state dict entry `{name}` is not a tensor"));
        };
        if !t.storage.dtype.is_float() {
            continue; // e.g. num_batches_tracked: bookkeeping, not weights
        }
        if !cache.contains_key(&t.storage.key) {
            let raw = storage(&t.storage.key)?;
            cache.insert(t.storage.key.clone(), raw);
        }
        let raw = &cache[&t.storage.key];
        let tensor = gather(raw, t).map_err(|e| format!("tensor `{name}`: {e}"))?;
        out.insert(name.to_string(), tensor);
    }
    Ok(out)
}

/// Copy a (possibly strided) view out of its storage into a contiguous f32 tensor.
fn gather(raw: &[u8], t: &TensorRef) -> Result<Tensor, String> {
    let s = &t.storage;
    let esize = s.dtype.size();
    let root_len = (raw.len() / esize) as u64;
    if root_len < s.numel {
        return Err(format!(
            "storage `{}` holds {root_len} elements, {} declared",
            s.key, s.numel
        ));
    }
    // A legacy view is a slice of the root storage.
    let (base, avail) = match s.view {
        Some((off, len)) if off.checked_add(len).is_some_and(|e| e <= s.numel) => (off, len),
        Some(_) => return Err(format!("storage view outside storage `{}`", s.key)),
        None => (0, s.numel),
    };
    let shape: Vec<usize> = t
        .size
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| "size too large")?;
    let numel = t
        .size
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or("size overflows")?;
    if numel == 0 {
        return Ok(Tensor::new(shape, Vec::new()));
    }
    // Highest element index the view touches, checked against the storage.
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |a, (&d, &st)| {
            a.checked_add((d - 1).checked_mul(st)?)
        })
        .ok_or("offset/stride overflow")?;
    if last >= avail {
        return Err(format!(
            "view reaches element {last} of a storage of {avail}"
        ));
    }
    // State dicts never hold broadcast (stride-0) views; refusing views larger than their storage
    // keeps a tiny hostile file from asking for gigabytes.
    if numel > avail {
        return Err(format!("{numel} elements from a storage of {avail}"));
    }
    let elem = |i: u64| -> f32 {
        let at = ((base + i) as usize) * esize;
        convert(s.dtype, &raw[at..at + esize])
    };
    let mut data = Vec::with_capacity(numel as usize);
    let contiguous = {
        let mut expect = 1u64;
        t.size.iter().zip(&t.stride).rev().all(|(&d, &st)| {
            let ok = d == 1 || st == expect;
            expect *= d;
            ok
        })
    };
    if contiguous {
        let start = (base + t.offset) as usize * esize;
        let bytes = &raw[start..start + numel as usize * esize];
        data.extend(bytes.chunks_exact(esize).map(|b| convert(s.dtype, b)));
    } else {
        // Odometer over the index space, row-major.
        let nd = t.size.len();
        let mut idx = vec![0u64; nd];
        let mut at = t.offset;
        for _ in 0..numel {
            data.push(elem(at));
            for d in (0..nd).rev() {
                // Wrapping: a size-1 dimension may carry any stride without ever using it.
                idx[d] += 1;
                at = at.wrapping_add(t.stride[d]);
                if idx[d] < t.size[d] {
                    break;
                }
                at = at.wrapping_sub(t.stride[d].wrapping_mul(t.size[d]));
                idx[d] = 0;
            }
        }
    }
    Ok(Tensor::new(shape, data))
}

fn convert(dtype: DType, b: &[u8]) -> f32 {
    match dtype {
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        DType::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
        DType::F16 => f16_to_f32(u16::from_le_bytes([b[0], b[1]])),
        DType::BF16 => f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        _ => unreachable!("integer storages are skipped before gathering"),
    }
}

/// IEEE half → single, exact (subnormals, infinities and NaN included).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: value = f · 2^-24, exact in f32.
            let v = f as f32 * (1.0 / 16_777_216.0);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}
