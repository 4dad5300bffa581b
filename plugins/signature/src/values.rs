//! The buffers of one flow, read once: the index and every candidate rule
//! look at the same few values, and reading one means finding its column
//! and validating its UTF-8.

use kansoku_plugin::{Batch, Flow, TextColumn};

use crate::rule::Buffer;

/// Longest status code text (`u16::MAX`).
const STATUS_DIGITS: usize = 5;

/// The values of the buffers that rules look at, for one flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Values<'a> {
    text: [Option<&'a [u8]>; Buffer::ALL.len()],
    status: [u8; STATUS_DIGITS],
    status_len: u8,
    /// Whether any buffer has a value: connection records have none.
    any: bool,
}

/// The text column of each buffer in one batch, found once per batch
/// rather than once per flow.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    text: [Option<TextColumn<'a>>; Buffer::ALL.len()],
}

impl<'a> Columns<'a> {
    pub fn of(batch: &'a Batch) -> Self {
        Self {
            text: Buffer::ALL.map(|b| b.field().and_then(|field| batch.text(field))),
        }
    }
}

impl<'a> Values<'a> {
    /// Reads `buffers` from `flow`, whose batch's columns are `columns`;
    /// the others stay absent.
    pub fn read(columns: &Columns<'a>, flow: &Flow<'_>, buffers: &[Buffer]) -> Self {
        let mut values = Values::default();
        let row = flow.row() as usize;
        for &buffer in buffers {
            if buffer.field().is_none() {
                if let Some(status) = flow.http_status() {
                    values.set_status(status);
                }
            } else if let (Some(Some(column)), Some(slot)) = (
                columns.text.get(buffer as usize),
                values.text.get_mut(buffer as usize),
            ) {
                *slot = column.get_bytes(row);
                values.any |= slot.is_some();
            }
        }
        values
    }

    fn set_status(&mut self, status: u16) {
        let mut digits = [0u8; STATUS_DIGITS];
        let (mut n, mut len) = (status, 0);
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        digits[..len].reverse();
        self.status = digits;
        self.status_len = len as u8;
        self.any = true;
    }

    /// Whether no buffer has a value.
    pub fn is_empty(&self) -> bool {
        !self.any
    }

    /// The value of `buffer`, if the flow has one and it was read.
    pub fn get(&self, buffer: Buffer) -> Option<&[u8]> {
        match buffer {
            Buffer::HttpStatCode => {
                let len = usize::from(self.status_len);
                (len > 0).then(|| self.status.get(..len)).flatten()
            }
            _ => self.text.get(buffer as usize).copied().flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kansoku_plugin::TextField;
    use kansoku_plugin::testing::BatchBuilder;

    #[test]
    fn reads_only_the_buffers_asked_for() {
        let mut builder = BatchBuilder::new();
        builder
            .flow(
                "10.0.0.1".parse().unwrap(),
                1,
                "10.0.0.2".parse().unwrap(),
                80,
            )
            .kind(3)
            .text(TextField::HttpHost, "example.com")
            .text(TextField::HttpUri, "/x");
        let batch = builder.build();
        let flow = batch.get(0).unwrap();
        let columns = Columns::of(&batch);
        let values = Values::read(&columns, &flow, &[Buffer::HttpHost, Buffer::HttpMethod]);
        assert_eq!(values.get(Buffer::HttpHost), Some(&b"example.com"[..]));
        assert_eq!(values.get(Buffer::HttpUri), None);
        assert_eq!(values.get(Buffer::HttpMethod), None);
        assert_eq!(values.get(Buffer::HttpStatCode), None);

        let mut values = Values::default();
        for (status, text) in [(200u16, "200"), (7, "7"), (u16::MAX, "65535")] {
            values.set_status(status);
            assert_eq!(values.get(Buffer::HttpStatCode), Some(text.as_bytes()));
        }
    }
}
