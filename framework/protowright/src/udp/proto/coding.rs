//! Byte-level reading and writing for packets: variable-length integers in
//! QUIC's form (the two high bits of the first byte give the length) and
//! fixed-width fields, with every read bounds-checked.

use super::DecodeError;

/// The largest value a variable-length integer can carry (62 bits).
pub(crate) const VARINT_MAX: u64 = (1 << 62) - 1;

/// How many bytes `value` takes as a variable-length integer.
pub(crate) fn varint_len(value: u64) -> usize {
    if value < 1 << 6 {
        1
    } else if value < 1 << 14 {
        2
    } else if value < 1 << 30 {
        4
    } else {
        8
    }
}

/// Appends encoded fields to a byte vector.
pub(crate) trait Put {
    /// Appends `value` as a variable-length integer; values above
    /// [`VARINT_MAX`] are a caller bug and are clamped.
    fn put_varint(&mut self, value: u64);
    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, value: u64);
    /// Appends a length-prefixed byte string.
    fn put_blob(&mut self, blob: &[u8]);
}

impl Put for Vec<u8> {
    fn put_varint(&mut self, value: u64) {
        let value = value.min(VARINT_MAX);
        match varint_len(value) {
            1 => self.push(value as u8),
            2 => self.extend_from_slice(&((value as u16) | 0x4000).to_be_bytes()),
            4 => self.extend_from_slice(&((value as u32) | 0x8000_0000).to_be_bytes()),
            _ => self.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
        }
    }

    fn put_u64(&mut self, value: u64) {
        self.extend_from_slice(&value.to_be_bytes());
    }

    fn put_blob(&mut self, blob: &[u8]) {
        self.put_varint(blob.len() as u64);
        self.extend_from_slice(blob);
    }
}

/// A cursor over received bytes. Every read checks the remaining length and
/// fails with [`DecodeError::Truncated`] rather than panicking.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&first, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        let mut array = [0; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_be_bytes(array))
    }

    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        let first = *self.bytes.first().ok_or(DecodeError::Truncated)?;
        let len = 1 << (first >> 6);
        let bytes = self.take(len)?;
        let mut value = u64::from(first & 0x3f);
        for &byte in &bytes[1..] {
            value = (value << 8) | u64::from(byte);
        }
        Ok(value)
    }

    /// A variable-length integer that must fit `limit`; larger values are
    /// refused as [`DecodeError::OutOfRange`] naming `field`.
    pub(crate) fn varint_at_most(
        &mut self,
        limit: u64,
        field: &'static str,
    ) -> Result<u64, DecodeError> {
        let value = self.varint()?;
        if value > limit {
            return Err(DecodeError::OutOfRange(field));
        }
        Ok(value)
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    pub(crate) fn blob(
        &mut self,
        limit: usize,
        field: &'static str,
    ) -> Result<&'a [u8], DecodeError> {
        let len = self.varint_at_most(limit as u64, field)?;
        self.take(len as usize)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width_boundary() {
        for value in [
            0,
            63,
            64,
            16_383,
            16_384,
            (1 << 30) - 1,
            1 << 30,
            VARINT_MAX,
        ] {
            let mut buf = Vec::new();
            buf.put_varint(value);
            assert_eq!(buf.len(), varint_len(value), "{value}");
            let mut reader = Reader::new(&buf);
            assert_eq!(reader.varint(), Ok(value));
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn a_cut_varint_is_truncated_not_a_panic() {
        let mut buf = Vec::new();
        buf.put_varint(1 << 40);
        for cut in 0..buf.len() {
            assert_eq!(
                Reader::new(&buf[..cut]).varint(),
                Err(DecodeError::Truncated)
            );
        }
    }

    #[test]
    fn blobs_longer_than_their_limit_are_refused() {
        let mut buf = Vec::new();
        buf.put_blob(&[7; 10]);
        assert_eq!(
            Reader::new(&buf).blob(9, "reason"),
            Err(DecodeError::OutOfRange("reason"))
        );
        assert_eq!(Reader::new(&buf).blob(10, "reason"), Ok(&[7; 10][..]));
    }
}
