// The UI's only writes: pause/resume, act, generate, settings — all through the JSON API.
// The token travels in the HttpOnly cookie, so no script ever sees it.
"use strict";

async function api(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.message ? data.message + (data.hint ? " — " + data.hint : "") : res.statusText);
  return data;
}

function onPause() {
  const btn = document.getElementById("pause-btn");
  if (!btn) return;
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    try {
      await api("POST", btn.dataset.paused === "true" ? "/api/resume" : "/api/pause");
      location.reload();
    } catch (e) { alert(e.message); btn.disabled = false; }
  });
}

function onAct() {
  document.querySelectorAll(".act-btn").forEach((btn) => {
    btn.addEventListener("click", async () => {
      const out = btn.parentElement.querySelector(".act-out");
      btn.disabled = true; btn.textContent = "Handing over…";
      try {
        let a = await api("POST", `/api/observations/${btn.dataset.obs}/act`);
        while (a.state === "running") {
          await new Promise((r) => setTimeout(r, 1000));
          a = await api("GET", `/api/actions/${a.id}`);
        }
        btn.textContent = a.state === "done" ? "Done" : `Agent exited ${a.exit_code ?? "?"}`;
        out.textContent = a.output_tail || "(no output)"; out.hidden = false;
      } catch (e) { btn.textContent = "Act"; btn.disabled = false; alert(e.message); }
    });
  });
}

function onGenerate() {
  const form = document.getElementById("gen-form");
  if (!form) return;
  const status = document.getElementById("gen-status");
  const bar = document.getElementById("gen-progress");
  const preview = document.getElementById("gen-preview");
  const btn = form.querySelector("button[type=submit]");
  // A hosted backend sends the prompt to the provider: the first click shows what will be
  // sent (and the published price) beside the button; a second click on the same request
  // sends it. Changing anything asks again.
  let shown = null;
  form.addEventListener("input", () => {
    if (shown !== null) { shown = null; preview.hidden = true; btn.textContent = "Generate"; }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const [k, v] of new FormData(form).entries()) {
      if (v === "") continue;
      body[k] = ["frames", "width", "height", "steps", "seed"].includes(k) ? Number(v) : v;
    }
    const hosted = ["replicate", "fal", "veo", "runway"].includes(body.backend);
    if (hosted) { body.model = body.hosted_model; }
    delete body.hosted_model;
    if (hosted && shown !== JSON.stringify(body)) {
      try {
        const p = await api("POST", "/api/generate/preview", body);
        preview.textContent = p.lines.join("\n"); preview.hidden = false;
        btn.textContent = `Send to ${body.backend}`; shown = JSON.stringify(body);
        status.textContent = "Nothing sent yet.";
      } catch (e) { status.textContent = e.message; }
      return;
    }
    if (hosted) body.yes = true;
    btn.disabled = true; bar.hidden = false; bar.value = 0;
    try {
      let job = await api("POST", "/api/generate", body);
      while (job.state === "queued" || job.state === "running") {
        const p = job.progress || {};
        if (p.steps) { bar.max = p.steps; bar.value = p.step || 0; }
        if (p.phase === "hosted" && p.progress != null) { bar.max = 1; bar.value = p.progress; }
        status.textContent = job.state === "queued" ? "Queued…" :
          p.phase === "hosted" ? `${p.provider} ${p.state}${p.request_id ? ` (${p.request_id})` : ""}` :
          (p.phase ? `${p.phase}${p.steps ? ` — step ${p.step || 0}/${p.steps}` : ""}` : "Running…");
        await new Promise((r) => setTimeout(r, 700));
        job = await api("GET", `/api/jobs/${job.id}`);
      }
      if (job.state === "done") { status.textContent = "Done."; location.reload(); }
      else { status.textContent = `Failed: ${job.error ? job.error.message : "unknown error"}`; btn.disabled = false; }
    } catch (e) { status.textContent = e.message; btn.disabled = false; bar.hidden = true; }
  });
}

function onSettings() {
  const form = document.getElementById("settings-form");
  if (!form) return;
  const status = document.getElementById("settings-status");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const lines = (k) => f.get(k).split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      await api("POST", "/api/settings", {
        exclude_apps: lines("exclude_apps"), exclude_titles: lines("exclude_titles"),
        excluded_action: f.get("excluded_action"), max_bytes: f.get("max_bytes"), max_age: f.get("max_age"),
      });
      status.textContent = "Saved.";
    } catch (e) { status.textContent = e.message; }
  });
}

