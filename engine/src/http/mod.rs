//! HTTP/1.1 client pieces: response heads, the sans-I/O response reader every loop feeds, and the
//! keep-alive connection that moves requests (rendered by `scenario::wire`) and their answers.

mod chunked;
mod conn;
mod reader;
mod response;

pub use chunked::{ChunkError, Chunked};
pub(crate) use conn::{Connection, Exchange, Failure, Limits, RequestRef};
pub(crate) use reader::{Keep, KeptResponse, Reader, Step};
pub use response::{BodyKind, Head, HeadError, parse_head};
