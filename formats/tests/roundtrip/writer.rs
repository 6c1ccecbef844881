//! The writer's own rules: time to first byte clamped to the latency, interning stable and bounded,
//! an empty log complete, smaller blocks closed at the chosen size.

use formats::{LogWriter, Sample, read_log};

use super::common;

#[test]
fn writer_clamps_ttfb_to_latency() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    let n = w.intern_name("x");
    w.push(Sample {
        name: n,
        latency_us: 100,
        ttfb_us: 250,
        ..Sample::default()
    })
    .unwrap();
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert_eq!(log.samples.ttfb_us, [100]);
}

#[test]
fn interning_is_stable_and_bounded() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    let a = w.intern_message("a");
    assert_eq!(w.intern_message("a"), a);
    // Past the limit every new message shares one overflow id, so a target that puts a unique id in
    // each error cannot make the table grow without bound.
    let mut last = a;
    for i in 0..formats::MAX_MESSAGES + 10 {
        last = w.intern_message(&format!("error {i}"));
    }
    assert_eq!(last.get(), formats::MAX_MESSAGES);
    assert_eq!(w.intern_message("yet another"), last);
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert!(
        log.messages
            .get(formats::MAX_MESSAGES)
            .unwrap()
            .contains("too many distinct")
    );
}

#[test]
fn empty_log_is_complete_and_clean() {
    let bytes = LogWriter::new(&common::header(0), Vec::new())
        .unwrap()
        .finish()
        .unwrap();
    let log = read_log(&bytes).unwrap();
    assert!(log.problems.is_empty());
    assert_eq!(log.samples.len(), 0);
    assert_eq!(log.end.unwrap().samples, 0);
}

#[test]
fn smaller_blocks_close_at_the_chosen_size() {
    let mut w = LogWriter::new(&common::header(0), Vec::new()).unwrap();
    w.set_block_samples(100);
    let n = w.intern_name("x");
    for i in 0..1_050u32 {
        w.push(Sample {
            name: n,
            latency_us: i,
            actual_us: u64::from(i),
            ..Sample::default()
        })
        .unwrap();
        assert_eq!(w.samples_buffered(), (i as usize + 1) % 100);
    }
    let log = read_log(&w.finish().unwrap()).unwrap();
    assert!(log.problems.is_empty());
    assert_eq!(log.samples.len(), 1_050);
    // One name-table block, eleven samples blocks.
    assert_eq!(log.end.unwrap().blocks, 12);
}
