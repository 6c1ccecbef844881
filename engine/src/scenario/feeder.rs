//! Data feeders: rows from a CSV or JSON-lines file, read once at load time into one read-only table
//! that every core shares (k6's "every VU copies the data" problem cannot happen: users hold a row
//! index, never a copy).
//!
//! Which row a user gets is a pure function of the core's seat (its shard and core), a per-core
//! cursor, the user's index or the core's RNG, so cores (and the shards of a sharded test) never
//! coordinate:
//!
//! | order        | row                                                                    | exhausted when          |
//! |--------------|------------------------------------------------------------------------|-------------------------|
//! | `Sequential` | core `c` of `C` takes rows `c, c+C, c+2C, …` (so each row once per run); over shards, the rows of its seat ([`crate::schedule::Seat::item`]) | the core's stripe ends  |
//! | `Circular`   | each core walks all rows from its own starting point, wrapping          | never                   |
//! | `Random`     | uniformly random                                                        | never                   |
//! | `Unique`     | user `g` (counted across the run, over every shard) gets row `g` for its whole life | `g` ≥ rows  |
//!
//! On exhaustion, `Stop` stops the user (a user that never got a row does not start) and `Recycle`
//! starts over (`Sequential`: the stripe again; `Unique`: row `g mod rows`, no longer unique).

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::profile::spec::{FeederFormat, FeederOrder, OnExhausted};
use crate::rng::Rng;
use crate::schedule::Seat;

/// A loaded data file.
#[derive(Debug)]
pub struct Feeder {
    /// The file it came from.
    pub file: PathBuf,
    /// Column names, in file order.
    pub columns: Vec<String>,
    /// How rows are handed out.
    pub order: FeederOrder,
    /// What happens when they run out.
    pub on_exhausted: OnExhausted,
    rows: u32,
    /// Row-major (offset, length) into `text`; length `u32::MAX` marks a missing value (JSON lines).
    cells: Vec<(u32, u32)>,
    text: Vec<u8>,
    /// The file line of each row, for messages.
    lines: Vec<u32>,
}

const MISSING: u32 = u32::MAX;

impl Feeder {
    /// Reads `file` (relative paths are relative to `base`).
    pub fn load(
        file: &str,
        format: Option<FeederFormat>,
        order: FeederOrder,
        on_exhausted: OnExhausted,
        base: &Path,
    ) -> Result<Feeder, String> {
        let path = base.join(file);
        let format = match format {
            Some(f) => f,
            None => match path.extension().and_then(|e| e.to_str()) {
                Some("csv") => FeederFormat::Csv,
                Some("jsonl" | "ndjson") => FeederFormat::JsonLines,
                _ => {
                    return Err(format!(
                        "cannot tell the format of {file:?} from its extension: name it .csv or .jsonl, or add `format: Csv` / `format: JsonLines`"
                    ));
                }
            },
        };
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut f = Feeder {
            file: path.clone(),
            columns: Vec::new(),
            order,
            on_exhausted,
            rows: 0,
            cells: Vec::new(),
            text: Vec::new(),
            lines: Vec::new(),
        };
        match format {
            FeederFormat::Csv => f.read_csv(&bytes)?,
            FeederFormat::JsonLines => f.read_json_lines(&bytes)?,
        }
        if f.rows == 0 {
            return Err(format!("{} has no data rows", path.display()));
        }
        if f.text.len() > u32::MAX as usize / 2 {
            return Err(format!("{} is larger than 2 GiB", path.display()));
        }
        Ok(f)
    }

    fn push_cell(&mut self, value: &[u8]) {
        self.cells
            .push((self.text.len() as u32, value.len() as u32));
        self.text.extend_from_slice(value);
    }

