//! A minimal, zero-copy protobuf wire reader over a byte slice.
//!
//! The remote-write hot path decodes with this instead of materialising
//! prost structs, so that limits are checked before memory is allocated and
//! strings are copied exactly once (into the engine's labels). Semantics
//! follow prost's decoder: unknown fields (groups included) are skipped,
//! a known field with the wrong wire type is an error, repeated scalars are
//! accepted packed and unpacked, the last occurrence of a singular field wins.

/// Protobuf wire types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    Varint = 0,
    Fixed64 = 1,
    Len = 2,
    StartGroup = 3,
    EndGroup = 4,
    Fixed32 = 5,
}

/// Nested groups deeper than this are refused (prost uses the same limit).
const MAX_GROUP_DEPTH: u32 = 100;

/// Malformed protobuf.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated or overlong varint")]
    Varint,
    #[error("invalid field key {0}")]
    Key(u64),
    #[error("field {field} has wire type {got}, expected {expected}")]
    WrongWireType {
        field: &'static str,
        got: u8,
        expected: u8,
    },
    #[error("field of {len} bytes overruns the {remaining} bytes left")]
    Truncated { len: u64, remaining: usize },
    #[error("unexpected end-group tag for field {0}")]
    EndGroup(u32),
    #[error("groups nested more than {MAX_GROUP_DEPTH} deep")]
    TooDeep,
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    /// Only from the prost-based reference decoder (tests and fuzzing).
    #[error("{0}")]
    Reference(String),
}

/// A cursor over protobuf bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// A base-128 varint of at most 10 bytes (the 10th may only carry bit 63).
    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, WireError> {
        let buf = self.buf;
        match buf.first() {
            Some(&b) if b < 0x80 => {
                self.buf = &buf[1..];
                Ok(u64::from(b))
            }
            _ => self.varint_slow(),
        }
    }

    #[cold]
    fn varint_slow(&mut self) -> Result<u64, WireError> {
        let buf = self.buf;
        let mut value = 0u64;
        for (i, &b) in buf.iter().take(10).enumerate() {
            if i == 9 && b > 1 {
                return Err(WireError::Varint);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::Varint)
    }

    /// A field key: (field number, wire type).
    #[inline]
    pub(crate) fn key(&mut self) -> Result<(u32, WireType), WireError> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::Key(key));
        }
        let wire_type = match key & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            3 => WireType::StartGroup,
            4 => WireType::EndGroup,
            5 => WireType::Fixed32,
            _ => return Err(WireError::Key(key)),
        };
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(WireError::Key(key));
        }
        Ok((field, wire_type))
    }

    /// The payload of a length-delimited field.
    #[inline]
    pub(crate) fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        self.take(len)
    }

    #[inline]
    fn take(&mut self, len: u64) -> Result<&'a [u8], WireError> {
        if len > self.buf.len() as u64 {
            return Err(WireError::Truncated {
                len,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(len as usize);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    pub(crate) fn fixed64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Skips the value of an unknown field.
    pub(crate) fn skip(&mut self, field: u32, wire_type: WireType) -> Result<(), WireError> {
        self.skip_depth(field, wire_type, 0)
    }

    fn skip_depth(&mut self, field: u32, wire_type: WireType, depth: u32) -> Result<(), WireError> {
        match wire_type {
            WireType::Varint => {
                self.varint()?;
            }
            WireType::Fixed64 => {
                self.take(8)?;
            }
            WireType::Fixed32 => {
                self.take(4)?;
            }
            WireType::Len => {
                self.len_delimited()?;
            }
            WireType::StartGroup => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(WireError::TooDeep);
                }
                loop {
                    let (inner, wt) = self.key()?;
                    if wt == WireType::EndGroup {
                        if inner != field {
                            return Err(WireError::EndGroup(inner));
                        }
                        break;
                    }
                    self.skip_depth(inner, wt, depth + 1)?;
                }
            }
            WireType::EndGroup => return Err(WireError::EndGroup(field)),
        }
        Ok(())
    }
}

/// Fails unless `got` is the wire type `field` must have.
#[inline]
pub(crate) fn expect(
    field: &'static str,
    got: WireType,
    expected: WireType,
) -> Result<(), WireError> {
    if got == expected {
        Ok(())
    } else {
        Err(WireError::WrongWireType {
            field,
            got: got as u8,
            expected: expected as u8,
        })
    }
}

