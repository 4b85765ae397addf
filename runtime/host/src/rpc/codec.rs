//! Pigeon's binary encoding of component values: the payload of an RPC call
//! (its arguments) and of its reply (its results), stored in mailboxes and
//! sent between nodes.
//!
//! The encoding is driven by the types on both sides, so it carries no type
//! information and no names; the signatures of caller and callee were found
//! equal when the link was made. Per type:
//!
//! | type | bytes |
//! | --- | --- |
//! | bool, u8, s8 | one byte |
//! | u16..u64, char | LEB128 varint |
//! | s16..s64 | zigzag, then LEB128 |
//! | f32, f64 | little-endian IEEE 754 |
//! | string | varint length, UTF-8 bytes |
//! | list, map | varint count, items (map: key then value) |
//! | fixed-length list, record, tuple | items in order |
//! | variant, enum | varint case index, then the payload if the case has one |
//! | option | 0 (none) or 1 then the value |
//! | result | 0 (ok) or 1 (err), then the payload if that side has a type |
//! | flags | the set flags as a little-endian bitmap of ⌈n/8⌉ bytes |
//!
//! Decoding never trusts a length: every count is checked against the bytes
//! left before anything is allocated, so a hostile payload cannot make the
//! host allocate more than the payload's size times a small constant. Each
//! value has one encoding (varints in their shortest form), so what decodes
//! encodes back to the same bytes.

use thiserror::Error;
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// Why values could not be encoded or decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The bytes end before the values do.
    #[error("the encoded values end early (at byte {0})")]
    Truncated(usize),
    /// Bytes are left after the last value.
    #[error("{0} unexpected bytes after the encoded values")]
    Trailing(usize),
    /// A value does not fit its type.
    #[error("invalid encoded value at byte {at}: {reason}")]
    Invalid { at: usize, reason: String },
    /// The values given do not match the types (a host bug or a guest that
    /// returned a value of another type).
    #[error("value does not match its type: {0}")]
    Mismatch(String),
    /// A type that cannot travel between actors.
    #[error("{0} cannot be sent between actors")]
    Unsendable(String),
}

/// Encodes `vals`, of types `types`, one after the other.
pub fn encode<'a>(
    types: impl IntoIterator<Item = Type>,
    vals: impl IntoIterator<Item = &'a Val>,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut types = types.into_iter();
    for val in vals {
        let ty = types.next().ok_or_else(|| CodecError::Mismatch("more values than types".into()))?;
        put(&mut out, &ty, val)?;
    }
    if types.next().is_some() {
        return Err(CodecError::Mismatch("fewer values than types".into()));
    }
    Ok(out)
}

/// Decodes one value of each of `types` from `bytes`, which must hold
/// exactly that.
pub fn decode(types: impl IntoIterator<Item = Type>, bytes: &[u8]) -> Result<Vec<Val>, CodecError> {
    let mut reader = Reader { bytes, at: 0 };
    let vals = types.into_iter().map(|ty| reader.val(&ty)).collect::<Result<Vec<_>, _>>()?;
    match bytes.len() - reader.at {
        0 => Ok(vals),
        left => Err(CodecError::Trailing(left)),
    }
}

fn mismatch(ty: &Type, val: &Val) -> CodecError {
    CodecError::Mismatch(format!("expected {}, got {val:?}", super::signature::type_text(ty)))
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    put_varint(out, n as u64);
}

fn index_of<'n>(names: impl Iterator<Item = &'n str>, name: &str) -> Option<usize> {
    names.into_iter().position(|n| n == name)
}