    fn read_csv(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let headers = reader
            .byte_headers()
            .map_err(|e| format!("{}: {e}", self.file.display()))?
            .clone();
        self.columns = headers
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_owned())
            .collect();
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    for field in record.iter() {
                        self.push_cell(field);
                    }
                    self.rows += 1;
                    let line = record.position().map_or(0, |p| p.line()) as u32;
                    self.lines.push(line);
                }
                Err(e) => {
                    let at = e
                        .position()
                        .map(|p| format!(" line {}", p.line()))
                        .unwrap_or_default();
                    return Err(format!(
                        "{}:{at}: {e}; every row needs as many fields as the header",
                        self.file.display(),
                    ));
                }
            }
        }
        Ok(())
    }

    fn read_json_lines(&mut self, bytes: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("{} is not UTF-8: {e}", self.file.display()))?;
        let mut rows: Vec<(u32, serde_json::Map<String, serde_json::Value>)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
                .map_err(|e| {
                    format!(
                        "{}:{}: each line must be a JSON object: {e}",
                        self.file.display(),
                        i + 1
                    )
                })?;
            for key in object.keys() {
                if !self.columns.contains(key) {
                    self.columns.push(key.clone());
                }
            }
            rows.push((i as u32 + 1, object));
        }
        for (line, object) in rows {
            for c in 0..self.columns.len() {
                match object.get(&self.columns[c]) {
                    Some(serde_json::Value::String(s)) => self.push_cell(s.as_bytes()),
                    Some(other) => self.push_cell(other.to_string().as_bytes()),
                    None => self.cells.push((0, MISSING)),
                }
            }
            self.rows += 1;
            self.lines.push(line);
        }
        Ok(())
    }

    /// Number of data rows.
    #[cfg(test)]
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// The index of a column.
    pub fn column(&self, name: &str) -> Option<u16> {
        self.columns
            .iter()
            .position(|c| c == name)
            .map(|i| i as u16)
    }

    /// The first file line of a row that lacks `column` (JSON lines can omit keys).
    pub fn first_missing(&self, column: u16) -> Option<u32> {
        (0..self.rows)
            .find(|&r| self.cells[self.index(r, column)].1 == MISSING)
            .map(|r| self.lines[r as usize])
    }

    fn index(&self, row: u32, column: u16) -> usize {
        row as usize * self.columns.len() + usize::from(column)
    }

    /// A cell; empty for an out-of-range row or a missing value.
    pub fn cell(&self, row: u32, column: u16) -> &[u8] {
        if row >= self.rows || usize::from(column) >= self.columns.len() {
            return &[];
        }
        let (at, len) = self.cells[self.index(row, column)];
        if len == MISSING {
            return &[];
        }
        &self.text[at as usize..(at + len) as usize]
    }
}

/// A core's position in one feeder.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    taken: Cell<u64>,
}

/// Where a row is wanted: which core of which shard, and which user.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Draw {
    pub seat: Seat,
    pub user: u32,
}

