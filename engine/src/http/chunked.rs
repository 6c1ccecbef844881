//! An incremental decoder for `Transfer-Encoding: chunked` bodies that counts data without keeping it.

/// Where the decoder is within a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hexadecimal chunk size.
    Size,
    /// Skipping a chunk extension up to the line end.
    Extension,
    /// Expecting the LF after the size line's CR.
    SizeLf,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (after the last, empty chunk).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Expecting the LF that ends a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The body is complete.
    Done,
}

/// Why a chunked body is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A byte that cannot appear where it did.
    #[error("malformed chunked encoding")]
    Syntax,
    /// The data exceeds the body limit.
    #[error("chunked body larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// Chunk extensions and trailers, which carry no data, passed `MAX_OVERHEAD` bytes: a server
    /// streaming them without end would otherwise hold the request until its timeout.
    #[error("chunk extensions and trailers longer than 64 KiB")]
    Overhead,
}

/// The most bytes of chunk extensions and trailers one body may have.
pub const MAX_OVERHEAD: u32 = 64 << 10;

/// Decodes a chunked body, counting data bytes.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    size: u64,
    size_digits: u8,
    data: u64,
    limit: u64,
    /// Extension and trailer bytes so far.
    overhead: u32,
}

impl Chunked {
    /// A decoder that fails once more than `limit` data bytes arrive.
    pub fn new(limit: u64) -> Chunked {
        Chunked {
            state: State::Size,
            size: 0,
            size_digits: 0,
            data: 0,
            limit,
            overhead: 0,
        }
    }

    /// Data bytes so far.
    pub fn data_len(&self) -> u64 {
        self.data
    }

    /// Feeds bytes; returns how many were consumed when the body ended within them (`Some(n)`), or
    /// `None` when it needs more.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, ChunkError> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if matches!(self.state, State::Extension | State::Trailer) {
                self.overhead += 1;
                if self.overhead > MAX_OVERHEAD {
                    return Err(ChunkError::Overhead);
                }
            }
            self.state = match self.state {
                State::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = u64::from((b as char).to_digit(16).expect("a hex digit"));
                        self.size_digits += 1;
                        if self.size_digits > 15 {
                            return Err(ChunkError::Syntax);
                        }
                        self.size = self.size * 16 + digit;
                        State::Size
                    }
                    b';' | b' ' | b'\t' if self.size_digits > 0 => State::Extension,
                    b'\r' if self.size_digits > 0 => State::SizeLf,
                    _ => return Err(ChunkError::Syntax),
                },
                State::Extension => match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err(ChunkError::Syntax),
                    _ => State::Extension,
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Syntax);
                    }
                    let size = std::mem::take(&mut self.size);
                    self.size_digits = 0;
                    if size == 0 {
                        State::TrailerStart
                    } else {
                        self.data += size;
                        if self.data > self.limit {
                            return Err(ChunkError::TooLarge(self.limit));
                        }
                        State::Data(size)
                    }
                }
                State::Data(left) => {
                    let take = (left.min((bytes.len() - i) as u64)) as usize;
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                    continue;
                }
                State::DataCr => {
                    if b == b'\r' {
                        State::DataLf
                    } else {
                        return Err(ChunkError::Syntax);
                    }
                }
                State::DataLf => {
                    if b == b'\n' {
                        State::Size
                    } else {
                        return Err(ChunkError::Syntax);
                    }
                }
                State::TrailerStart => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err(ChunkError::Syntax),
                    _ => State::Trailer,
                },
                State::Trailer => {
                    if b == b'\r' {
                        State::TrailerLf
                    } else {
                        State::Trailer
                    }
                }
                State::TrailerLf => {
                    if b == b'\n' {
                        State::TrailerStart
                    } else {
                        return Err(ChunkError::Syntax);
                    }
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError::Syntax);
                    }
                    self.state = State::Done;
                    return Ok(Some(i + 1));
                }
                State::Done => return Ok(Some(i)),
            };
            i += 1;
        }
        Ok((self.state == State::Done).then_some(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn whole_and_byte_by_byte() {
        let mut d = Chunked::new(1 << 20);
        assert_eq!(d.feed(BODY), Ok(Some(BODY.len())));
        assert_eq!(d.data_len(), 4 + 6 + 14);
        let mut d = Chunked::new(1 << 20);
        for (i, b) in BODY.iter().enumerate() {
            let r = d.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(r.is_some(), i == BODY.len() - 1, "byte {i}");
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let mut bytes = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        let end = bytes.len();
        bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(Chunked::new(10).feed(&bytes), Ok(Some(end)));
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        assert_eq!(Chunked::new(10).feed(b"zz\r\n"), Err(ChunkError::Syntax));
        assert_eq!(Chunked::new(10).feed(b"\r\n"), Err(ChunkError::Syntax));
        assert_eq!(Chunked::new(10).feed(b"3\r\nabcX"), Err(ChunkError::Syntax));
        assert_eq!(
            Chunked::new(10).feed(b"ffffffffffffffff\r\n"),
            Err(ChunkError::Syntax)
        );
        assert_eq!(
            Chunked::new(10).feed(b"b\r\n"),
            Err(ChunkError::TooLarge(10))
        );
    }

    #[test]
    fn endless_extensions_and_trailers_are_cut_off() {
        let endless_extension = [b"1;".as_slice(), &[b'x'; 70_000]].concat();
        assert_eq!(
            Chunked::new(10).feed(&endless_extension),
            Err(ChunkError::Overhead)
        );
        let endless_trailers: Vec<u8> = b"0\r\n"
            .iter()
            .copied()
            .chain(b"X-Trailer: yes\r\n".repeat(5_000))
            .collect();
        assert_eq!(
            Chunked::new(10).feed(&endless_trailers),
            Err(ChunkError::Overhead)
        );
        // Ordinary extensions and trailers are well within the limit.
        assert_eq!(
            Chunked::new(10).feed(b"1;a=b\r\nx\r\n0\r\nT: 1\r\n\r\n"),
            Ok(Some(21))
        );
    }
}
