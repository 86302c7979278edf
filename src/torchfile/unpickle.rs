//! A whitelisting unpickler for `torch.save`'s `data.pkl`: the opcodes of pickle protocols 2–5
//! that build plain values and containers, persistent ids for storages, and exactly the globals
//! needed to rebuild tensors and `OrderedDict`s. Nothing a pickle asks for is executed: every
//! other global or opcode is a typed error naming it.
//!
//! Containers live in an arena and the stack holds indices, so memo look-ups copy no data (a
//! pickle cannot grow the memory beyond a constant per opcode) and shared or self-referencing
//! containers are cheap.

use std::collections::HashMap;
use std::rc::Rc;

use super::dtype::Dtype;
use crate::error::TorchProblem;

/// A pickle value; containers and tensors are [`Object`]s in the arena.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Global(Global),
    /// Index into [`Unpickled::objects`].
    Obj(usize),
}

/// The globals a pickle may name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter`.
    RebuildParameter,
    /// `torch.<Type>Storage` (and `torch.UntypedStorage`).
    Storage(Dtype),
}

impl Global {
    fn lookup(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", class) => Dtype::from_storage_class(class).map(Global::Storage),
            _ => None,
        }
    }
}

/// A storage named by a persistent id `('storage', type, key, location, numel)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub dtype: Dtype,
    /// The archive entry `data/<key>`.
    pub key: Rc<str>,
    /// Claimed element count (checked against the entry before any use).
    pub numel: i64,
}

/// A tensor view `_rebuild_tensor_v2(storage, offset, size, stride, ...)` (unchecked values).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// Containers and tensors built by the pickle.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Object {
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict or OrderedDict, items in insertion order (a repeated key is resolved by the reader).
    Dict(Vec<(Value, Value)>),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The result of a pickle: its root value and the arena it indexes.
#[derive(Debug)]
pub(crate) struct Unpickled {
    pub root: Value,
    pub objects: Vec<Object>,
}

impl Unpickled {
    /// The object `v` refers to, if it is one.
    pub fn object(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Obj(i) => self.objects.get(*i),
            _ => None,
        }
    }
}

type Res<T> = std::result::Result<T, TorchProblem>;

/// The most dimensions a tensor may have (torch's own limit is lower), so that a pickle cannot
/// make every tensor copy a long tuple.
const MAX_DIMS: usize = 64;

fn malformed<T>(msg: impl Into<String>) -> Res<T> {
    Err(TorchProblem::Malformed(msg.into()))
}

/// The virtual machine: input cursor, stack, mark stack, memo and arena.
struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    objects: Vec<Object>,
}

/// Runs `data` (a whole `data.pkl`) and returns its root value.
pub(crate) fn unpickle(data: &[u8]) -> Res<Unpickled> {
    let mut vm = Vm {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: Vec::new(),
    };
    loop {
        let at = vm.pos;
        let op = vm.byte()?;
        if op == b'.' {
            let root = vm.pop()?;
            return Ok(Unpickled {
                root,
                objects: vm.objects,
            });
        }
        vm.step(op, at)?;
    }
}