impl Feeder {
    /// The row for the next draw, or `None` when the feeder is exhausted for this core or user.
    pub(crate) fn draw(&self, cursor: &Cursor, at: Draw, rng: &mut Rng) -> Option<u32> {
        let n = u64::from(self.rows);
        // The core's place among every core of every shard: one engine's core `c` of `C`.
        let (core, cores) = at.seat.overall();
        let recycle = self.on_exhausted == OnExhausted::Recycle;
        match self.order {
            FeederOrder::Random => Some(rng.below(self.rows)),
            FeederOrder::Unique => {
                let g = u64::from(at.user);
                match (g < n, recycle) {
                    (true, _) => Some(g as u32),
                    (false, true) => Some((g % n) as u32),
                    (false, false) => None,
                }
            }
            FeederOrder::Circular => {
                let k = cursor.taken.get();
                cursor.taken.set(k + 1);
                let start = core * n / cores;
                Some(((start + k) % n) as u32)
            }
            FeederOrder::Sequential => {
                let k = cursor.taken.get();
                // Rows in this core's stripe: the rows its seat is dealt (core, core + cores, ... in an
                // engine that runs the whole test).
                let stripe = at.seat.count_of(n);
                if k < stripe {
                    cursor.taken.set(k + 1);
                    at.seat.item(k).map(|row| row as u32)
                } else if recycle && stripe > 0 {
                    cursor.taken.set(1);
                    at.seat.item(0).map(|row| row as u32)
                } else if recycle {
                    // More cores than rows: this core has no stripe of its own; share one.
                    Some((core % n) as u32)
                } else {
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn feeder(rows: u32, order: FeederOrder, on_exhausted: OnExhausted) -> Feeder {
        let mut f = Feeder {
            file: "t.csv".into(),
            columns: vec!["n".into()],
            order,
            on_exhausted,
            rows: 0,
            cells: Vec::new(),
            text: Vec::new(),
            lines: Vec::new(),
        };
        for r in 0..rows {
            f.push_cell(r.to_string().as_bytes());
            f.rows += 1;
            f.lines.push(r + 2);
        }
        f
    }

    fn draws(f: &Feeder, cores: u32, per_core: usize) -> Vec<Vec<Option<u32>>> {
        let mut rng = Rng::new(1);
        (0..cores)
            .map(|core| {
                let cursor = Cursor::default();
                (0..per_core)
                    .map(|i| {
                        f.draw(
                            &cursor,
                            Draw {
                                seat: Seat::single(core, cores),
                                user: core + i as u32 * cores,
                            },
                            &mut rng,
                        )
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn sequential_partitions_rows_across_cores() {
        let f = feeder(10, FeederOrder::Sequential, OnExhausted::Stop);
        let got = draws(&f, 3, 5);
        assert_eq!(got[0], [Some(0), Some(3), Some(6), Some(9), None]);
        assert_eq!(got[1], [Some(1), Some(4), Some(7), None, None]);
        let all: Vec<u32> = got.iter().flatten().flatten().copied().collect();
        let unique: BTreeSet<u32> = all.iter().copied().collect();
        assert_eq!(all.len(), 10, "every row exactly once");
        assert_eq!(unique.len(), 10);
        let f = feeder(10, FeederOrder::Sequential, OnExhausted::Recycle);
        assert_eq!(
            draws(&f, 3, 5)[1],
            [Some(1), Some(4), Some(7), Some(1), Some(4)]
        );
        // More cores than rows: a core with no stripe stops at once, or shares one when recycling.
        let f = feeder(2, FeederOrder::Sequential, OnExhausted::Stop);
        assert_eq!(draws(&f, 3, 1)[2], [None]);
        let f = feeder(2, FeederOrder::Sequential, OnExhausted::Recycle);
        assert_eq!(draws(&f, 3, 2)[2], [Some(0), Some(0)]);
    }

    #[test]
    fn unique_gives_each_user_its_own_row() {
        let f = feeder(4, FeederOrder::Unique, OnExhausted::Stop);
        let got = draws(&f, 2, 3);
        // Users 0, 2, 4 on core 0; 1, 3, 5 on core 1.
        assert_eq!(got[0], [Some(0), Some(2), None]);
        assert_eq!(got[1], [Some(1), Some(3), None]);
        let f = feeder(4, FeederOrder::Unique, OnExhausted::Recycle);
        assert_eq!(draws(&f, 2, 3)[0], [Some(0), Some(2), Some(0)]);
    }

    /// Every core of every shard draws from the same file: sequential rows are dealt over all of
    /// them (each row once in the whole test), unique rows follow the run-wide user index, and each
    /// core's circular walk starts at its own place.
    #[test]
    fn shards_and_cores_partition_rows() {
        for (shards, cores, rows) in [(2u32, 2u32, 10u32), (3, 1, 7), (4, 3, 50), (5, 2, 3)] {
            let seq = feeder(rows, FeederOrder::Sequential, OnExhausted::Stop);
            let uniq = feeder(rows, FeederOrder::Unique, OnExhausted::Stop);
            let mut sequential = Vec::new();
            let mut unique = Vec::new();
            let mut rng = Rng::new(1);
            for shard in 0..shards {
                for core in 0..cores {
                    let seat = Seat {
                        shard,
                        shards,
                        core,
                        cores,
                    };
                    let cursor = Cursor::default();
                    // Users of this seat: its items of the run-wide user deal.
                    for k in 0..u64::from(rows) {
                        let user = seat.item(k).unwrap() as u32;
                        let at = Draw { seat, user };
                        sequential.extend(seq.draw(&cursor, at, &mut rng));
                        unique.extend(uniq.draw(&Cursor::default(), at, &mut rng));
                    }
                }
            }
            for (what, mut got) in [("sequential", sequential), ("unique", unique)] {
                got.sort_unstable();
                assert_eq!(
                    got,
                    (0..rows).collect::<Vec<_>>(),
                    "{what}, {shards} shards x {cores} cores: every row exactly once"
                );
            }
        }
        // Circular walks start spread over the file, as the cores of one big engine would.
        let f = feeder(8, FeederOrder::Circular, OnExhausted::Stop);
        let mut rng = Rng::new(1);
        let starts: Vec<Option<u32>> = (0..2)
            .flat_map(|core| (0..2).map(move |shard| (shard, core)))
            .map(|(shard, core)| {
                let seat = Seat {
                    shard,
                    shards: 2,
                    core,
                    cores: 2,
                };
                f.draw(&Cursor::default(), Draw { seat, user: 0 }, &mut rng)
            })
            .collect();
        assert_eq!(starts, [Some(0), Some(2), Some(4), Some(6)]);
    }

    #[test]
    fn circular_and_random_never_run_out() {
        let f = feeder(4, FeederOrder::Circular, OnExhausted::Stop);
        let got = draws(&f, 2, 6);
        assert_eq!(
            got[0],
            [Some(0), Some(1), Some(2), Some(3), Some(0), Some(1)]
        );
        assert_eq!(got[1][0], Some(2), "core 1 starts half way");
        let f = feeder(4, FeederOrder::Random, OnExhausted::Stop);
        let seen: BTreeSet<u32> = draws(&f, 1, 200)[0].iter().map(|r| r.unwrap()).collect();
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn files_load_with_located_errors() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ok.csv", "email,password\na@x,1\n\"b,@x\",2\n");
        let f = Feeder::load(
            "ok.csv",
            None,
            FeederOrder::Sequential,
            OnExhausted::Stop,
            dir.path(),
        )
        .unwrap();
        assert_eq!(f.rows(), 2);
        assert_eq!(f.cell(1, f.column("email").unwrap()), b"b,@x");
        write("ragged.csv", "a,b\n1,2\n3\n");
        let e = Feeder::load(
            "ragged.csv",
            None,
            FeederOrder::Sequential,
            OnExhausted::Stop,
            dir.path(),
        )
        .unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        write("ok.jsonl", "{\"a\": \"x\", \"n\": 5}\n\n{\"a\": \"y\"}\n");
        let f = Feeder::load(
            "ok.jsonl",
            None,
            FeederOrder::Sequential,
            OnExhausted::Stop,
            dir.path(),
        )
        .unwrap();
        assert_eq!(f.cell(0, f.column("n").unwrap()), b"5");
        assert_eq!(f.first_missing(f.column("n").unwrap()), Some(3));
        write("bad.jsonl", "{\"a\": 1}\n[1]\n");
        let e = Feeder::load(
            "bad.jsonl",
            None,
            FeederOrder::Sequential,
            OnExhausted::Stop,
            dir.path(),
        )
        .unwrap_err();
        assert!(e.contains(":2:"), "{e}");
        write("empty.csv", "a,b\n");
        assert!(
            Feeder::load(
                "empty.csv",
                None,
                FeederOrder::Sequential,
                OnExhausted::Stop,
                dir.path()
            )
            .is_err()
        );
        assert!(
            Feeder::load(
                "data.txt",
                None,
                FeederOrder::Sequential,
                OnExhausted::Stop,
                dir.path()
            )
            .unwrap_err()
            .contains("extension")
        );
    }
}
