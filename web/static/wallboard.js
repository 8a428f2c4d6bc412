"use strict";
// The supervisor wallboard: one websocket, a board per second.
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(1) + " %");
const money = (c) => (c / 100).toLocaleString(undefined, { minimumFractionDigits: 2 });

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function render(board) {
  document.getElementById("at").textContent = "updated " + new Date(board.at).toLocaleTimeString();
  const body = document.querySelector("#board tbody");
  body.replaceChildren();
  for (const c of board.campaigns) {
    const tr = document.createElement("tr");
    tr.dataset.campaign = c.campaign;
    const a = c.agents || {};
    const over = (x) => (x !== null && x !== undefined && x > c.abandon_target ? "over" : "");
    const denials = Object.entries(c.denials_today || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    tr.append(
      cell(c.campaign), cell(c.state || ""),
      cell(`${a.free || 0}/${a.busy || 0}/${a.wrapup || 0}/${a.paused || 0}`),
      cell(c.in_flight ?? ""), cell(c.dial_level ?? "–"), cell(pct(c.live_answer_rate_today)),
      cell(pct(c.abandon_rate_today), over(c.abandon_rate_today)),
      cell(`${pct(c.abandon_rate_window)} / ${pct(c.abandon_target)}`, over(c.abandon_rate_window)),
      cell(c.amd_today ? `${c.amd_today.machine}/${c.amd_today.person}` : ""),
      cell(denials), cell(`${c.promises_today || 0} · ${money(c.promised_cents_today || 0)}`),
      cell(c.why || "", "muted"),
    );
    body.append(tr);
  }
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/wallboard/ws");
  ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === "wallboard") render(m); };
  ws.onclose = () => { document.getElementById("at").textContent = "reconnecting…"; setTimeout(connect, 2000); };
}
connect();
