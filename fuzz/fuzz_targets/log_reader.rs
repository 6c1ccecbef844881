//! Feeds arbitrary bytes to the sample-log reader. It must never panic, and whatever it reads must be
//! self-consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Most inputs fail the header checksum, so also try each input behind a valid header to reach the
    // block and column decoders.
    check(data);
    let header = formats::LogHeader::new(formats::RunId([1; 16]), 0, 0, 0).encode();
    let mut framed = header.to_vec();
    framed.extend_from_slice(data);
    check(&framed);
});

fn check(data: &[u8]) {
    if let Ok(log) = formats::read_log(data) {
        let n = log.samples.len();
        let s = &log.samples;
        for len in [s.intended_us.len(), s.actual_us.len(), s.latency_us.len(), s.ttfb_us.len(), s.tls_us.len(), s.user.len()] {
            assert_eq!(len, n);
        }
        for i in 0..n {
            assert!(s.ttfb_us[i] <= s.latency_us[i]);
            // v1.1: the handshake is part of the connect time.
            assert!(s.tls_us[i] <= s.connect_us[i]);
        }
    }
}
