//! A small pickle virtual machine: exactly the opcodes `torch.save` writes for a state dict
//! (protocol 2, plus the few later opcodes that are harmless to accept), and only the globals a
//! state dict needs. Anything else is refused, so a hostile file cannot make us run or build
//! arbitrary objects.
//!
//! Containers live in an arena and values refer to them by index: sharing through the memo is
//! free, cycles cannot leak or recurse, and memory stays linear in the input length.

use std::collections::HashMap;
use std::rc::Rc;

/// Element type of a torch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    fn from_storage_name(name: &str) -> Option<DType> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ShortStorage" => DType::I16,
            "CharStorage" => DType::I8,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub(crate) fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i128),
    /// Floats and bytes are read past but never needed by a state dict.
    Float,
    Str(Rc<str>),
    Bytes,
    /// Index into [`Unpickled::arena`].
    Obj(usize),
}

/// The globals a state dict may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    Storage(DType),
}

/// A storage as named by a persistent id. `view` is the legacy format's (offset, length)
/// slice of the root storage.
#[derive(Clone, Debug)]
pub(crate) struct StorageRef {
    pub dtype: DType,
    pub key: String,
    pub numel: u64,
    pub view: Option<(u64, u64)>,
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`, all in elements.
#[derive(Clone, Debug)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: u64,
    pub size: Vec<u64>,
    pub stride: Vec<u64>,
}

#[derive(Debug)]
pub(crate) enum Obj {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The result of one pickle: its root value and the objects it refers to.
#[derive(Debug)]
pub(crate) struct Unpickled {
    pub arena: Vec<Obj>,
    pub root: Value,
}

impl Unpickled {
    pub(crate) fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Obj(i) => self.arena.get(*i),
            _ => None,
        }
    }
}

/// Run one pickle from the start of `data`; returns the result and the bytes consumed.
pub(crate) fn unpickle(data: &[u8]) -> Result<(Unpickled, usize), String> {
    let mut vm = Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        arena: Vec::new(),
    };
    let root = vm.run()?;
    Ok((
        Unpickled {
            arena: vm.arena,
            root,
        },
        vm.pos,
    ))
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    arena: Vec<Obj>,
}

impl<'a> Vm<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let data: &'a [u8] = self.data;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or("truncated pickle")?;
        let s = &data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.arr::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    fn len_u64(&mut self) -> Result<usize, String> {
        usize::try_from(u64::from_le_bytes(self.arr()?)).map_err(|_| "truncated pickle".to_string())
    }

    fn line(&mut self) -> Result<&'a str, String> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated pickle")?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8".to_string())
    }

    fn text(bytes: &[u8]) -> Result<Value, String> {
        let s = std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8".to_string())?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn push_obj(&mut self, obj: Obj) {
        self.arena.push(obj);
        self.stack.push(Value::Obj(self.arena.len() - 1));
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pickle pops past a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn top(&self) -> Result<&Value, String> {
        self.stack
            .last()
            .ok_or_else(|| "pickle stack underflow".to_string())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("pickle has no MARK to pop")?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    /// The arena index of the container on top of the stack.
    fn top_obj(&self) -> Result<usize, String> {
        match self.top()? {
            Value::Obj(i) => Ok(*i),
            _ => Err("pickle appends to a non-container".into()),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<(), String> {
        let i = self.top_obj()?;
        match &mut self.arena[i] {
            Obj::List(l) => {
                l.extend(items);
                Ok(())
            }
            _ => Err("pickle appends to a non-list".into()),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<(), String> {
        if !items.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of items".into());
        }
        let i = self.top_obj()?;
        let Obj::Dict(d) = &mut self.arena[i] else {
            return Err("pickle sets an item on a non-dict".into());
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), String> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("pickle memo key {key} is unset"))?;
        self.stack.push(v);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let g = match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch", s) if DType::from_storage_name(s).is_some() => {
                Global::Storage(DType::from_storage_name(s).expect("checked above"))
            }
            _ => {
                return Err(format!(
                    "foreign pickle global `{module}.{name}` (not a plain state dict)"
                ))
            }
        };
        self.push_obj(Obj::Global(g));
        Ok(())
    }

    fn tuple(&self, v: &Value) -> Result<&[Value], String> {
        match v {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Tuple(t) => Ok(t),
                _ => Err("expected a tuple".into()),
            },
            _ => Err("expected a tuple".into()),
        }
    }

    fn reduce(&mut self) -> Result<(), String> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let g = match &callable {
            Value::Obj(i) => match &self.arena[*i] {
                Obj::Global(g) => *g,
                _ => return Err("REDUCE on a non-callable".into()),
            },
            _ => return Err("REDUCE on a non-callable".into()),
        };
        let args = self.tuple(&args)?;
        match g {
            Global::OrderedDict => {
                if !args.is_empty() {
                    return Err("OrderedDict built with arguments".into());
                }
                self.push_obj(Obj::Dict(Vec::new()));
            }
            Global::RebuildTensorV2 | Global::RebuildTensor => {
                if args.len() < 4 {
                    return Err("_rebuild_tensor with too few arguments".into());
                }
                let storage = match &args[0] {
                    Value::Obj(i) => match &self.arena[*i] {
                        Obj::Storage(s) => s.clone(),
                        _ => return Err("tensor without a storage".into()),
                    },
                    _ => return Err("tensor without a storage".into()),
                };
                let offset = as_u64(&args[1])?;
                let size = self.ints(&args[2])?;
                let stride = self.ints(&args[3])?;
                if size.len() != stride.len() {
                    return Err("tensor size and stride differ in length".into());
                }
                self.push_obj(Obj::Tensor(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                }));
            }
            Global::RebuildParameter => {
                let data = args
                    .first()
                    .cloned()
                    .ok_or("_rebuild_parameter without data")?;
                self.stack.push(data);
            }
            Global::Storage(_) => return Err("a storage type called as a function".into()),
        }
        Ok(())
    }

    fn ints(&self, v: &Value) -> Result<Vec<u64>, String> {
        self.tuple(v)?.iter().map(as_u64).collect()
    }

    /// `('storage', StorageType, key, location, numel[, view_metadata])`.
    fn persistent_load(&mut self) -> Result<(), String> {
        let pid = self.pop()?;
        let t = self.tuple(&pid)?;
        if t.len() < 5 || !matches!(&t[0], Value::Str(s) if &**s == "storage") {
            return Err("persistent id is not a ('storage', ...) tuple".into());
        }
        let dtype = match &t[1] {
            Value::Obj(i) => match self.arena[*i] {
                Obj::Global(Global::Storage(d)) => d,
                _ => return Err("persistent id without a storage type".into()),
            },
            _ => return Err("persistent id without a storage type".into()),
        };
        let key = match &t[2] {
            Value::Str(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            _ => return Err("storage key is neither a string nor an integer".into()),
        };
        let numel = as_u64(&t[4])?;
        let view = match t.get(5) {
            None | Some(Value::None) => None,
            Some(v) => {
                let vt = self.tuple(v)?;
                if vt.len() != 3 {
                    return Err("storage view metadata is not (key, offset, size)".into());
                }
                Some((as_u64(&vt[1])?, as_u64(&vt[2])?))
            }
        };
        self.push_obj(Obj::Storage(StorageRef {
            dtype,
            key,
            numel,
            view,
        }));
        Ok(())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(format!("pickle protocol {proto} is unknown"));
                    }
                }
                0x95 => {
                    self.arr::<8>()?; // FRAME: a hint only
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.arr()?);
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.arr()?);
                    self.stack.push(Value::Int(v.into()));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.u32()? as usize
                    };
                    let bytes = self.take(n)?;
                    self.stack.push(Value::Int(long_le(bytes)?));
                }
                b'G' => {
                    self.arr::<8>()?;
                    self.stack.push(Value::Float);
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => self.u32()? as usize,
                        0x8c => self.u8()? as usize,
                        _ => self.len_u64()?,
                    };
                    let v = Self::text(self.take(n)?)?;
                    self.stack.push(v);
                }
                b'T' | b'U' => {
                    // Python 2 byte strings: torch wrote ASCII keys and locations with them.
                    let n = if op == b'T' {
                        self.u32()? as usize
                    } else {
                        self.u8()? as usize
                    };
                    let s: String = self.take(n)?.iter().map(|&b| b as char).collect();
                    self.stack.push(Value::Str(Rc::from(s)));
                }
                b'B' | b'C' | 0x8e => {
                    let n = match op {
                        b'B' => self.u32()? as usize,
                        b'C' => self.u8()? as usize,
                        _ => self.len_u64()?,
                    };
                    self.take(n)?;
                    self.stack.push(Value::Bytes);
                }
                b')' => self.push_obj(Obj::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_obj(Obj::Tuple(items));
                }
                b']' => self.push_obj(Obj::List(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::List(items));
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'}' => self.push_obj(Obj::Dict(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push_obj(Obj::Dict(Vec::new()));
                    self.set_items(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                        _ => return Err("STACK_GLOBAL with non-string names".into()),
                    }
                }
                b'R' => self.reduce()?,
                b'b' => {
                    // BUILD sets attributes, e.g. a state dict's `_metadata`: not needed.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => self.persistent_load()?,
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(k.into())?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = u32::try_from(self.memo.len()).map_err(|_| "pickle memo overflow")?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(k.into())?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                _ => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{op:02x} at byte {}",
                        self.pos - 1
                    ))
                }
            }
        }
    }
}

/// A little-endian two's-complement integer of up to 16 bytes (LONG1/LONG4).
fn long_le(bytes: &[u8]) -> Result<i128, String> {
    if bytes.len() > 16 {
        return Err("pickled integer is too large".into());
    }
    if bytes.is_empty() {
        return Ok(0);
    }
    let fill = if bytes[bytes.len() - 1] & 0x80 != 0 {
        0xff
    } else {
        0
    };
    let mut buf = [fill; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i128::from_le_bytes(buf))
}

pub(crate) fn as_u64(v: &Value) -> Result<u64, String> {
    match v {
        Value::Int(i) => {
            u64::try_from(*i).map_err(|_| format!("expected a non-negative integer, found {i}"))
        }
        _ => Err("expected an integer".into()),
    }
}
