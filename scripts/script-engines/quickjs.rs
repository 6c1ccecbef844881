//! One scripted hook per call, for scripts/bench-script-engines.sh: read and update a per-user table,
//! build a small string, return it to Rust, QuickJS (rquickjs) edition. Built as its own project by the script.
use rquickjs::{Context, Function, Object, Runtime};
use std::time::Instant;

fn main() {
    let rt = Runtime::new().unwrap();
    let budget = std::rc::Rc::new(std::cell::Cell::new(0u32));
    let b = budget.clone();
    // QuickJS calls this every so many bytecodes; true interrupts the script.
    rt.set_interrupt_handler(Some(Box::new(move || { b.set(b.get() + 1); b.get() > 100_000_000 })));
    let ctx = Context::full(&rt).unwrap();
    ctx.with(|ctx| {
        ctx.eval::<(), _>(
            r#"
            function sign(u) { const n = (u.n || 0) + 1; u.n = n; return "order=" + n + "&qty=" + (n % 5 + 1); }
            function spin() { for (;;) {} }
        "#,
        )
        .unwrap();
        let sign: Function = ctx.globals().get("sign").unwrap();
        let state = Object::new(ctx.clone()).unwrap();
        let iters = 1_000_000;
        let t = Instant::now();
        let mut total = 0usize;
        for _ in 0..iters {
            let s: rquickjs::String = sign.call((state.clone(),)).unwrap();
            total += s.to_string().unwrap().len();
        }
        let dt = t.elapsed();
        println!("hook call: {:.0} ns/call ({} bytes)", dt.as_nanos() as f64 / iters as f64, total);
    });
}