fn put(out: &mut Vec<u8>, ty: &Type, val: &Val) -> Result<(), CodecError> {
    match (ty, val) {
        (Type::Bool, Val::Bool(b)) => out.push(u8::from(*b)),
        (Type::U8, Val::U8(n)) => out.push(*n),
        (Type::S8, Val::S8(n)) => out.push(*n as u8),
        (Type::U16, Val::U16(n)) => put_varint(out, u64::from(*n)),
        (Type::U32, Val::U32(n)) => put_varint(out, u64::from(*n)),
        (Type::U64, Val::U64(n)) => put_varint(out, *n),
        (Type::S16, Val::S16(n)) => put_varint(out, zigzag(i64::from(*n))),
        (Type::S32, Val::S32(n)) => put_varint(out, zigzag(i64::from(*n))),
        (Type::S64, Val::S64(n)) => put_varint(out, zigzag(*n)),
        (Type::Float32, Val::Float32(f)) => out.extend(f.to_le_bytes()),
        (Type::Float64, Val::Float64(f)) => out.extend(f.to_le_bytes()),
        (Type::Char, Val::Char(c)) => put_varint(out, u64::from(u32::from(*c))),
        (Type::String, Val::String(s)) => {
            put_len(out, s.len());
            out.extend(s.as_bytes());
        }
        (Type::List(list), Val::List(items)) => {
            put_len(out, items.len());
            let item_ty = list.ty();
            for item in items {
                put(out, &item_ty, item)?;
            }
        }
        (Type::FixedLengthList(list), Val::FixedLengthList(items)) => {
            if items.len() != list.len() as usize {
                return Err(mismatch(ty, val));
            }
            let item_ty = list.ty();
            for item in items {
                put(out, &item_ty, item)?;
            }
        }
        (Type::Map(map), Val::Map(entries)) => {
            put_len(out, entries.len());
            let (key_ty, value_ty) = (map.key(), map.value());
            for (key, value) in entries {
                put(out, &key_ty, key)?;
                put(out, &value_ty, value)?;
            }
        }
        (Type::Record(record), Val::Record(fields)) => {
            if record.fields().len() != fields.len() {
                return Err(mismatch(ty, val));
            }
            for (field, (_, value)) in record.fields().zip(fields) {
                put(out, &field.ty, value)?;
            }
        }
        (Type::Tuple(tuple), Val::Tuple(items)) => {
            if tuple.types().len() != items.len() {
                return Err(mismatch(ty, val));
            }
            for (item_ty, item) in tuple.types().zip(items) {
                put(out, &item_ty, item)?;
            }
        }
        (Type::Variant(variant), Val::Variant(name, payload)) => {
            let index = index_of(variant.cases().map(|c| c.name), name).ok_or_else(|| mismatch(ty, val))?;
            put_len(out, index);
            let case_ty = variant.cases().nth(index).and_then(|c| c.ty);
            put_payload(out, case_ty.as_ref(), payload.as_deref(), ty, val)?;
        }
        (Type::Enum(e), Val::Enum(name)) => {
            let index = index_of(e.names(), name).ok_or_else(|| mismatch(ty, val))?;
            put_len(out, index);
        }
        (Type::Option(option), Val::Option(value)) => match value {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                put(out, &option.ty(), value)?;
            }
        },
        (Type::Result(result), Val::Result(value)) => match value {
            Ok(payload) => {
                out.push(0);
                put_payload(out, result.ok().as_ref(), payload.as_deref(), ty, val)?;
            }
            Err(payload) => {
                out.push(1);
                put_payload(out, result.err().as_ref(), payload.as_deref(), ty, val)?;
            }
        },
        (Type::Flags(flags), Val::Flags(set)) => {
            let names: Vec<&str> = flags.names().collect();
            let mut bitmap = vec![0u8; names.len().div_ceil(8)];
            for name in set {
                let i = names.iter().position(|n| n == name).ok_or_else(|| mismatch(ty, val))?;
                bitmap[i / 8] |= 1 << (i % 8);
            }
            out.extend(bitmap);
        }
        (Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext, _) => {
            return Err(CodecError::Unsendable(super::signature::type_text(ty)));
        }
        _ => return Err(mismatch(ty, val)),
    }
    Ok(())
}

