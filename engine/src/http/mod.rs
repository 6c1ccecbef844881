//! HTTP/1.1 client pieces: responses parsed incrementally, and the keep-alive connection that moves
//! requests (rendered by `scenario::wire`) and their answers.

mod chunked;
mod conn;
mod response;

pub use chunked::{ChunkError, Chunked};
pub(crate) use conn::{
    Connection, Exchange, Failure, Keep, KeptResponse, Limits, RequestRef, micros_since,
};
pub use response::{BodyKind, Head, HeadError, parse_head};
