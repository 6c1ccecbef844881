// The live dashboard: polls /api/live once a second and draws the run in the HTML report's style.
// Text from the run (request names, the profile, the target) only ever goes into text nodes, never
// into markup. Charts are inline SVG drawn here, laid out like the report's plotters charts.
"use strict";

(function () {
  const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#76b7b2", "#b07aa1", "#edc948", "#9c755f"];
  const AXIS = "#555b66";
  const GRID = "#e6e8ec";
  const FONT = "Helvetica, Arial, sans-serif";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 300;
  // Plot area as plotters lays out the report's charts (margins and label areas).
  const LEFT = 8 + 72, RIGHT = W - 34, TOP = 14, BOTTOM = H - 6 - 46;
  const KIND_ORDER = ["status", "connect_error", "connect_timeout", "timeout", "reset", "tls", "malformed",
    "check", "local_resource", "cancelled", "other"];

  const state = { points: [], generation: null, last: null, ended: false, failures: 0, armed: null, steering: false };

  const $ = (id) => document.getElementById(id);

  // ---- number formats (as analyzer/src/format.rs writes them) ----
  function int(n) {
    return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function latency(us) {
    const ms = us / 1000;
    if (ms >= 10000) return (ms / 1000).toFixed(1) + " s";
    if (ms >= 1000) return int(ms) + " ms";
    if (ms >= 100) return ms.toFixed(0) + " ms";
    if (ms >= 10) return ms.toFixed(1) + " ms";
    if (ms >= 1) return ms.toFixed(2) + " ms";
    return ms.toFixed(3) + " ms";
  }
  function rate(r) {
    if (r >= 1000) return int(r);
    if (r >= 10) return r.toFixed(1);
    return r.toFixed(2);
  }
  function pct(p) {
    if (p === 0) return "0%";
    if (p < 0.1) return p.toFixed(3) + "%";
    if (p < 10) return p.toFixed(2) + "%";
    return p.toFixed(1) + "%";
  }
  function bytes(b) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = b, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? b + " B" : v.toFixed(1) + " " + units[u];
  }
  function duration(s) {
    s = Math.max(0, s);
    if (s >= 3600) { const m = Math.round(s / 60); return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min"; }
    if (s >= 60) { const r = Math.round(s); return Math.floor(r / 60) + " min " + String(r % 60).padStart(2, "0") + " s"; }
    return s.toFixed(s < 10 ? 1 : 0) + " s";
  }
  function trim(s) { return s.indexOf(".") >= 0 ? s.replace(/0+$/, "").replace(/\.$/, "") : s; }
  function count(v) {
    const a = Math.abs(v);
    if (a >= 1e6) return trim((v / 1e6).toFixed(1)) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 1e3) return trim((v / 1e3).toFixed(1)) + "k";
    if (a >= 1 || a === 0) return trim(v.toFixed(1));
    return trim(v.toFixed(2));
  }
  function msAxis(ms) {
    return ms >= 1000 ? count(ms / 1000) + " s" : trim(ms.toFixed(3)) + " ms";
  }

  // ---- DOM helpers: text only ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(id, text) { const e = $(id); if (e.textContent !== text) e.textContent = text; }
  function setValue(id, text, value) { setText(id, text); $(id).dataset.value = String(value); }
  function row(cells) {
    const tr = document.createElement("tr");
    for (const c of cells) tr.appendChild(el("td", c[1] || "", c[0]));
    return tr;
  }
  function fill(tbody, rows, empty) {
    tbody.replaceChildren();
    if (rows.length === 0 && empty) {
      const tr = row([[empty, "weak"]]);
      tr.firstChild.colSpan = 11;
      tbody.appendChild(tr);
    }
    for (const r of rows) tbody.appendChild(row(r));
  }

  // ---- charts ----
  function linearTicks(lo, hi, target, headroom) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / target;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = 10 * mag;
    for (const m of [1, 2, 2.5, 5, 10]) { if (m * mag >= raw) { step = m * mag; break; } }
    const start = Math.floor(lo / step) * step;
    let end = Math.ceil(hi / step) * step;
    if (headroom && end - hi < step * 0.05) end += step;
    const ticks = [];
    for (let t = start; t <= end + step * 1e-9; t += step) ticks.push(t);
    return { lo: start, hi: end, ticks: ticks };
  }
  function logTicks(lo, hi) {
    const start = Math.floor(lo);
    let end = Math.ceil(hi);
    if (end <= start) end = start + 1;
    const few = end - start <= 3;
    const ticks = [];
    for (let d = start; d <= end + 1e-9; d += 1) {
      ticks.push(d);
      if (few && d < end) { ticks.push(d + Math.log10(2)); ticks.push(d + Math.log10(5)); }
    }
    return { lo: start, hi: end, ticks: ticks };
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // spec: {id, log, legend (even for one line), unit: "count"|"ms"|"percent", xLabel, yLabel, lines: [{label, color, dashed, fill, points: [[x, y|null]]}]}
  function draw(spec) {
    const fig = $(spec.id);
    const plot = fig.querySelector(".plot");
    const legend = fig.querySelector("ul.legend");
    const lines = spec.lines.filter((l) => l.points.some((p) => p[1] !== null && isFinite(p[1])));
    legend.replaceChildren();
    if (spec.lines.length > 1 || spec.legend) {
      for (const l of spec.lines) {
        const li = el("li");
        li.appendChild(el("span", "key c" + l.color + (l.dashed ? " dashed" : "")));
        li.appendChild(document.createTextNode(l.label));
        legend.appendChild(li);
      }
    }
    if (lines.length === 0) {
      plot.replaceChildren(el("div", "empty", "No data yet"));
      return;
    }
    const ty = (y) => (spec.log ? Math.log10(Math.max(y, 1e-3)) : y);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const l of lines) for (const p of l.points) {
      x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]);
      if (p[1] !== null && isFinite(p[1])) { const y = ty(p[1]); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
    }
    const xs = linearTicks(Math.min(x0, 0), x1, 8, false);
    const ys = spec.log ? logTicks(y0, y1) : linearTicks(Math.min(0, y0), y1, 5, true);
    const px = (x) => LEFT + (x - xs.lo) / Math.max(xs.hi - xs.lo, 1e-12) * (RIGHT - LEFT);
    const py = (y) => BOTTOM - (ty(y) - ys.lo) / Math.max(ys.hi - ys.lo, 1e-12) * (BOTTOM - TOP);
    const pyRaw = (v) => BOTTOM - (v - ys.lo) / Math.max(ys.hi - ys.lo, 1e-12) * (BOTTOM - TOP);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "xMidYMid meet", role: "img" });
    root.appendChild(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#ffffff" }));
    const text = (x, y, s, anchor, extra) => {
      const a = { x: x, y: y, "font-family": FONT, "font-size": 15, fill: AXIS, "text-anchor": anchor };
      for (const k in extra || {}) a[k] = extra[k];
      root.appendChild(svg("text", a, s));
    };
    for (const t of xs.ticks) {
      const x = px(t).toFixed(1);
      root.appendChild(svg("line", { x1: x, x2: x, y1: TOP, y2: BOTTOM, stroke: GRID }));
      root.appendChild(svg("line", { x1: x, x2: x, y1: BOTTOM, y2: BOTTOM + 5, stroke: AXIS, "stroke-opacity": 0.6 }));
      text(x, BOTTOM + 20, count(t), "middle");
    }
    for (const t of ys.ticks) {
      const y = pyRaw(t).toFixed(1);
      root.appendChild(svg("line", { x1: LEFT, x2: RIGHT, y1: y, y2: y, stroke: GRID }));
      root.appendChild(svg("line", { x1: LEFT - 5, x2: LEFT, y1: y, y2: y, stroke: AXIS, "stroke-opacity": 0.6 }));
      const v = spec.log ? Math.pow(10, t) : t;
      const label = spec.unit === "ms" ? msAxis(v) : spec.unit === "percent" ? count(v) + "%" : count(v);
      text(LEFT - 10, Number(y) + 5, label, "end");
    }
    root.appendChild(svg("line", { x1: LEFT, x2: LEFT, y1: TOP, y2: BOTTOM, stroke: AXIS, "stroke-opacity": 0.6 }));
    root.appendChild(svg("line", { x1: LEFT, x2: RIGHT, y1: BOTTOM, y2: BOTTOM, stroke: AXIS, "stroke-opacity": 0.6 }));
    text((LEFT + RIGHT) / 2, H - 10, spec.xLabel, "middle");
    text(20, (TOP + BOTTOM) / 2, spec.yLabel, "middle", { transform: "rotate(-90 20 " + (TOP + BOTTOM) / 2 + ")" });
    // Changes of the load (steering), as the report marks them: a dashed line where each began.
    for (const m of spec.marks || []) {
      if (m.t < xs.lo || m.t > xs.hi) continue;
      const x = px(m.t).toFixed(1);
      root.appendChild(svg("line", { x1: x, x2: x, y1: TOP, y2: BOTTOM, stroke: AXIS, "stroke-opacity": 0.8, "stroke-dasharray": "4 3", class: "mark" }));
      const right = px(m.t) > LEFT + 0.7 * (RIGHT - LEFT);
      text(Number(x) + (right ? -4 : 4), TOP + 12, m.label, right ? "end" : "start", { "font-size": 13 });
    }
    for (const l of lines) {
      const color = PALETTE[l.color % PALETTE.length];
      // Contiguous runs of defined points.
      const runs = [];
      let cur = [];
      for (const p of l.points) {
        if (p[1] === null || !isFinite(p[1])) { if (cur.length) runs.push(cur); cur = []; }
        else cur.push([px(p[0]), py(p[1])]);
      }
      if (cur.length) runs.push(cur);
      for (const r of runs) {
        const d = r.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join("");
        if (l.fill && !spec.log && r.length > 1) {
          const base = pyRaw(0).toFixed(1);
          root.appendChild(svg("path", { d: d + "L" + r[r.length - 1][0].toFixed(1) + " " + base + "L" + r[0][0].toFixed(1) + " " + base + "Z", fill: color, "fill-opacity": 0.12, stroke: "none" }));
        }
        if (r.length === 1) {
          root.appendChild(svg("circle", { cx: r[0][0].toFixed(1), cy: r[0][1].toFixed(1), r: 2, fill: color }));
        } else {
          const a = { d: d, fill: "none", stroke: color, "stroke-width": 2, "stroke-linejoin": "round" };
          if (l.dashed) a["stroke-dasharray"] = "6 4";
          root.appendChild(svg("path", a));
        }
      }
    }
    plot.replaceChildren(root);
  }

  function charts(s) {
    const pts = state.points;
    const marks = ((s.steer && s.steer.changes) || []).map((c) => ({
      t: c.at_s, label: "→ " + (c.what === "users" ? int(Math.round(c.to)) + " users" : rate(c.to) + "/s") }));
    const x = (p) => p.t;
    const series = (f) => pts.map((p) => [x(p), f(p)]);
    const ms = (us) => (us > 0 ? us / 1000 : null);
    draw({ marks: marks, id: "chart-throughput", unit: "count", xLabel: "time since start (s)", yLabel: "requests/s", lines: [
      { label: "requests/s", color: 0, fill: true, points: series((p) => p.requests / Math.max(p.duration_s, 1e-3)) },
      { label: "failed/s", color: 2, points: series((p) => p.failures / Math.max(p.duration_s, 1e-3)) },
    ] });
    draw({ marks: marks, id: "chart-latency", log: true, unit: "ms", xLabel: "time since start (s)", yLabel: "latency", lines: [
      { label: "P50", color: 0, points: series((p) => ms(p.p50)) },
      { label: "P90", color: 1, points: series((p) => ms(p.p90)) },
      { label: "P99", color: 2, points: series((p) => ms(p.p99)) },
      { label: "P99 uncorrected", color: 2, dashed: true, points: series((p) => ms(p.u99)) },
    ] });
    const open = s.run.open_model;
    draw({ marks: marks, id: "chart-users", unit: "count", xLabel: "time since start (s)", yLabel: open ? "users, iterations/s" : "users", lines: [
      { label: "active users", color: 0, fill: true, points: series((p) => p.users) },
      { label: open ? "target rate (iterations/s)" : "target users", color: 1, dashed: true, points: series((p) => p.target) },
    ] });
    const kinds = KIND_ORDER.filter((k) => pts.some((p) => (p.kinds[k] || 0) > 0));
    draw({ marks: marks, id: "chart-failures", legend: kinds.length > 0, unit: "count", xLabel: "time since start (s)", yLabel: "failures/s",
      lines: kinds.length ? kinds.map((k, i) => ({ label: k, color: (i + 2) % PALETTE.length,
        points: series((p) => (p.kinds[k] || 0) / Math.max(p.duration_s, 1e-3)) }))
        : [{ label: "failures", color: 2, points: pts.length ? series(() => 0) : [] }] });
    draw({ marks: marks, id: "chart-lag", log: true, unit: "ms", xLabel: "time since start (s)", yLabel: "schedule lag", lines: [
      { label: "P99", color: 0, points: series((p) => ms(Math.max(p.lag_p99, 1))) },
      { label: "max", color: 2, points: series((p) => ms(Math.max(p.lag_max, 1))) },
      { label: "1 ms limit", color: 7, dashed: true, points: series(() => 1) },
    ] });
    draw({ marks: marks, id: "chart-cpu", unit: "percent", xLabel: "time since start (s)", yLabel: "CPU (% of one core)", lines: [
      { label: "busiest core", color: 0, points: series((p) => p.cpu_max) },
      { label: "mean", color: 3, dashed: true, points: series((p) => p.cpu_mean) },
    ] });
  }

  // ---- page ----
  const PHASE_TEXT = { running: "running", stopping: "stopping", completed: "completed", interrupted: "interrupted", failed: "failed" };

  function header(s) {
    const run = s.run;
    setText("title", "Live: " + run.profile);
    document.title = run.profile + " · Stampede live";
    const shard = run.shard ? " · shard " + run.shard[0] + " of " + run.shard[1] : "";
    setText("subtitle", run.target + " · " + run.load + shard);
    const phase = $("phase");
    phase.className = "phase " + s.phase;
    phase.textContent = PHASE_TEXT[s.phase] || s.phase;
    const elapsed = s.elapsed_s;
    const planned = run.planned_s;
    $("progress").style.width = Math.min(100, (100 * elapsed) / Math.max(planned, 1e-9)).toFixed(2) + "%";
    setText("elapsed", duration(elapsed) + " of " + duration(planned));
    setText("remaining", state.ended ? "ended" : s.phase === "stopping" ? "stopping…" : duration(planned - elapsed) + " left");
    const stop = $("stop");
    stop.hidden = !run.can_stop || state.ended;
    if (s.phase !== "running") stop.disabled = true;
  }

  // ---- steering ----
  function steerText(v, users) { return users ? int(Math.round(v)) + " users" : rate(v) + " /s"; }

  function steerPanel(s) {
    const st = s.steer;
    const form = $("steer");
    if (!st || !s.run.can_stop) { form.hidden = true; return; }
    form.hidden = false;
    const users = st.knob === "users";
    setText("steer-label", users ? "Users" : "Arrival rate (/s)");
    const to = $("steer-to");
    to.step = users ? "1" : "any";
    to.min = users ? "0" : "0.001";
    // No `max`: above the limit the engine's answer says what to do, which a browser's bubble would not.
    if (!to.value && document.activeElement !== to) to.placeholder = users ? String(Math.round(st.target)) : trim(st.target.toFixed(2));
    const usable = st.available && !state.ended && s.phase === "running";
    for (const id of ["steer-to", "steer-ramp", "steer-apply"]) $(id).disabled = !usable || state.steering;
    form.classList.toggle("off", !usable);
    if (!usable) {
      setText("steer-status", "Steering unavailable: " + (st.reason || (state.ended ? "the run has ended" : "the run is " + s.phase)) + ".");
      return;
    }
    let text = "target " + steerText(st.target, users);
    if (st.ramping) {
      const c = st.ramping.change;
      text += " · ramping " + steerText(c.from, users) + " → " + steerText(c.to, users) + " over " + trim(c.ramp_s.toFixed(1)) +
        " s (" + Math.round(100 * st.ramping.progress) + " %)";
    }
    if (users) text += " · limit " + int(st.max);
    if (st.changes.length) text += " · " + st.changes.length + (st.changes.length === 1 ? " change" : " changes");
    setText("steer-status", text);
  }

  function steerForm() {
    const form = $("steer");
    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      const st = state.last && state.last.steer;
      if (!st) return;
      const result = $("steer-result");
      const to = Number($("steer-to").value);
      const ramp = Number($("steer-ramp").value || 0);
      const body = st.knob === "users" ? { users: to, ramp_s: ramp } : { rate: to, ramp_s: ramp };
      state.steering = true;
      $("steer-apply").disabled = true;
      try {
        const resp = await fetch("/api/steer", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        let answer = null;
        try { answer = await resp.json(); } catch (e) { answer = null; }
        if (!resp.ok) throw new Error((answer && answer.error) || "HTTP " + resp.status);
        const c = answer.change;
        const users = c.what === "users";
        result.className = "steer-result ok";
        result.dataset.atS = String(c.at_s);
        result.dataset.to = String(c.to);
        result.textContent = "Accepted: " + steerText(c.from, users) + " → " + steerText(c.to, users) +
          (c.ramp_s > 0 ? " over " + trim(c.ramp_s.toFixed(1)) + " s" : " at once") + ", from " + duration(c.at_s) + ".";
      } catch (e) {
        result.className = "steer-result bad";
        delete result.dataset.atS;
        result.textContent = "Refused: " + e.message;
      } finally {
        state.steering = false;
        if (state.last) steerPanel(state.last);
      }
    });
  }

  function cards(s) {
    const all = s.all;
    const elapsed = Math.max(s.elapsed_s, 1e-9);
    setValue("requests-total", int(all.requests), all.requests);
    setText("requests-detail", "in " + duration(s.elapsed_s) + " · " + int(s.totals.iterations_started) + " iterations");
    setValue("throughput", rate(s.now.rate) + " /s", s.now.rate);
    setText("throughput-detail", "last second · " + rate(all.requests / elapsed) + " /s since start");
    const share = all.requests ? (100 * all.failures) / all.requests : 0;
    setValue("failures", pct(share), all.failures);
    setText("failures-detail", int(all.failures) + " failed");
    $("card-failures").classList.toggle("bad", all.failures > 0);
    setValue("users", int(s.now.users), s.now.users);
    setText("users-detail", s.run.open_model ? "target " + rate(s.now.target) + " iterations/s" : "target " + int(s.now.target) + " users");
    const l = all.latency, u = s.totals.uncorrected;
    const has = all.requests > 0;
    setText("p50", has ? latency(l.p50) : "–");
    setText("p50-detail", has ? "uncorrected " + latency(u.p50) : "");
    setText("p99", has ? latency(l.p99) : "–");
    setText("p99-detail", has ? "uncorrected " + latency(u.p99) : "");
    setText("max", has ? latency(l.max) : "–");
    setText("max-detail", has ? "mean " + latency(l.mean) + " · uncorrected max " + latency(u.max) : "");
    setValue("lag", latency(s.now.lag_p99), s.now.lag_p99);
    setText("lag-detail", "last second · worst " + latency(s.now.lag_max) + " · CPU " + count(s.now.cpu_max) + "%");
    $("card-lag").classList.toggle("warn", s.now.lag_p99 > 1000);
  }

  function tables(s) {
    const elapsed = Math.max(s.elapsed_s, 1e-9);
    const line = (n, total) => {
      const c = total ? "total" : "";
      const fp = n.requests ? (100 * n.failures) / n.requests : 0;
      const has = n.requests > 0;
      return [
        [total ? "All requests" : n.name, total ? "total" : "name"],
        [int(n.requests), "num " + c],
        [int(n.failures), "num " + c + (n.failures ? " bad" : "")],
        [pct(fp), "num " + c + (n.failures ? " bad" : "")],
        [rate(n.requests / elapsed), "num " + c],
        [has ? latency(n.latency.p50) : "–", "num " + c],
        [has ? latency(n.latency.p90) : "–", "num " + c],
        [has ? latency(n.latency.p99) : "–", "num " + c],
        [has ? latency(n.latency.max) : "–", "num " + c],
        [bytes(n.bytes_sent), "num " + c],
        [bytes(n.bytes_received), "num " + c],
      ];
    };
    const rows = s.names.map((n) => line(n, false));
    if (s.names.length > 1) rows.push(line(s.all, true));
    fill($("names").tBodies[0], rows, "No requests yet.");

    const kinds = Object.entries(s.all.kinds).sort((a, b) => b[1] - a[1]);
    fill($("kinds").tBodies[0], kinds.map((k) => [[k[0]], [int(k[1]), "num bad"], [pct((100 * k[1]) / Math.max(s.all.requests, 1)), "num"]]), "No failures.");
    const byName = [];
    for (const n of s.names) for (const k of Object.entries(n.kinds)) byName.push([n.name, k[0], k[1]]);
    byName.sort((a, b) => b[2] - a[2]);
    fill($("name-kinds").tBodies[0], byName.map((r) => [[r[0], "name"], [r[1]], [int(r[2]), "num bad"]]), "No failures.");

    const lagging = state.points.filter((p) => p.lag_p99 > 1000).length;
    const dropped = s.totals.iterations_dropped;
    const verdict = $("health-verdict");
    const badge = verdict.querySelector(".badge");
    let text;
    if (lagging || dropped) {
      verdict.className = "verdict suspect";
      badge.textContent = "SUSPECT";
      const why = [];
      if (lagging) why.push("schedule lag P99 passed 1 ms in " + lagging + " of " + state.points.length + " seconds: the generator is the bottleneck");
      if (dropped) why.push(int(dropped) + " iterations were dropped because no user was free");
      text = why.join("; ") + ".";
    } else {
      verdict.className = "verdict ok";
      badge.textContent = "OK";
      text = state.points.length ? "Schedule lag P99 under 1 ms every second so far, no dropped iterations." : "No complete second yet.";
    }
    setText("health-text", text);
    const t = s.totals;
    fill($("health-table").tBodies[0], [
      [["Schedule lag (whole run)", "fact"], ["P50 " + latency(t.lag.p50) + " · P99 " + latency(t.lag.p99) + " · max " + latency(t.lag.max)]],
      [["Schedule lag (last second)", "fact"], ["P99 " + latency(s.now.lag_p99) + " · max " + latency(s.now.lag_max)]],
      [["Iterations", "fact"], [int(t.iterations_started) + " started · " + int(dropped) + " dropped"]],
      [["Generator CPU", "fact"], [count(t.cpu_user_s + t.cpu_system_s) + " CPU-seconds (" + count(t.cpu_user_s) + " user, " + count(t.cpu_system_s) + " system) · busiest core " + count(s.now.cpu_max) + "% last second"]],
      [["Connections", "fact"], [int(s.now.connections) + " open · " + int(t.connections_opened) + " opened"]],
    ]);

    const r = s.run;
    const facts = [
      [["Profile", "fact"], [r.profile]],
      [["Environment", "fact"], [r.environment || "–"]],
      [["Target", "fact"], [r.target]],
      [["Load", "fact"], [r.load]],
      [["Started (UTC)", "fact"], [r.started_at.replace("T", " ").replace(/\.\d+/, "")]],
      [["Planned duration", "fact"], [duration(r.planned_s)]],
      [["Engine", "fact"], ["stampede " + r.engine_version + " · " + r.cores + " core(s) · " + r.io]],
      [["Run id", "fact"], [r.run_id, "mono"]],
      [["Run directory", "fact"], [r.dir, "mono"]],
    ];
    if (r.shard) facts.push([["Shard", "fact"], [r.shard[0] + " of " + r.shard[1]]]);
    fill($("facts").tBodies[0], facts);
  }

  function banner(kind, parts) {
    const b = $("banner");
    b.className = "verdict " + kind;
    const p = $("banner-text");
    p.replaceChildren();
    for (const part of parts) {
      p.appendChild(part.code ? el("code", "", part.code) : document.createTextNode(part));
    }
    b.hidden = false;
  }

  function ended(s) {
    const how = { completed: "The run completed.", interrupted: "The run was stopped before its planned end (interrupted).", failed: "The run failed: " + (s.error || "see the engine's output") + "." }[s.phase];
    banner(s.phase === "completed" ? "ok" : s.phase === "failed" ? "invalid" : "suspect", [
      how + " Its record is the run directory ", { code: s.run.dir }, "; the full report: ",
      { code: "analyzer report " + s.run.dir }, ". The engine has exited or is about to; this page keeps the final figures.",
    ]);
    setText("footer-status", "Final state received " + new Date().toLocaleTimeString() + ".");
  }

  function apply(body) {
    if (body.series.generation !== state.generation || body.series.from === 0) {
      state.points = body.series.points;
      state.generation = body.series.generation;
    } else {
      state.points = state.points.slice(0, body.series.from).concat(body.series.points);
    }
    state.last = body;
    state.ended = ["completed", "interrupted", "failed"].indexOf(body.phase) >= 0;
    header(body);
    steerPanel(body);
    cards(body);
    tables(body);
    charts(body);
    if (state.ended) ended(body);
    else if (state.failures) $("banner").hidden = true;
    state.failures = 0;
    if (!state.ended) setText("footer-status", "Updated " + new Date().toLocaleTimeString() + ".");
  }

  async function poll() {
    const since = state.generation === null ? "" : "?since=" + state.points.length + "&generation=" + state.generation;
    try {
      const resp = await fetch("/api/live" + since, { cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      apply(await resp.json());
    } catch (e) {
      state.failures++;
      if (!state.ended) {
        const phase = $("phase");
        phase.className = "phase lost";
        phase.textContent = "no contact";
        banner("invalid", ["Lost contact with the engine (" + e.message + "); retrying. If the run ended, its results are in the run directory" + (state.last ? " " : "."), state.last ? { code: state.last.run.dir } : ""]);
      }
    }
    if (!state.ended) setTimeout(poll, state.failures ? 2000 : 1000);
  }

  function stopButton() {
    const b = $("stop");
    b.addEventListener("click", async function () {
      if (!b.classList.contains("armed")) {
        b.classList.add("armed");
        b.textContent = "Confirm stop";
        clearTimeout(state.armed);
        state.armed = setTimeout(() => { b.classList.remove("armed"); b.textContent = "Stop run"; }, 4000);
        return;
      }
      clearTimeout(state.armed);
      b.disabled = true;
      b.textContent = "Stopping…";
      try {
        const resp = await fetch("/api/stop", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
        if (!resp.ok) throw new Error("HTTP " + resp.status + ": " + (await resp.text()));
      } catch (e) {
        b.disabled = false;
        b.classList.remove("armed");
        b.textContent = "Stop run";
        banner("invalid", ["Stop failed: " + e.message]);
      }
    });
  }

  stopButton();
  steerForm();
  poll();
})();