/// The payload of a variant case or result side: present exactly when the
/// type has one.
fn put_payload(
    out: &mut Vec<u8>,
    payload_ty: Option<&Type>,
    payload: Option<&Val>,
    ty: &Type,
    val: &Val,
) -> Result<(), CodecError> {
    match (payload_ty, payload) {
        (Some(payload_ty), Some(payload)) => put(out, payload_ty, payload),
        (None, None) => Ok(()),
        _ => Err(mismatch(ty, val)),
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Reader<'_> {
    fn invalid(&self, reason: impl Into<String>) -> CodecError {
        CodecError::Invalid { at: self.at, reason: reason.into() }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        let end =
            self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or(CodecError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            // The tenth byte holds bit 63 only.
            if shift == 63 && b > 1 {
                return Err(self.invalid("varint overflows 64 bits"));
            }
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // One value, one encoding: a trailing zero group is padding.
                if b == 0 && shift > 0 {
                    return Err(self.invalid("varint not in its shortest form"));
                }
                return Ok(n);
            }
        }
        Err(self.invalid("varint longer than 10 bytes"))
    }

    fn unsigned<T: TryFrom<u64>>(&mut self) -> Result<T, CodecError> {
        let n = self.varint()?;
        T::try_from(n).map_err(|_| self.invalid(format!("{n} is out of range")))
    }

    fn signed<T: TryFrom<i64>>(&mut self) -> Result<T, CodecError> {
        let z = self.varint()?;
        let n = ((z >> 1) as i64) ^ -((z & 1) as i64);
        T::try_from(n).map_err(|_| self.invalid(format!("{n} is out of range")))
    }

    /// A count of items: every encoded value takes at least one byte (WIT
    /// has no empty records, tuples or flags), so a count larger than the
    /// bytes left is a lie, refused before anything is allocated.
    fn count(&mut self) -> Result<usize, CodecError> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(self.invalid(format!("count {n} is larger than the {left} bytes left")));
        }
        Ok(n as usize)
    }

    fn index(&mut self, cases: usize, what: &str) -> Result<usize, CodecError> {
        let i = self.varint()?;
        usize::try_from(i)
            .ok()
            .filter(|&i| i < cases)
            .ok_or_else(|| self.invalid(format!("{what} index {i} out of range (it has {cases})")))
    }

    fn payload(&mut self, ty: Option<Type>) -> Result<Option<Box<Val>>, CodecError> {
        ty.map(|ty| self.val(&ty).map(Box::new)).transpose()
    }

    fn val(&mut self, ty: &Type) -> Result<Val, CodecError> {
        Ok(match ty {
            Type::Bool => match self.byte()? {
                0 => Val::Bool(false),
                1 => Val::Bool(true),
                b => return Err(self.invalid(format!("{b} is not a bool"))),
            },
            Type::U8 => Val::U8(self.byte()?),
            Type::S8 => Val::S8(self.byte()? as i8),
            Type::U16 => Val::U16(self.unsigned()?),
            Type::U32 => Val::U32(self.unsigned()?),
            Type::U64 => Val::U64(self.varint()?),
            Type::S16 => Val::S16(self.signed()?),
            Type::S32 => Val::S32(self.signed()?),
            Type::S64 => Val::S64(self.signed()?),
            Type::Float32 => Val::Float32(f32::from_le_bytes(self.fixed()?)),
            Type::Float64 => Val::Float64(f64::from_le_bytes(self.fixed()?)),
            Type::Char => {
                let n: u32 = self.unsigned()?;
                Val::Char(char::from_u32(n).ok_or_else(|| self.invalid(format!("{n:#x} is not a char")))?)
            }
            Type::String => {
                let len = self.count()?;
                let bytes = self.take(len)?.to_vec();
                Val::String(String::from_utf8(bytes).map_err(|_| self.invalid("string is not UTF-8"))?)
            }
            Type::List(list) => {
                let n = self.count()?;
                let item_ty = list.ty();
                Val::List((0..n).map(|_| self.val(&item_ty)).collect::<Result<_, _>>()?)
            }
            Type::FixedLengthList(list) => {
                let item_ty = list.ty();
                Val::FixedLengthList((0..list.len()).map(|_| self.val(&item_ty)).collect::<Result<_, _>>()?)
            }
            Type::Map(map) => {
                let n = self.count()?;
                let (key_ty, value_ty) = (map.key(), map.value());
                let entries = (0..n).map(|_| Ok((self.val(&key_ty)?, self.val(&value_ty)?)));
                Val::Map(entries.collect::<Result<_, CodecError>>()?)
            }
            Type::Record(record) => Val::Record(
                record
                    .fields()
                    .map(|f| Ok((f.name.to_string(), self.val(&f.ty)?)))
                    .collect::<Result<_, CodecError>>()?,
            ),
            Type::Tuple(tuple) => Val::Tuple(tuple.types().map(|t| self.val(&t)).collect::<Result<_, _>>()?),
            Type::Variant(variant) => {
                let i = self.index(variant.cases().len(), "variant case")?;
                let case = variant.cases().nth(i).ok_or_else(|| self.invalid("variant case"))?;
                let name = case.name.to_string();
                Val::Variant(name, self.payload(case.ty)?)
            }
            Type::Enum(e) => {
                let i = self.index(e.names().len(), "enum case")?;
                Val::Enum(e.names().nth(i).unwrap_or_default().to_string())
            }
            Type::Option(option) => match self.byte()? {
                0 => Val::Option(None),
                1 => Val::Option(Some(Box::new(self.val(&option.ty())?))),
                b => return Err(self.invalid(format!("{b} is not an option tag"))),
            },
            Type::Result(result) => match self.byte()? {
                0 => Val::Result(Ok(self.payload(result.ok())?)),
                1 => Val::Result(Err(self.payload(result.err())?)),
                b => return Err(self.invalid(format!("{b} is not a result tag"))),
            },
            Type::Flags(flags) => {
                let names: Vec<&str> = flags.names().collect();
                let bitmap = self.take(names.len().div_ceil(8))?;
                let set = names.iter().enumerate().filter(|(i, _)| bitmap[i / 8] & (1 << (i % 8)) != 0);
                Val::Flags(set.map(|(_, n)| n.to_string()).collect())
            }
            Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
                return Err(CodecError::Unsendable(super::signature::type_text(ty)));
            }
        })
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut buf = [0u8; N];
        buf.copy_from_slice(self.take(N)?);
        Ok(buf)
    }
}