impl Vm<'_> {
    fn take(&mut self, n: usize) -> Res<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(TorchProblem::Truncated(format!(
                "data.pkl ends at byte {} inside an opcode that needs {n} more bytes at {}",
                self.data.len(),
                self.pos
            )));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Res<u8> {
        Ok(self.take(1)?[0])
    }

    fn uint(&mut self, n: usize) -> Res<u64> {
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(b))
    }

    /// A length field, checked against the bytes left so nothing is sized from it unchecked.
    fn len(&mut self, n: usize) -> Res<usize> {
        let v = self.uint(n)?;
        let left = (self.data.len() - self.pos) as u64;
        if v > left {
            return Err(TorchProblem::Truncated(format!(
                "a length of {v} bytes at byte {} of data.pkl, but only {left} are left",
                self.pos
            )));
        }
        Ok(v as usize)
    }

    fn line(&mut self) -> Res<&str> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(TorchProblem::Truncated(
                "data.pkl ends inside a GLOBAL name".into(),
            ));
        };
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n])
            .map_err(|_| TorchProblem::Malformed("a GLOBAL name is not UTF-8".into()))
    }

    fn text(&mut self, n: usize) -> Res<Value> {
        let at = self.pos;
        let s = std::str::from_utf8(self.take(n)?).map_err(|_| {
            TorchProblem::Malformed(format!("the string at byte {at} of data.pkl is not UTF-8"))
        })?;
        Ok(Value::Str(s.into()))
    }

    fn pop(&mut self) -> Res<Value> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => malformed("pop from an empty pickle stack"),
        }
    }

    /// Pops everything above the last mark.
    fn pop_mark(&mut self) -> Res<Vec<Value>> {
        let Some(m) = self.marks.pop() else {
            return malformed("an opcode needs a MARK but there is none");
        };
        if m > self.stack.len() {
            return malformed("a MARK above the top of the stack");
        }
        Ok(self.stack.split_off(m))
    }

    fn new_obj(&mut self, o: Object) -> Value {
        self.objects.push(o);
        Value::Obj(self.objects.len() - 1)
    }

    fn top_mut(&mut self) -> Res<&mut Object> {
        match self.stack.last() {
            Some(Value::Obj(i)) => Ok(&mut self.objects[*i]),
            _ => malformed("APPEND/SETITEM/BUILD on a value that is not a container"),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Res<()> {
        match self.top_mut()? {
            Object::List(l) => {
                l.extend(items);
                Ok(())
            }
            _ => malformed("APPEND on something other than a list"),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Res<()> {
        if items.len() % 2 != 0 {
            return malformed("SETITEMS with an odd number of values");
        }
        match self.top_mut()? {
            Object::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            _ => malformed("SETITEM on something other than a dict"),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Res<()> {
        match Global::lookup(module, name) {
            Some(g) => {
                self.stack.push(Value::Global(g));
                Ok(())
            }
            None => Err(TorchProblem::UnsafeGlobal(format!("{module}.{name}"))),
        }
    }

    fn memo_get(&mut self, key: u32) -> Res<()> {
        match self.memo.get(&key) {
            Some(v) => {
                self.stack.push(v.clone());
                Ok(())
            }
            None => malformed(format!("memo entry {key} is read before it is written")),
        }
    }

    fn memo_put(&mut self, key: u32) -> Res<()> {
        let Some(v) = self.stack.last() else {
            return malformed("memo write from an empty stack");
        };
        self.memo.insert(key, v.clone());
        Ok(())
    }

    fn tuple(&mut self, items: Vec<Value>) {
        let t = self.new_obj(Object::Tuple(items));
        self.stack.push(t);
    }

    /// One opcode (`at` is its offset, for messages).
    fn step(&mut self, op: u8, at: usize) -> Res<()> {
        match op {
            0x80 => {
                let proto = self.byte()?;
                if !(2..=5).contains(&proto) {
                    return malformed(format!("pickle protocol {proto} (2 to 5 are read)"));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint.
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.stack.last().cloned();
                self.stack
                    .push(v.ok_or(TorchProblem::Malformed("DUP of nothing".into()))?);
            }
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'K' => {
                let v = self.uint(1)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'M' => {
                let v = self.uint(2)? as i64;
                self.stack.push(Value::Int(v));
            }
            b'J' => {
                let v = self.uint(4)? as u32 as i32 as i64;
                self.stack.push(Value::Int(v));
            }
            0x8a | 0x8b => {
                let n = if op == 0x8a {
                    self.len(1)?
                } else {
                    self.len(4)?
                };
                if n > 8 {
                    return malformed(format!("an integer of {n} bytes (at most 8 are read)"));
                }
                let bytes = self.take(n)?;
                let mut b = if bytes.last().is_some_and(|&x| x & 0x80 != 0) {
                    [0xffu8; 8]
                } else {
                    [0u8; 8]
                };
                b[..n].copy_from_slice(bytes);
                self.stack.push(Value::Int(i64::from_le_bytes(b)));
            }
            b'G' => {
                let b: [u8; 8] = self.take(8)?.try_into().unwrap_or([0; 8]);
                self.stack.push(Value::Float(f64::from_be_bytes(b)));
            }
            b'X' => {
                let n = self.len(4)?;
                let v = self.text(n)?;
                self.stack.push(v);
            }
            0x8c => {
                let n = self.len(1)?;
                let v = self.text(n)?;
                self.stack.push(v);
            }
            0x8d => {
                let n = self.len(8)?;
                let v = self.text(n)?;
                self.stack.push(v);
            }
            b')' => self.tuple(Vec::new()),
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return malformed("TUPLE of more values than the stack holds");
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.tuple(items);
            }
            b't' => {
                let items = self.pop_mark()?;
                self.tuple(items);
            }
            b']' => {
                let l = self.new_obj(Object::List(Vec::new()));
                self.stack.push(l);
            }
            b'l' => {
                let items = self.pop_mark()?;
                let l = self.new_obj(Object::List(items));
                self.stack.push(l);
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?;
            }
            b'}' => {
                let d = self.new_obj(Object::Dict(Vec::new()));
                self.stack.push(d);
            }
            b'd' => {
                let items = self.pop_mark()?;
                let d = self.new_obj(Object::Dict(Vec::new()));
                self.stack.push(d);
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
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.global(&module, &name)?;
            }
            0x93 => {
                let (name, module) = (self.pop()?, self.pop()?);
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return malformed("STACK_GLOBAL of values that are not strings");
                };
                self.global(&module, &name)?;
            }
            b'q' => {
                let k = self.uint(1)? as u32;
                self.memo_put(k)?;
            }
            b'r' => {
                let k = self.uint(4)? as u32;
                self.memo_put(k)?;
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?;
            }
            b'h' => {
                let k = self.uint(1)? as u32;
                self.memo_get(k)?;
            }
            b'j' => {
                let k = self.uint(4)? as u32;
                self.memo_get(k)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let s = self.persistent_load(&pid)?;
                let v = self.new_obj(Object::Storage(s));
                self.stack.push(v);
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = self.reduce(callable, &args)?;
                self.stack.push(v);
            }
            b'b' => {
                let _state = self.pop()?;
                // Attributes set on a dict (a state dict's `_metadata`) are not needed.
                if !matches!(self.top_mut()?, Object::Dict(_)) {
                    return malformed("BUILD on something other than a dict");
                }
            }
            _ => {
                return Err(TorchProblem::Opcode {
                    opcode: op,
                    offset: at,
                })
            }
        }
        Ok(())
    }

    fn items<'v>(&'v self, v: &Value, what: &str) -> Res<&'v [Value]> {
        match v {
            Value::Obj(i) => match &self.objects[*i] {
                Object::Tuple(t) => Ok(t),
                _ => malformed(format!("{what} is not a tuple")),
            },
            _ => malformed(format!("{what} is not a tuple")),
        }
    }

    /// `('storage', torch.<Type>Storage, key, location, numel)`.
    fn persistent_load(&self, pid: &Value) -> Res<StorageRef> {
        let t = self.items(pid, "a persistent id")?;
        match t {
            [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), _, Value::Int(numel)]
                if &**tag == "storage" =>
            {
                Ok(StorageRef {
                    dtype: *dtype,
                    key: key.clone(),
                    numel: *numel,
                })
            }
            _ => malformed(format!(
                "a persistent id other than ('storage', type, key, location, numel): {} values",
                t.len()
            )),
        }
    }

    fn ints(&self, v: &Value, what: &str) -> Res<Vec<i64>> {
        let items = self.items(v, what)?;
        if items.len() > MAX_DIMS {
            return malformed(format!(
                "{what} has {} entries (at most {MAX_DIMS})",
                items.len()
            ));
        }
        items
            .iter()
            .map(|x| match x {
                Value::Int(i) => Ok(*i),
                _ => malformed(format!("{what} holds a value that is not an integer")),
            })
            .collect()
    }

    fn reduce(&mut self, callable: Value, args: &Value) -> Res<Value> {
        let Value::Global(g) = callable else {
            return malformed("REDUCE of something that is not an allowed global");
        };
        let a = self.items(args, "REDUCE's arguments")?;
        // Every allowed callable takes at most 7 arguments: nothing longer is copied.
        if a.len() > 7 {
            return malformed(format!("REDUCE with {} arguments", a.len()));
        }
        let a = a.to_vec();
        match g {
            Global::OrderedDict if a.is_empty() => Ok(self.new_obj(Object::Dict(Vec::new()))),
            Global::OrderedDict => malformed("OrderedDict built from arguments"),
            Global::RebuildTensorV2 => {
                if !(6..=7).contains(&a.len()) {
                    return malformed(format!(
                        "_rebuild_tensor_v2 with {} arguments (6 or 7 expected)",
                        a.len()
                    ));
                }
                let storage = match self.objects_of(&a[0]) {
                    Some(Object::Storage(s)) => s.clone(),
                    _ => return malformed("_rebuild_tensor_v2 of something other than a storage"),
                };
                let Value::Int(offset) = a[1] else {
                    return malformed("a tensor's storage offset is not an integer");
                };
                let size = self.ints(&a[2], "a tensor's size")?;
                let stride = self.ints(&a[3], "a tensor's stride")?;
                if size.len() > MAX_DIMS {
                    return malformed(format!(
                        "a tensor of {} dimensions (at most {MAX_DIMS})",
                        size.len()
                    ));
                }
                Ok(self.new_obj(Object::Tensor(TensorRef {
                    storage,
                    offset,
                    size,
                    stride,
                })))
            }
            Global::RebuildParameter => match a.first() {
                Some(v @ Value::Obj(_))
                    if matches!(self.objects_of(v), Some(Object::Tensor(_))) =>
                {
                    Ok(v.clone())
                }
                _ => malformed("_rebuild_parameter of something other than a tensor"),
            },
            Global::Storage(d) => malformed(format!("a {} storage called as a function", d.name())),
        }
    }

    fn objects_of(&self, v: &Value) -> Option<&Object> {
        match v {
            Value::Obj(i) => self.objects.get(*i),
            _ => None,
        }
    }
}
