//! The integer codings the engine's files share: LEB128 varints (as in
//! protobuf and Go's `encoding/binary`) and zigzag for signed values.
//! Readers keep their own loops: the WAL and checkpoints read whole bytes
//! from a slice ([`crate::wal::Cursor`]), chunks read them through a bit
//! reader.

/// Appends `v` as an unsigned LEB128 varint (1 to 10 bytes).
#[inline]
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Maps signed to unsigned so that small magnitudes stay small:
/// 0, -1, 1, -2, ... → 0, 1, 2, 3, ...
#[inline]
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub(crate) fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wal::Cursor;

    #[test]
    fn known_encodings() {
        for (v, want) in [
            (0u64, &[0x00][..]),
            (1, &[0x01]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (
                u64::MAX,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(b, want, "{v}");
        }
        assert_eq!(
            [0, -1, 1, -2, i64::MAX, i64::MIN].map(zigzag),
            [0, 1, 2, 3, u64::MAX - 1, u64::MAX]
        );
    }

    proptest! {
        #[test]
        fn round_trip(v: i64) {
            prop_assert_eq!(unzigzag(zigzag(v)), v);
            let mut b = Vec::new();
            put_uvarint(&mut b, zigzag(v));
            let mut c = Cursor { b: &b };
            prop_assert_eq!(c.uvarint().map(unzigzag), Some(v));
            prop_assert!(c.b.is_empty());
        }
    }
}
