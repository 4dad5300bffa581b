//! The buffers of one flow, read once: the index and every candidate rule
//! look at the same few values, and reading one means finding its column
//! and validating its UTF-8.

use kansoku_plugin::Flow;

use crate::rule::Buffer;

/// Longest status code text (`u16::MAX`).
const STATUS_DIGITS: usize = 5;

/// The values of the buffers that rules look at, for one flow.
#[derive(Debug, Clone, Copy, Default)]
pub struct Values<'a> {
    text: [Option<&'a [u8]>; Buffer::ALL.len()],
    status: [u8; STATUS_DIGITS],
    status_len: u8,
}

impl<'a> Values<'a> {
    /// Reads `buffers` from `flow`; the others stay absent.
    pub fn read(flow: &Flow<'a>, buffers: &[Buffer]) -> Self {
        let mut values = Values::default();
        for &buffer in buffers {
            match buffer.field() {
                Some(field) => {
                    if let Some(slot) = values.text.get_mut(buffer as usize) {
                        *slot = flow.text(field).map(str::as_bytes);
                    }
                }
                None => {
                    if let Some(status) = flow.http_status() {
                        values.set_status(status);
                    }
                }
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
        let values = Values::read(&flow, &[Buffer::HttpHost, Buffer::HttpMethod]);
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
