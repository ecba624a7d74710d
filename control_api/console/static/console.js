// The callswitch console: signs in with an Account SID and auth token and reads
// the account through the REST API (Twilio's 2010-04-01 shape) plus the console's
// LiveCalls resource. No framework, no build step.

const API = "/2010-04-01/Accounts";
const LIVE_EVERY_MS = 1000;
const LISTS_EVERY_MS = 5000;

const $ = (selector) => document.querySelector(selector);
let account = null; // {sid, auth}
let timers = [];

// X-Requested-With: the server then leaves the Basic challenge off a 401, so the
// browser does not open its own credentials prompt over the page.
const headers = (auth) => ({ Authorization: auth, "X-Requested-With": "XMLHttpRequest" });

async function get(path) {
  const response = await fetch(path, { headers: headers(account.auth) });
  if (response.status === 401) {
    signOut("Your credentials stopped working: sign in again.");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    const error = new Error(`HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(c);
  return tr;
}

function statusCell(status) {
  const td = cell("");
  const span = document.createElement("span");
  span.className = `status ${status}`;
  span.textContent = status;
  td.append(span);
  return td;
}

function mosCell(mos) {
  const td = cell("", "num");
  if (mos === null || mos === undefined) {
    td.textContent = "–";
    return td;
  }
  const span = document.createElement("span");
  span.className = `mos ${mos >= 4.0 ? "good" : mos >= 3.6 ? "fair" : "poor"}`;
  span.textContent = mos.toFixed(2);
  td.append(span);
  return td;
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return `${m}:${s}`;
}

function when(rfc2822) {
  if (!rfc2822) return "";
  const date = new Date(rfc2822);
  return isNaN(date) ? rfc2822 : date.toLocaleString();
}

// -- live calls

async function refreshLive() {
  const data = await get(`/console/api/Accounts/${account.sid}/LiveCalls.json`);
  const body = $("#live-table tbody");
  body.replaceChildren();
  for (const call of data.calls) {
    call.legs.forEach((leg, index) => {
      const first = index === 0;
      body.append(row([
        cell(first ? call.sid : "", "sid"),
        cell(first ? call.direction : ""),
        cell(first ? `${call.from} → ${call.to}` : ""),
        first ? statusCell(call.status) : cell(""),
        cell(first ? clock(call.duration) : "", "num"),
        cell(`${leg.role} (${leg.kind})`),
        cell(leg.codec ?? "–"),
        cell(leg.packets_received ?? "–", "num"),
        cell(leg.loss_pct === undefined ? "–" : `${leg.loss_pct.toFixed(1)} %`, "num"),
        cell(leg.jitter_ms === undefined ? "–" : `${leg.jitter_ms.toFixed(1)} ms`, "num"),
        mosCell(leg.mos),
      ]));
    });
  }
  $("#live-table").hidden = data.calls.length === 0;
  $("#live-empty").hidden = data.calls.length !== 0;
  $("#live-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// -- lists

function query(form) {
  const params = new URLSearchParams({ PageSize: "20" });
  for (const [name, value] of new FormData(form)) if (value) params.set(name, value);
  return params.toString();
}

function sidButton(sid) {
  const td = cell("", "sid");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link";
  button.textContent = sid;
  button.addEventListener("click", () => {
    selectedCall = sid;
    refreshCallLog().catch((error) => console.warn("call log", error.message));
  });
  td.append(button);
  return td;
}

async function refreshCalls() {
  const data = await get(`${API}/${account.sid}/Calls.json?${query($("#calls-filter"))}`);
  $("#calls tbody").replaceChildren(...data.calls.map((c) => row([
    sidButton(c.sid), cell(c.direction), cell(c.from), cell(c.to), statusCell(c.status),
    cell(when(c.start_time)), cell(c.duration ? `${c.duration} s` : "", "num"),
    cell(c.price ? `${c.price} ${c.price_unit}` : "", "num"),
  ])));
  return data.calls;
}

// -- a call's log: its notifications (errors, warnings) and events (webhook requests)

let selectedCall = null;

function levelCell(log) {
  const td = cell("");
  const span = document.createElement("span");
  span.className = `level ${log === "0" ? "error" : "warning"}`;
  span.textContent = log === "0" ? "error" : "warning";
  td.append(span);
  return td;
}

function clip(text, length) {
  if (!text) return "";
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

async function refreshCallLog() {
  if (!selectedCall) return;
  const base = `${API}/${account.sid}/Calls/${selectedCall}`;
  const [notes, events] = await Promise.all([
    get(`${base}/Notifications.json?PageSize=100`),
    get(`${base}/Events.json?PageSize=100`),
  ]);
  $("#call-log").hidden = false;
  $("#call-log-sid").textContent = selectedCall;
  $("#call-log-empty").hidden = notes.notifications.length !== 0;
  $("#call-notifications").hidden = notes.notifications.length === 0;
  $("#call-notifications tbody").replaceChildren(...notes.notifications.map((n) => {
    const text = new URLSearchParams(n.message_text);
    const status = text.get("httpResponse");
    return row([
      cell(when(n.message_date)), levelCell(n.log), cell(n.error_code),
      cell(n.request_url ? `${n.request_method ?? ""} ${n.request_url}` : ""),
      cell(`${text.get("Msg") ?? n.message_text}${status ? ` (HTTP ${status})` : ""}`),
    ]);
  }));
  $("#call-events tbody").replaceChildren(...events.events.map((e) => row([
    cell(when(e.request.date_created)), cell(`${e.request.method} ${e.request.url}`),
    cell(e.response ? String(e.response.response_code) : (e.request.error ?? "no answer")),
    cell(e.response ? `${e.response.request_duration} ms` : "", "num"),
    cell(clip(e.response?.response_body, 300), "body"),
  ])));
}

async function refreshMessages() {
  const note = $("#messages-note");
  try {
    const data = await get(`${API}/${account.sid}/Messages.json?${query($("#messages-filter"))}`);
    note.hidden = true;
    $("#messages tbody").replaceChildren(...data.messages.map((m) => row([
      cell(m.sid, "sid"), cell(m.direction), cell(m.from), cell(m.to), statusCell(m.status),
      cell(m.num_segments, "num"), cell(m.body), cell(when(m.date_sent || m.date_created)),
    ])));
  } catch (error) {
    if (error.status !== 404) throw error;
    note.textContent = "This server has no Messages resource.";
    note.hidden = false;
  }
}

async function refreshNumbers() {
  const data = await get(`${API}/${account.sid}/IncomingPhoneNumbers.json?PageSize=100`);
  $("#numbers tbody").replaceChildren(...data.incoming_phone_numbers.map((n) => row([
    cell(n.phone_number), cell(n.friendly_name), cell(n.voice_url), cell(n.sms_url),
  ])));
}

// -- trunks and their registrations

function registrationCells(reg) {
  if (!reg) return [cell("not registering"), cell("–"), cell("–"), cell("–")];
  const answer = reg.last_status === null ? "–" : `${reg.last_status} ${reg.last_reason}`;
  const retry = reg.retry_in === null ? "" : ` (retry in ${clock(reg.retry_in)})`;
  return [
    statusCell(reg.state),
    cell(reg.expires_in === null ? "–" : clock(reg.expires_in), "num"),
    cell(answer + retry),
    cell(reg.contact ?? "–"),
  ];
}

async function refreshTrunks() {
  const data = await get(`/console/api/Accounts/${account.sid}/Trunks.json`);
  $("#trunks tbody").replaceChildren(...data.trunks.map((t) => row([
    cell(`${t.name} (${t.transport})`),
    cell(t.entry_points.join(", ") + (t.outbound_proxy ? ` via ${t.outbound_proxy}` : "")),
    ...registrationCells(t.registration),
  ])));
  $("#trunks-table").hidden = data.trunks.length === 0;
  $("#trunks-empty").hidden = data.trunks.length !== 0;
}

// -- usage by day

function lastDays(count) {
  const days = [];
  const today = new Date();
  for (let i = count - 1; i >= 0; i--) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    days.push(day.toISOString().slice(0, 10));
  }
  return days;
}

async function usageMinutes(days) {
  // The Usage resource where the server has it; else minutes summed from the calls.
  const minutes = Object.fromEntries(days.map((d) => [d, 0]));
  try {
    const data = await get(
      `${API}/${account.sid}/Usage/Records/Daily.json?Category=calls&StartDate=${days[0]}&PageSize=100`);
    for (const record of data.usage_records) {
      if (record.start_date in minutes) minutes[record.start_date] += Number(record.usage) || 0;
    }
    return { minutes, source: "Usage records" };
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  const data = await get(`${API}/${account.sid}/Calls.json?PageSize=1000`);
  for (const call of data.calls) {
    if (!call.start_time || !call.duration) continue;
    const day = new Date(call.start_time).toISOString().slice(0, 10);
    if (day in minutes) minutes[day] += Math.ceil(Number(call.duration) / 60);
  }
  return { minutes, source: "summed from the calls (no Usage resource here)" };
}

async function refreshUsage() {
  const days = lastDays(30);
  const { minutes, source } = await usageMinutes(days);
  const canvas = $("#usage-chart");
  const ctx = canvas.getContext("2d");
  const width = canvas.width;
  const height = canvas.height;
  ctx.clearRect(0, 0, width, height);
  const values = days.map((d) => minutes[d]);
  const top = Math.max(1, ...values);
  const slot = width / days.length;
  ctx.font = "11px system-ui, sans-serif";
  values.forEach((value, i) => {
    const bar = (height - 30) * (value / top);
    ctx.fillStyle = "#2453d4";
    ctx.fillRect(i * slot + 3, height - 18 - bar, slot - 6, bar);
    if (value) {
      ctx.fillStyle = "#1d2330";
      ctx.fillText(String(value), i * slot + 4, height - 22 - bar);
    }
    if (i % 5 === 0 || i === days.length - 1) {
      ctx.fillStyle = "#667085";
      ctx.fillText(days[i].slice(5), i * slot + 2, height - 4);
    }
  });
  const total = values.reduce((a, b) => a + b, 0);
  $("#usage-note").textContent = `${total} minutes in 30 days (${source}).`;
}

// -- signing in and out

function every(ms, refresh) {
  const run = () => refresh().catch((error) => console.warn(refresh.name, error.message));
  run();
  timers.push(setInterval(run, ms));
}

function start() {
  $("#sign-in").hidden = true;
  $("#console").hidden = false;
  $("#who").hidden = false;
  $("#account").textContent = account.sid;
  every(LIVE_EVERY_MS, refreshLive);
  every(LISTS_EVERY_MS, refreshCalls);
  every(LISTS_EVERY_MS, refreshCallLog);
  every(LISTS_EVERY_MS, refreshMessages);
  every(LISTS_EVERY_MS, refreshNumbers);
  every(LISTS_EVERY_MS, refreshTrunks);
  every(LISTS_EVERY_MS * 6, refreshUsage);
}

function signOut(message) {
  timers.forEach(clearInterval);
  timers = [];
  account = null;
  selectedCall = null;
  $("#call-log").hidden = true;
  sessionStorage.removeItem("callswitch.console");
  $("#console").hidden = true;
  $("#who").hidden = true;
  $("#sign-in").hidden = false;
  const error = $("#sign-in-error");
  error.textContent = message || "";
  error.hidden = !message;
}

async function signIn(sid, token) {
  const auth = `Basic ${btoa(`${sid}:${token}`)}`;
  const response = await fetch(`${API}/${encodeURIComponent(sid)}.json`, {
    headers: headers(auth),
  });
  if (!response.ok) {
    signOut(response.status === 401
      ? "Wrong Account SID or auth token."
      : `The server answered ${response.status}.`);
    return false;
  }
  account = { sid, auth };
  sessionStorage.setItem("callswitch.console", JSON.stringify(account));
  start();
  return true;
}

$("#sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  signIn(form.get("sid").trim(), form.get("token").trim());
});
$("#sign-out").addEventListener("click", () => signOut());
for (const id of ["#calls-filter", "#messages-filter"]) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    (id === "#calls-filter" ? refreshCalls : refreshMessages)().catch(() => {});
  });
}

const saved = sessionStorage.getItem("callswitch.console");
if (saved) {
  account = JSON.parse(saved);
  start();
}
