//! HTTP/1.1 client pieces: response heads, chunked bodies, the sans-I/O response reader the loop
//! feeds, and the record of an exchange that becomes its sample.

mod chunked;
mod exchange;
mod reader;
mod response;

pub use chunked::{ChunkError, Chunked};
pub(crate) use exchange::{Exchange, Failure, Limits};
pub(crate) use reader::{Keep, KeptResponse, Reader, Step};
pub use response::{BodyKind, Head, HeadError, parse_head};