function onReasoner() {
  const form = document.getElementById("reasoner-form");
  if (!form) return;
  const status = document.getElementById("reasoner-status");
  const result = document.getElementById("reasoner-result");
  const body = () => {
    const f = new FormData(form);
    const b = { reasoner: f.get("reasoner"), base_url: f.get("base_url"), model: f.get("model") };
    if (f.get("key")) b.key = f.get("key");
    return b;
  };
  const show = (r) => {
    // The server answers the key masked only; the typed one leaves the page.
    form.elements.key.value = "";
    form.elements.key.placeholder = r.key ? `stored: ${r.key}` : (r.key_env ? `from ${r.key_env}` : "none stored");
    document.getElementById("reasoner-key").textContent = r.key ? `Stored key for ${r.key_name}: ${r.key}` : "";
    document.getElementById("reasoner-sends").textContent = r.sends;
    form.elements.model.placeholder = r.model_used || "";
  };
  // Before Save: say where the typed settings would send screen text (the saved ones are
  // what the sentence above describes).
  const pending = document.getElementById("reasoner-pending");
  const defaults = JSON.parse(form.dataset.defaults);
  let saved = JSON.stringify(body());
  form.addEventListener("input", () => {
    const b = body();
    if (JSON.stringify(b) === saved) { pending.hidden = true; return; }
    let host = "";
    try { host = new URL(b.base_url || defaults[b.reasoner] || "").host; } catch (e) { host = ""; }
    const local = /^(127\.|localhost|\[::1\])/.test(host);
    pending.textContent = b.reasoner === "offline" ? "Not saved yet: on Save, nothing will leave this machine."
      : b.reasoner === "auto" ? "Not saved yet: on Save, auto picks the endpoint from your keys and environment."
      : `Not saved yet: on Save, screen text will be sent to ${host || "(no valid URL)"}${local ? " (this machine)" : " — off this machine"}.`;
    pending.hidden = false;
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    pending.hidden = true;
    try {
      saved = JSON.stringify({ ...body(), key: undefined });
      show(await api("POST", "/api/reasoner", { ...body(), window: new FormData(form).get("window") }));
      status.textContent = "Saved.";
    } catch (e) { status.textContent = e.message; }
  });
  document.getElementById("reasoner-test").addEventListener("click", async (ev) => {
    ev.target.disabled = true; status.textContent = "Testing…"; result.hidden = true;
    try {
      const t = await api("POST", "/api/reasoner/test", body());
      result.textContent = t.ok ? `${t.reasoner} ${t.model || ""} at ${t.endpoint || "this machine"} answered in ${t.seconds}s:\n${t.answer}`
        : `${t.reasoner} failed: ${t.error}${t.hint ? "\n→ " + t.hint : ""}`;
      result.className = `wide test-${t.ok ? "ok" : "failed"}`;
      status.textContent = t.ok ? "The endpoint answers." : "The endpoint failed.";
    } catch (e) { status.textContent = e.message; }
    result.hidden = false; ev.target.disabled = false;
  });
  api("GET", "/api/reasoner/local").then((servers) => {
    const box = document.getElementById("reasoner-local-buttons");
    for (const s of servers) {
      const btn = document.createElement("button");
      btn.type = "button"; btn.className = "btn local-use";
      btn.textContent = s.configured ? `${s.label} — in use` : s.label;
      btn.disabled = s.configured || !s.model;
      btn.title = `${s.base_url} — models: ${s.models.join(", ") || "none"}`;
      btn.addEventListener("click", async () => {
        try {
          const r = await api("POST", `/api/reasoner/local/${encodeURIComponent(s.slug)}`);
          form.elements.reasoner.value = r.reasoner; form.elements.base_url.value = r.base_url || "";
          form.elements.model.value = r.model || ""; show(r); pending.hidden = true; saved = JSON.stringify(body());
          btn.textContent = `${s.label} — in use`; btn.disabled = true;
          status.textContent = "Saved.";
        } catch (e) { status.textContent = e.message; }
      });
      box.append(btn);
    }
    document.getElementById("reasoner-local").hidden = servers.length === 0;
  }).catch(() => {});
}

function onAsk() {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const box = document.getElementById("ask-answer");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = form.querySelector("button");
    btn.disabled = true; box.hidden = false;
    box.querySelector(".answer").textContent = "Thinking…";
    const moments = box.querySelector(".answer-moments");
    const times = box.querySelector(".answer-times");
    moments.replaceChildren(); times.textContent = "";
    try {
      const a = await api("POST", "/api/ask", { question: new FormData(form).get("question") });
      box.querySelector(".answer").textContent = a.answer;
      // How the question was placed in time ("at 14:00" → 13:55–14:05), when it named one.
      const hm = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      times.textContent = (a.times || []).map((t) => `Looked at ${t.label}: ${hm(t.start_ts)}–${hm(t.end_ts)}`).join(" · ");
      for (const ts of a.timestamps || []) {
        const link = document.createElement("a");
        link.href = `/moment?at=${ts}`;
        link.className = "pill";
        link.textContent = new Date(ts * 1000).toLocaleTimeString();
        moments.append(link);
      }
    } catch (e) { box.querySelector(".answer").textContent = e.message; }
    btn.disabled = false;
  });
}

function onMoment() {
  // Seek the chunk to the moment once the browser knows its duration.
  const v = document.getElementById("moment-video");
  if (!v) return;
  const seek = () => { v.currentTime = Math.min(Number(v.dataset.offset) || 0, (v.duration || 1e9) - 0.05); };
  if (v.readyState >= 1) seek(); else v.addEventListener("loadedmetadata", seek, { once: true });
}

function onFallbackImages() {
  // A cropped frame fails when the moment has no window rectangle: show the whole canvas.
  document.querySelectorAll("img[data-fallback]").forEach((img) => {
    const swap = () => { if (img.dataset.fallback) { img.src = img.dataset.fallback; delete img.dataset.fallback; } };
    if (img.complete && img.naturalWidth === 0) swap(); else img.addEventListener("error", swap, { once: true });
  });
}

document.addEventListener("DOMContentLoaded", () => { onFallbackImages(); onPause(); onAct(); onGenerate(); onSettings(); onReasoner(); onAsk(); onMoment(); });
