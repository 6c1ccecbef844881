//! `script:`: a Lua 5.4 file whose functions `Script(call: ...)` flow elements call, for what
//! declarative control flow cannot say (a computed body, a decision over several values, state kept
//! across a user's iterations).
//!
//! The file is run once when the profile loads, in the same sandbox the cores use, so that a syntax
//! error, an error at the top level or a call to a function it does not define is a load-time error
//! naming the file and line. Each core then runs its own interpreter ([`ScriptHost`], created on the
//! core's thread and never shared, so no lock), and each user has its own table, the first argument
//! of every call, which lives as long as the user.
//!
//! **Sandbox.** Only Lua's `string`, `table`, `math` and `utf8` libraries and the safe base functions
//! are there: no `io`, `os`, `package`/`require`, `debug`, `dofile`, `loadfile`, `print` or `warn`; a script
//! reaches nothing outside the values the profile hands it.
//!
//! **Budget.** A call may run [`BUDGET`] Lua instructions (counted by an instruction hook every
//! [`HOOK_EVERY`]); one that runs over is stopped with an error, so a runaway loop costs a
//! few milliseconds and a failed sample, never the core.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use mlua::{HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

/// Instructions one call may run.
pub(crate) const BUDGET: u32 = 1_000_000;
/// How often the hook counts.
const HOOK_EVERY: u32 = 1_000;

/// The script as loaded and checked.
#[derive(Debug, Clone)]
pub(crate) struct ScriptSource {
    /// The path as the profile wrote it, for messages.
    pub file: String,
    /// The file's text.
    pub source: String,
    /// The global functions it defines.
    pub functions: Vec<String>,
}

impl ScriptSource {
    /// Reads `file` (relative to `base_dir`), runs it in the sandbox and lists its functions.
    pub fn load(file: &str, base_dir: &Path) -> Result<ScriptSource, String> {
        let path = base_dir.join(file);
        let source = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the script {}: {e}", path.display()))?;
        let (lua, spent) = sandbox()?;
        let before = functions(&lua);
        run(&lua, &spent, file, &source)?;
        // The script's own functions, including any that replaced a library function of the name.
        let mut functions: Vec<String> = functions(&lua)
            .into_iter()
            .filter(|f| !before.contains(f))
            .map(|(name, _)| name)
            .collect();
        functions.sort();
        Ok(ScriptSource {
            file: file.to_owned(),
            source,
            functions,
        })
    }
}

/// The global functions: their names and identities.
fn functions(lua: &Lua) -> Vec<(String, usize)> {
    lua.globals()
        .pairs::<Value, Value>()
        .filter_map(|pair| match pair {
            Ok((Value::String(name), f @ Value::Function(_))) => {
                Some((name.to_string_lossy(), f.to_pointer() as usize))
            }
            _ => None,
        })
        .collect()
}

/// Runs the script's top level in `lua`, within the budget.
fn run(lua: &Lua, spent: &Cell<u32>, file: &str, source: &str) -> Result<(), String> {
    spent.set(0);
    lua.load(source)
        .set_name(format!("@{file}"))
        .exec()
        .map_err(|e| first_line(&e))?;
    spent.set(0);
    Ok(())
}

/// A sandboxed interpreter, and its budget counter.
fn sandbox() -> Result<(Lua, Rc<Cell<u32>>), String> {
    let lua = Lua::new_with(
        StdLib::STRING | StdLib::TABLE | StdLib::MATH | StdLib::UTF8,
        LuaOptions::default(),
    )
    .map_err(|e| format!("cannot start Lua: {e}"))?;
    let globals = lua.globals();
    for name in ["dofile", "loadfile", "print", "warn"] {
        globals
            .set(name, Value::Nil)
            .map_err(|e| format!("cannot set up the sandbox: {e}"))?;
    }
    let spent = Rc::new(Cell::new(0u32));
    let counter = spent.clone();
    lua.set_hook(
        HookTriggers::new().every_nth_instruction(HOOK_EVERY),
        move |_, debug| {
            let n = counter.get() + HOOK_EVERY;
            counter.set(n);
            if n > BUDGET {
                let source = debug.source();
                let file = source.short_src.as_deref().unwrap_or("script");
                Err(mlua::Error::runtime(format!(
                    "{file}:{}: the script ran over its budget of {BUDGET} instructions",
                    debug.curr_line()
                )))
            } else {
                Ok(VmState::Continue)
            }
        },
    );
    Ok((lua, spent))
}

/// The first line of a Lua error (its location and message, without the traceback).
fn first_line(e: &mlua::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    line.strip_prefix("runtime error: ")
        .unwrap_or(line)
        .to_owned()
}

/// A core's interpreter: the script's functions by call index, and each user's table.
pub(crate) struct ScriptHost {
    lua: Lua,
    spent: Rc<Cell<u32>>,
    calls: Vec<mlua::Function>,
    tables: Vec<Option<Table>>,
}

