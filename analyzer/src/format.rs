//! How numbers are written in reports: one place, so HTML, Markdown and charts agree.

/// 1234567 → "1,234,567".
pub fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with its noun, singular for one: (1, "core") → "1 core", (1234, "core") → "1,234 cores".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", int(n))
    }
}

/// A latency given in µs, in ms with three significant digits, or in s from 10 s on:
/// 840 → "0.840 ms", 12_345 → "12.3 ms", 1_234_567 → "1,235 ms", 12_000_000 → "12.0 s".
pub fn latency_us(us: f64) -> String {
    let ms = us / 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{} ms", int(ms.round() as u64))
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

/// A rate per second with sensible precision: "12,345", "123.4", "0.52".
pub fn rate(r: f64) -> String {
    if r >= 1000.0 {
        int(r.round() as u64)
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// A target that is usually whole (users) and sometimes not (an arrival rate, or users mid-ramp):
/// "1,200", "12.5".
pub fn count_f64(v: f64) -> String {
    if v >= 0.0 && v.fract() == 0.0 && v < u64::MAX as f64 {
        int(v as u64)
    } else {
        rate(v)
    }
}

/// A percentage: "0%", "0.012%", "1.23%", "45.6%".
pub fn pct(p: f64) -> String {
    if p == 0.0 {
        "0%".into()
    } else if p < 0.1 {
        format!("{p:.3}%")
    } else if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// Bytes in binary units: "512 B", "14.2 KiB", "3.1 GiB".
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Seconds as "1 h 02 min", "2 min 05 s", "42.5 s".
pub fn duration_s(s: f64) -> String {
    if s >= 3600.0 {
        let m = (s / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    } else if s >= 60.0 {
        let t = s.round() as u64;
        format!("{} min {:02} s", t / 60, t % 60)
    } else {
        format!("{s:.1} s")
    }
}

/// A relative change: "+12.3%", "−4.0%", "±0%".
pub fn delta(base: f64, value: f64) -> Option<(f64, String)> {
    if base == 0.0 || !base.is_finite() || !value.is_finite() {
        return None;
    }
    let d = 100.0 * (value - base) / base;
    let text = if d.abs() < 0.05 {
        "±0%".to_owned()
    } else if d > 0.0 {
        format!("+{d:.1}%")
    } else {
        format!("\u{2212}{:.1}%", -d)
    };
    Some((d, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(1234567), "1,234,567");
        assert_eq!(count(1, "core"), "1 core");
        assert_eq!(count(0, "core"), "0 cores");
        assert_eq!(count(1234, "core"), "1,234 cores");
        assert_eq!(latency_us(840.0), "0.840 ms");
        assert_eq!(latency_us(12_345.0), "12.3 ms");
        assert_eq!(latency_us(1_234_567.0), "1,235 ms");
        assert_eq!(latency_us(12_000_000.0), "12.0 s");
        assert_eq!(pct(1.234), "1.23%");
        assert_eq!(bytes(15_000), "14.6 KiB");
        assert_eq!(duration_s(125.0), "2 min 05 s");
        assert_eq!(delta(100.0, 110.0).unwrap().1, "+10.0%");
        assert_eq!(delta(100.0, 90.0).unwrap().1, "\u{2212}10.0%");
        assert!(delta(0.0, 1.0).is_none());
    }
}