/// Appends a repeated `uint32` field (packed or not) to `out`, calling
/// `keep` for the running count so the caller can stop storing past a limit
/// (values past it are still parsed, so malformed input is still an error).
#[inline]
pub(crate) fn repeated_u32(
    r: &mut Reader<'_>,
    field: &'static str,
    wire_type: WireType,
    out: &mut Vec<u32>,
    cap: usize,
    count: &mut usize,
) -> Result<(), WireError> {
    match wire_type {
        WireType::Len => {
            let mut packed = Reader::new(r.len_delimited()?);
            while !packed.is_empty() {
                let v = packed.varint()? as u32;
                *count += 1;
                if out.len() < cap {
                    out.push(v);
                }
            }
            Ok(())
        }
        WireType::Varint => {
            let v = r.varint()? as u32;
            *count += 1;
            if out.len() < cap {
                out.push(v);
            }
            Ok(())
        }
        other => Err(WireError::WrongWireType {
            field,
            got: other as u8,
            expected: WireType::Len as u8,
        }),
    }
}

/// Reads a string field as UTF-8 (protobuf `string` semantics).
#[inline]
pub(crate) fn string<'a>(
    r: &mut Reader<'a>,
    field: &'static str,
    wire_type: WireType,
) -> Result<&'a str, WireError> {
    expect(field, wire_type, WireType::Len)?;
    std::str::from_utf8(r.len_delimited()?).map_err(|_| WireError::Utf8(field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_prost() {
        for v in [0u64, 1, 127, 128, 300, 1 << 32, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(v, &mut buf);
            let mut r = Reader::new(&buf);
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_empty());
        }
        // Overlong: 11 bytes, or a 10th byte with more than bit 63.
        assert_eq!(Reader::new(&[0xff; 11]).varint(), Err(WireError::Varint));
        let mut ten = vec![0xffu8; 9];
        ten.push(0x02);
        assert_eq!(Reader::new(&ten).varint(), Err(WireError::Varint));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(WireError::Varint));
        assert_eq!(Reader::new(&[]).varint(), Err(WireError::Varint));
    }

    #[test]
    fn keys_and_skips() {
        // field 0 and wire types 6/7 are invalid.
        assert!(Reader::new(&[0x00]).key().is_err());
        assert!(Reader::new(&[0x0e]).key().is_err());
        // group 1 containing varint field 2, then end group 1.
        let mut r = Reader::new(&[0x0b, 0x10, 0x05, 0x0c, 0x08, 0x01]);
        let (f, wt) = r.key().unwrap();
        r.skip(f, wt).unwrap();
        assert_eq!(r.key().unwrap(), (1, WireType::Varint));
        // mismatched end group.
        let mut r = Reader::new(&[0x0b, 0x14]);
        let (f, wt) = r.key().unwrap();
        assert_eq!(r.skip(f, wt), Err(WireError::EndGroup(2)));
        // length overrun.
        let mut r = Reader::new(&[0x0a, 0x05, 0x01]);
        let (f, wt) = r.key().unwrap();
        assert!(matches!(
            r.skip(f, wt),
            Err(WireError::Truncated {
                len: 5,
                remaining: 1
            })
        ));
        // deep groups are refused, not a stack overflow.
        let deep: Vec<u8> = std::iter::repeat_n(0x0b, 10_000).collect();
        let mut r = Reader::new(&deep);
        let (f, wt) = r.key().unwrap();
        assert_eq!(r.skip(f, wt), Err(WireError::TooDeep));
    }

    #[test]
    fn packed_and_unpacked_u32() {
        let mut out = Vec::new();
        let mut count = 0;
        // packed [1, 300]
        let mut r = Reader::new(&[0x03, 0x01, 0xac, 0x02]);
        repeated_u32(&mut r, "x", WireType::Len, &mut out, 10, &mut count).unwrap();
        let mut r = Reader::new(&[0x07]);
        repeated_u32(&mut r, "x", WireType::Varint, &mut out, 10, &mut count).unwrap();
        assert_eq!(out, vec![1, 300, 7]);
        assert_eq!(count, 3);
        // past the cap values are counted, not stored.
        let mut r = Reader::new(&[0x02, 0x01, 0x02]);
        repeated_u32(&mut r, "x", WireType::Len, &mut out, 4, &mut count).unwrap();
        assert_eq!(out, vec![1, 300, 7, 1]);
        assert_eq!(count, 5);
    }
}