impl std::fmt::Debug for ScriptHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptHost")
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl ScriptHost {
    /// Runs `script` in a new interpreter and looks up the functions `calls` names (checked when the
    /// profile loaded).
    pub fn new(script: &ScriptSource, calls: &[String]) -> Result<ScriptHost, String> {
        let (lua, spent) = sandbox()?;
        run(&lua, &spent, &script.file, &script.source)?;
        let calls = calls
            .iter()
            .map(|name| {
                lua.globals()
                    .get::<mlua::Function>(name.as_str())
                    .map_err(|_| format!("{} defines no function `{name}`", script.file))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ScriptHost {
            lua,
            spent,
            calls,
            tables: Vec::new(),
        })
    }

    /// Calls function `f` for user `local` (its table first, then `args` as strings) and writes its
    /// result into `out` (a string as is, a number or boolean as text, nil as nothing). `Err` is the
    /// script's message, with its file and line.
    pub fn call(
        &mut self,
        f: usize,
        local: usize,
        args: &[Vec<u8>],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        if self.tables.len() <= local {
            self.tables.resize_with(local + 1, || None);
        }
        let table = match &self.tables[local] {
            Some(t) => t.clone(),
            None => {
                let t = self.lua.create_table().map_err(|e| first_line(&e))?;
                self.tables[local] = Some(t.clone());
                t
            }
        };
        let mut values = mlua::MultiValue::with_capacity(args.len() + 1);
        values.push_back(Value::Table(table));
        for a in args {
            let s = self.lua.create_string(a).map_err(|e| first_line(&e))?;
            values.push_back(Value::String(s));
        }
        self.spent.set(0);
        let result: Value = self.calls[f].call(values).map_err(|e| first_line(&e))?;
        out.clear();
        match result {
            Value::Nil => {}
            Value::String(s) => out.extend_from_slice(&s.as_bytes()),
            Value::Boolean(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
            other => {
                return Err(format!(
                    "the script returned a {}; return a string, a number, a boolean or nil",
                    other.type_name()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> ScriptSource {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.lua"), text).unwrap();
        ScriptSource::load("s.lua", dir.path()).unwrap()
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.lua"), text).unwrap();
        ScriptSource::load("s.lua", dir.path()).unwrap_err()
    }

    #[test]
    fn functions_are_listed_and_called_with_the_users_own_table() {
        let s = source(
            "local hidden = 1\nfunction count(u, step) u.n = (u.n or 0) + tonumber(step); return u.n end\nfunction name(u) return 'x' end\nfunction type(u) return 't' end\n",
        );
        assert_eq!(s.functions, ["count", "name", "type"]);
        let mut host = ScriptHost::new(&s, &["count".to_owned()]).unwrap();
        let mut out = Vec::new();
        for (user, step, want) in [(0, "2", "2"), (0, "3", "5"), (1, "1", "1"), (0, "1", "6")] {
            host.call(0, user, &[step.as_bytes().to_vec()], &mut out)
                .unwrap();
            assert_eq!(out, want.as_bytes(), "user {user}");
        }
    }

    #[test]
    fn mistakes_are_located_in_the_file() {
        assert_eq!(
            load_error("function f(\nend"),
            "syntax error: s.lua:2: <name> or '...' expected near 'end'"
        );
        assert_eq!(
            load_error("x = nil + 1"),
            "s.lua:1: attempt to perform arithmetic on a nil value"
        );
        let s = source("function bad(u) return u.x.y end\nfunction tbl(u) return {} end");
        let mut host = ScriptHost::new(&s, &["bad".to_owned(), "tbl".to_owned()]).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            host.call(0, 0, &[], &mut out).unwrap_err(),
            "s.lua:1: attempt to index a nil value (field 'x')"
        );
        assert!(
            host.call(1, 0, &[], &mut out)
                .unwrap_err()
                .contains("returned a table")
        );
    }

    #[test]
    fn the_sandbox_has_no_files_processes_or_modules() {
        let s = source(
            "function probe(u, what) local f = load('return ' .. what); return type(f()) end",
        );
        let mut host = ScriptHost::new(&s, &["probe".to_owned()]).unwrap();
        let mut out = Vec::new();
        for absent in [
            "io", "os", "require", "package", "debug", "dofile", "loadfile", "print", "warn",
        ] {
            host.call(0, 0, &[absent.as_bytes().to_vec()], &mut out)
                .unwrap();
            assert_eq!(out, b"nil", "{absent}");
        }
        for present in ["string", "table", "math", "utf8"] {
            host.call(0, 0, &[present.as_bytes().to_vec()], &mut out)
                .unwrap();
            assert_eq!(out, b"table", "{present}");
        }
    }

    #[test]
    fn a_runaway_call_is_stopped_and_the_next_call_runs() {
        let s = source("function spin(u) while true do end end\nfunction ok(u) return 1 end");
        let mut host = ScriptHost::new(&s, &["spin".to_owned(), "ok".to_owned()]).unwrap();
        let mut out = Vec::new();
        let e = host.call(0, 0, &[], &mut out).unwrap_err();
        assert!(
            e.contains("ran over its budget of 1000000 instructions"),
            "{e}"
        );
        host.call(1, 0, &[], &mut out).unwrap();
        assert_eq!(out, b"1");
        assert!(load_error("while true do end").contains("ran over its budget"));
    }
}
