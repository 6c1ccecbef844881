//! One scripted hook per call, for scripts/bench-script-engines.sh: read and update a per-user table,
//! build a small string, return it to Rust, Lua 5.4 (mlua) edition. Built as its own project by the script.
use mlua::{HookTriggers, Lua, LuaOptions, StdLib, VmState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

fn main() -> mlua::Result<()> {
    let lua = Lua::new_with(StdLib::STRING | StdLib::TABLE | StdLib::MATH, LuaOptions::default())?;
    lua.globals().set("dofile", mlua::Nil)?;
    lua.globals().set("loadfile", mlua::Nil)?;
    let budget = Rc::new(Cell::new(0u32));
    let b = budget.clone();
    lua.set_hook(HookTriggers::new().every_nth_instruction(1000), move |_, _| {
        let n = b.get() + 1;
        b.set(n);
        if n > 100 { Err(mlua::Error::runtime("script ran over its budget")) } else { Ok(VmState::Continue) }
    });
    lua.load(r#"
        function sign(u)
            local n = (u.n or 0) + 1
            u.n = n
            return "order=" .. n .. "&qty=" .. (n % 5 + 1)
        end
        function spin() while true do end end
    "#).set_name("@bench.lua").exec()?;
    let sign: mlua::Function = lua.globals().get("sign")?;
    let state = lua.create_table()?;
    let iters = 1_000_000;
    let t = Instant::now();
    let mut total = 0usize;
    for _ in 0..iters {
        budget.set(0);
        let s: mlua::String = sign.call(&state)?;
        total += s.as_bytes().len();
    }
    let dt = t.elapsed();
    println!("hook call: {:.0} ns/call ({} bytes)", dt.as_nanos() as f64 / iters as f64, total);
    let spin: mlua::Function = lua.globals().get("spin")?;
    budget.set(0);
    let e = spin.call::<()>(()).unwrap_err();
    println!("runaway: {}", e.to_string().lines().next().unwrap());
    let bad = lua.load("function f( end").set_name("@bad.lua").exec().unwrap_err();
    println!("syntax: {}", bad.to_string().lines().next().unwrap());
    Ok(())
}
