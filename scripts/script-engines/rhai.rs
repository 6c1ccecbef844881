//! One scripted hook per call, for scripts/bench-script-engines.sh: read and update a per-user table,
//! build a small string, return it to Rust, Rhai edition. Built as its own project by the script.
use rhai::{CallFnOptions, Dynamic, Engine, Map, Scope, AST};
use std::time::Instant;

fn main() {
    let mut engine = Engine::new();
    engine.set_max_operations(100_000);
    let ast: AST = engine
        .compile(
            r#"
        fn sign() {
            let n = if "n" in this { this.n } else { 0 };
            n += 1;
            this.n = n;
            "order=" + n + "&qty=" + (n % 5 + 1)
        }
        fn spin() { loop {} }
    "#,
        )
        .unwrap();
    let mut scope = Scope::new();
    let mut state = Dynamic::from_map(Map::new());
    let iters = 1_000_000;
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..iters {
        let opts = CallFnOptions::new().bind_this_ptr(&mut state).eval_ast(false);
        let s: String = engine.call_fn_with_options(opts, &mut scope, &ast, "sign", ()).unwrap();
        total += s.len();
    }
    let dt = t.elapsed();
    println!("hook call: {:.0} ns/call ({} bytes)", dt.as_nanos() as f64 / iters as f64, total);
    let e = engine.call_fn::<()>(&mut scope, &ast, "spin", ()).unwrap_err();
    println!("runaway: {e}");
    let bad = engine.compile("fn f( {").unwrap_err();
    println!("syntax: {bad}");
}
