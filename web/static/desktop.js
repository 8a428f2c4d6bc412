"use strict";
// The agent desktop: state buttons, the screen pop over a websocket, outcome entry.
let me = null;      // GET /api/v1/me: {username, role, agent (code), csrf_token}
let call = null;    // the current screen pop
const $ = (id) => document.getElementById(id);
const money = (c, cur) => (c / 100).toLocaleString(undefined, { minimumFractionDigits: 2 }) + " " + (cur || "");

async function api(method, path, body) {
  const r = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": me ? me.csrf_token : "" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : {};
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function showState(state) {
  const s = $("state");
  s.textContent = state.replace("_", " ");
  s.className = "state " + state;
}

function list(id, items) {
  const ul = $(id);
  ul.replaceChildren(...items.map((t) => { const li = document.createElement("li"); li.textContent = t; return li; }));
}

function showPop(p) {
  call = p;
  $("waiting").classList.add("hidden");
  $("pop").classList.remove("hidden");
  $("pop-title").textContent = `Call · ${p.campaign || "inbound"}`;
  $("pop-verify").textContent = p.verify_first || "";
  $("pop-verify").classList.toggle("hidden", !p.verify_first);
  $("pop-identify").textContent = p.identify_first || "";
  $("pop-identify").classList.toggle("hidden", !p.identify_first);
  $("pop-name").textContent = p.debtor.name;
  $("pop-creditor").textContent = p.debt.creditor;
  $("pop-account").textContent = p.debt.account;
  $("pop-balance").textContent = money(p.debt.balance_cents, p.debt.currency);
  $("pop-dpd").textContent = p.debt.days_past_due;
  $("pop-ivr").textContent = p.ivr ? `${p.ivr.entry}: ${p.ivr.verified ? "verified" : p.ivr.verified_as_another_debtor ? "verified as another debtor" : "not verified"}, ${p.ivr.outcome || ""}` : "–";
  list("pop-notes", p.compliance_notes);
  list("pop-options", p.options.map((o) => `${o.kind}: ${money(o.total_cents, p.debt.currency)} in ${o.months} payment(s), first ${o.instalments[0].due}`));
  list("pop-attempts", p.attempts.map((a) => `${a.created_at.slice(0, 16)} ${a.direction} ${a.disposition}`));
  list("pop-promises", p.promises.map((x) => `${x.created_at.slice(0, 10)} ${x.kind} ${money(x.total_cents, p.debt.currency)} ${x.status}`));
  $("saved").textContent = "";
  showState("talking");
}

async function loadSlots() {
  if (!call) return;
  const { slots } = await api("GET", `/api/v1/agent/callback-slots?debt_id=${call.debt.id}`);
  $("callback-slot").replaceChildren(...slots.map((s) => {
    const o = document.createElement("option"); o.value = s.at; o.textContent = s.local; return o;
  }));
}

$("dispo").addEventListener("change", () => {
  const v = $("dispo").value;
  $("promise-row").classList.toggle("hidden", v !== "promise_to_pay");
  $("callback-row").classList.toggle("hidden", v !== "callback");
  if (v === "callback") loadSlots().catch((e) => ($("saved").textContent = e.message));
});

$("save").addEventListener("click", async () => {
  if (!call) return;
  try {
    const code = $("dispo").value;
    if (code === "promise_to_pay") {
      const cents = Math.round(parseFloat($("promise-amount").value) * 100);
      const promise = await api("POST", "/api/v1/promises", {
        debt_id: call.debt.id, attempt_id: call.attempt_id, amount_cents: cents, due: $("promise-date").value,
      });
      $("saved").textContent = `Promise recorded: code ${promise.confirmation_code}`;
    }
    if (call.attempt_id) {
      const body = { code, notes: $("notes").value };
      if (code === "callback") body.callback_at = $("callback-slot").value;
      await api("POST", `/api/v1/attempts/${call.attempt_id}/disposition`, body);
    }
    if (code !== "promise_to_pay") $("saved").textContent = "Outcome saved";
  } catch (e) {
    $("saved").textContent = "Not saved: " + e.message;
  }
});

$("ready").addEventListener("click", () => setState("ready", undefined, $("campaign").value));
$("pause").addEventListener("click", () => setState("paused", $("pause-reason").value));

// The campaigns the agent may go ready for (running or paused, not preview): one at a time.
// The choice defaults to the agent's own campaign, or to the only one active.
async function loadCampaigns() {
  const { campaigns, current } = await api("GET", "/api/v1/agent/campaigns");
  const sel = $("campaign");
  const keep = sel.value || current || "";
  sel.replaceChildren(
    new Option(campaigns.length ? "Choose a campaign…" : "No campaign is active", ""),
    ...campaigns.map((c) => new Option(`${c.name} (${c.code})`, c.code)),
  );
  if (campaigns.some((c) => c.code === keep)) sel.value = keep;
  else if (campaigns.length === 1) sel.value = campaigns[0].code;
}

// One request: the server moves the agent in Asterisk's queues (QueueAdd / QueueRemove /
// QueuePause), then records the state; when it cannot (no campaign chosen among several, the
// PBX link down, a refusal) nothing changes and the page says why.
async function setState(state, reason, campaign) {
  const body = { state };
  if (reason) body.reason = reason;
  if (campaign) body.campaign = campaign;
  try {
    const agent = await api("POST", `/api/v1/agents/${me.agent}/state`, body);
    showState(state);
    $("state-msg").textContent = agent.campaign && state === "ready" ? `Taking calls for ${agent.campaign}` : "";
  } catch (e) { $("state-msg").textContent = e.message; }
  await loadCampaigns().catch(() => {});
}

// Preview mode: ask for a lead, see it, call or skip.
let previewId = null;
let previewTimer = null;

async function pollPreview() {
  const r = await api("GET", "/api/v1/agent/preview");
  $("preview-state").textContent = r.state ? r.state + (r.note ? `: ${r.note}` : "") : "";
  const offered = r.state === "offered" && r.pop;
  $("preview-call").classList.toggle("hidden", !offered);
  $("preview-skip").classList.toggle("hidden", !offered);
  if (offered && previewId !== r.id) { previewId = r.id; showPop(r.pop); showState("preview"); }
  if (["wanted", "accepted"].includes(r.state) || offered) return;
  clearInterval(previewTimer); previewTimer = null;
}

function watchPreview() {
  if (!previewTimer) previewTimer = setInterval(() => pollPreview().catch((e) => ($("preview-state").textContent = e.message)), 700);
}

$("preview-next").addEventListener("click", async () => {
  try {
    await api("POST", "/api/v1/agent/preview", { campaign: $("preview-campaign").value.trim() });
    $("preview-state").textContent = "asked";
    watchPreview();
  } catch (e) { $("preview-state").textContent = e.message; }
});

for (const [id, action] of [["preview-call", "call"], ["preview-skip", "skip"]]) {
  $(id).addEventListener("click", async () => {
    try {
      await api("POST", `/api/v1/agent/preview/${previewId}/${action}`);
      $("preview-call").classList.add("hidden"); $("preview-skip").classList.add("hidden");
      $("preview-state").textContent = action === "call" ? "calling…" : "skipped";
      if (action === "skip") { $("pop").classList.add("hidden"); $("waiting").classList.remove("hidden"); }
    } catch (e) { $("preview-state").textContent = e.message; }
  });
}

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/agent/ws");
  ws.onopen = () => ($("link").textContent = "connected");
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "screen_pop") showPop(m);
    else if (m.type === "state") showState(m.state);
  };
  ws.onclose = () => { $("link").textContent = "reconnecting…"; setTimeout(connect, 2000); };
}

(async () => {
  const r = await fetch("/api/v1/me", { credentials: "same-origin" });
  if (r.status === 401) { location.href = "/login?next=/agent"; return; }
  me = await r.json();
  $("who").textContent = `${me.username} · agent ${me.agent || "–"}`;
  showState("logged_out");
  connect();
  loadCampaigns().catch((e) => ($("state-msg").textContent = e.message));
})();
