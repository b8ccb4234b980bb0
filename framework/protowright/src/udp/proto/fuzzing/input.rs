//! A fuzzer's bytes read as a script. Every read succeeds: once the bytes
//! run out it yields zeros and empty slices, so any input is a valid
//! script and the fuzzer never wastes a run on a parse error.

/// The unread rest of a fuzzer's input.
#[derive(Debug, Clone)]
pub(super) struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether every byte was read.
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0 once the input is spent.
    pub(super) fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&byte, rest)) => {
                self.rest = rest;
                byte
            }
            None => 0,
        }
    }

    /// The next `len` bytes, or as many as are left.
    pub(super) fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// A length byte, then that many bytes (or as many as are left).
    pub(super) fn chunk(&mut self) -> &'a [u8] {
        let len = self.byte();
        self.bytes(usize::from(len))
    }

    /// Two bytes, little-endian (missing bytes read as zeros).
    pub(super) fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Eight bytes, little-endian (missing bytes read as zeros).
    pub(super) fn u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        let taken = self.bytes(8);
        bytes[..taken.len()].copy_from_slice(taken);
        u64::from_le_bytes(bytes)
    }
}
