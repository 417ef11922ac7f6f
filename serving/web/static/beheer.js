// /beheer: documents, reviews, quarantine, feedback, the NEN 7513 access report and the egress proof.
// Sections are shown by role; the server checks every action again. Credentials live in memory only;
// nothing is stored in the browser (a shared PC keeps nothing of this page).
const $ = (id) => document.getElementById(id);
const T = {
  nl: {
    title: "Vraagbaak beheer", skip: "Naar de inhoud", signout: "Afmelden", signin_title: "Aanmelden",
    key_label: "Uw API-sleutel", key_submit: "Aanmelden", oidc_login: "Aanmelden bij uw organisatie",
    need_signin: "Meld u aan om verder te gaan.", bad_key: "Aanmelden mislukt: controleer uw sleutel.",
    signed_in: "Aangemeld als", sections: "Onderdelen", menu: "Menu",
    no_sections: "U hebt geen beheerrol. Vraag uw applicatiebeheerder om toegang.",
    documents: "Documenten", due: "Te beoordelen", quarantine: "Quarantaine", feedback: "Feedback",
    report: "Toegangsrapport (NEN 7513)", egress: "Geen egress", search: "Zoeken", source_set: "Bronset",
    group: "Groep", classification: "Classificatie", doc_status: "Status", review_before: "Herzien vóór",
    upload: "Document toevoegen", file: "Bestand", groups: "Groepen (komma's)", upload_send: "Uploaden",
    title_col: "Titel", groups_col: "Groepen", version_col: "Familie / versie", answers_now: "Antwoordt nu",
    review_col: "Herzien", actions: "Acties", replace: "Vervangen", erase: "Wissen", yes: "ja", no: "nee",
    within: "Binnen", due_date: "Datum", what: "Wat", owner: "Eigenaar", review: "herziening", expires: "vervalt",
    overdue: "te laat", quarantine_hint: "Documenten met patiëntgegevens worden niet geïndexeerd. Hier staan alleen aantallen per soort, nooit de gevonden waarden.",
    source: "Bron", found: "Gevonden", since: "Sinds", release: "Vrijgeven", released: "vrijgegeven",
    document: "Document", not_useful: "Niet nuttig", useful: "Nuttig", comments: "Opmerkingen",
    export_csv: "Exporteren (CSV)", export_json: "Exporteren (JSON)", user: "Gebruiker", from: "Van", to: "Tot en met",
    address: "Adres of netwerk", show: "Tonen", when: "Wanneer", where: "Vanaf", event: "Gebeurtenis", chunks: "Fragmenten",
    outcome: "Uitkomst", allowlist: "Toegestane bestemmingen", reason: "Reden (verplicht)", cancel: "Annuleren",
    confirm: "Bevestigen", lang_switch: "English", lang_name: "English", feedback_docs: "Feedback per document",
    erase_title: "Document wissen", erase_text: (t) => `"${t}" wordt uit de index en de opslag verwijderd. Dit kan niet ongedaan worden gemaakt.`,
    erased: (r) => `Gewist: ${r.deleted_chunks} fragmenten verwijderd; ${r.verified ? "geverifieerd: er is niets achtergebleven" : "NIET geverifieerd"}.`,
    release_title: "Vrijgeven uit quarantaine", release_text: (s) => `"${s}" wordt bij de volgende inname geïndexeerd. De reden komt in het toegangslogboek.`,
    released_ok: (e) => `Vrijgegeven door ${e.released_by}: ${e.release_reason}`,
    uploaded: (r) => `${r.title}: ${r.status}, ${r.chunks} fragmenten.`, failed: "Mislukt", loading: "Bezig…",
    chain_ok: (c) => `Keten geverifieerd: alle ${c.records} records intact; de gekozen periode (${c.period_records} records) klopt.`,
    chain_bad: (c) => `Keten NIET intact (${c.errors.length} breuken)${c.period_ok ? "; de gekozen periode zelf klopt" : "; ook in de gekozen periode"}.`,
    matched: (n, shown) => `${n} records gevonden; getoond aan: ${shown.join(", ") || "niemand"}.`,
    guard_on: "De egress-bewaking is actief in deze server: verbindingen buiten de lijst worden geweigerd en gelogd.",
    guard_off: "Let op: de egress-bewaking is niet actief in dit proces.", votes: (u, d) => `${u} nuttig, ${d} niet nuttig.`,
    totals: (t) => `Totaal gevonden: ${Object.entries(t).map(([k, v]) => `${k}: ${v}`).join(", ") || "niets"}.`,
  },
  en: {
    title: "Vraagbaak administration", skip: "Skip to content", signout: "Sign out", signin_title: "Sign in",
    key_label: "Your API key", key_submit: "Sign in", oidc_login: "Sign in with your organisation",
    need_signin: "Sign in to continue.", bad_key: "Sign-in failed: check your key.",
    signed_in: "Signed in as", sections: "Sections", menu: "Menu",
    no_sections: "You have no administration role. Ask your application manager for access.",
    documents: "Documents", due: "Due for review", quarantine: "Quarantine", feedback: "Feedback",
    report: "Access report (NEN 7513)", egress: "No egress", search: "Search", source_set: "Source set",
    group: "Group", classification: "Classification", doc_status: "Status", review_before: "Review before",
    upload: "Add a document", file: "File", groups: "Groups (commas)", upload_send: "Upload",
    title_col: "Title", groups_col: "Groups", version_col: "Family / version", answers_now: "Answers now",
    review_col: "Review", actions: "Actions", replace: "Replace", erase: "Erase", yes: "yes", no: "no",
    within: "Within", due_date: "Date", what: "What", owner: "Owner", review: "review", expires: "expires",
    overdue: "overdue", quarantine_hint: "Documents with patient data are not indexed. Only counts per kind are shown here, never the values found.",
    source: "Source", found: "Found", since: "Since", release: "Release", released: "released",
    document: "Document", not_useful: "Not useful", useful: "Useful", comments: "Comments",
    export_csv: "Export (CSV)", export_json: "Export (JSON)", user: "User", from: "From", to: "To",
    address: "Address or network", show: "Show", when: "When", where: "From", event: "Event", chunks: "Chunks",
    outcome: "Outcome", allowlist: "Allowed destinations", reason: "Reason (required)", cancel: "Cancel",
    confirm: "Confirm", lang_switch: "Nederlands", lang_name: "Nederlands", feedback_docs: "Feedback per document",
    erase_title: "Erase document", erase_text: (t) => `"${t}" is removed from the index and the store. This cannot be undone.`,
    erased: (r) => `Erased: ${r.deleted_chunks} chunks removed; ${r.verified ? "verified: nothing is left" : "NOT verified"}.`,
    release_title: "Release from quarantine", release_text: (s) => `"${s}" is indexed on the next ingest. The reason goes into the access log.`,
    released_ok: (e) => `Released by ${e.released_by}: ${e.release_reason}`,
    uploaded: (r) => `${r.title}: ${r.status}, ${r.chunks} chunks.`, failed: "Failed", loading: "Working…",
    chain_ok: (c) => `Chain verified: all ${c.records} records intact; the selected period (${c.period_records} records) checks out.`,
    chain_bad: (c) => `Chain NOT intact (${c.errors.length} breaks)${c.period_ok ? "; the selected period itself checks out" : "; in the selected period too"}.`,
    matched: (n, shown) => `${n} records found; shown to: ${shown.join(", ") || "nobody"}.`,
    guard_on: "The egress guard is active in this server: connections outside the list are refused and logged.",
    guard_off: "Note: the egress guard is not active in this process.", votes: (u, d) => `${u} useful, ${d} not useful.`,
    totals: (t) => `Found in total: ${Object.entries(t).map(([k, v]) => `${k}: ${v}`).join(", ") || "nothing"}.`,
  },
};
const SECTIONS = [
  ["documents", "ingest"], ["due", "ingest"], ["quarantine", "admin"], ["feedback", "ingest"],
  ["report", "auditor"], ["egress", "auditor"],
];
const state = { lang: "nl", bearer: null, me: null, config: null, docs: [], current: null };
const t = (k, ...a) => { const v = T[state.lang][k]; return typeof v === "function" ? v(...a) : v; };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (state.bearer) headers.set("Authorization", `Bearer ${state.bearer}`);
  return fetch(path, { ...opts, headers, credentials: "same-origin", cache: "no-store" });
}

async function json(path, opts) {
  const r = await api(path, opts);
  const body = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(body?.error?.message || `${r.status}`);
  return body;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-aria]")) e.setAttribute("aria-label", t(e.dataset.i18nAria));
  const b = $("lang");
  b.textContent = t("lang_switch");
  b.setAttribute("lang", state.lang === "nl" ? "en" : "nl");
  b.setAttribute("aria-label", t("lang_name"));
  renderTabs();
  if (state.current) show(state.current);
}

// ------------------------------------------------------------------ sign-in

function redirectUri() { return `${location.origin}/beheer`; }
function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function randomString(n = 32) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }

async function oidcLogin() {
  const o = state.config.oidc;
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const st = randomString(16);
  sessionStorage.setItem("vraagbaak.beheer.oidc", JSON.stringify({ verifier, state: st }));
  const q = new URLSearchParams({ response_type: "code", client_id: o.client_id, redirect_uri: redirectUri(),
    scope: o.scopes, state: st, code_challenge: challenge, code_challenge_method: "S256" });
  location.assign(`${o.authorization_endpoint}?${q}`);
}

async function oidcCallback() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return;
  history.replaceState(null, "", location.pathname);
  const pending = JSON.parse(sessionStorage.getItem("vraagbaak.beheer.oidc") || "null");
  sessionStorage.removeItem("vraagbaak.beheer.oidc");
  if (params.has("error") || !pending || pending.state !== params.get("state")) throw new Error("sign-in refused");
  const o = state.config.oidc;
  const body = new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"),
    redirect_uri: redirectUri(), client_id: o.client_id, code_verifier: pending.verifier });
  const r = await fetch(o.token_endpoint, { method: "POST", body, credentials: "omit", referrerPolicy: "no-referrer",
    headers: { "Content-Type": "application/x-www-form-urlencoded" } });
  if (!r.ok) throw new Error(`token endpoint ${r.status}`);
  const tokens = await r.json();
  state.bearer = tokens[o.bearer === "id_token" ? "id_token" : "access_token"];
}

async function checkSignedIn(failed = false) {
  const r = await api("/api/beheer/me");
  if (!r.ok) {
    state.me = null;
    $("signin").hidden = false;
    $("signin-msg").textContent = failed || (r.status === 401 && state.bearer) ? t("bad_key") : t("need_signin");
    $("key-form").hidden = state.config.auth !== "api-key";
    $("oidc-login").hidden = state.config.auth !== "oidc";
    $("tabs").hidden = true;
    for (const s of document.querySelectorAll(".sec")) s.hidden = true;
    $("who").textContent = "";
    $("signout").hidden = true;
    return;
  }
  state.me = await r.json();
  $("signin").hidden = true;
  $("who").textContent = `${t("signed_in")} ${state.me.user_id}`;
  $("signout").hidden = state.config.auth === "insecure-dev";
  renderTabs();
  const first = allowed()[0];
  $("none").hidden = Boolean(first);
  if (first) show(first);
}

function hasRole(role) { return state.me && (state.me.roles.includes(role) || state.me.roles.includes("admin")); }
function allowed() { return SECTIONS.filter(([, role]) => hasRole(role)).map(([name]) => name); }

function renderTabs() {
  const nav = $("tabs");
  nav.replaceChildren();
  if (!state.me) return;
  for (const name of allowed()) {
    nav.append(el("button", { type: "button", id: `tab-${name}`, "aria-pressed": String(state.current === name),
      onclick: () => show(name) }, t(name)));
  }
  nav.hidden = allowed().length === 0;
}

function signOut() {
  state.bearer = null; state.me = null; state.current = null; state.docs = [];
  for (const tb of document.querySelectorAll(".grid tbody")) tb.replaceChildren();
  for (const p of document.querySelectorAll(".result, .chain")) p.textContent = "";
  checkSignedIn();
}

async function show(name) {
  state.current = name;
  for (const [n] of SECTIONS) $(`sec-${n}`).hidden = n !== name;
  renderTabs();
  $("status").textContent = t("loading");
  try {
    await LOADERS[name]();
    $("status").textContent = "";
  } catch (err) {
    $("status").textContent = `${t("failed")}: ${err.message}`;
  }
}

// ------------------------------------------------------------------ documents

function docMatches(d) {
  const v = (id) => $(id).value.trim().toLowerCase();
  const text = v("f-text");
  if (text && !`${d.title} ${d.source}`.toLowerCase().includes(text)) return false;
  if (v("f-set") && !d.source_set.toLowerCase().includes(v("f-set"))) return false;
  if (v("f-group") && !d.groups.some((g) => g.toLowerCase().includes(v("f-group")))) return false;
  if (v("f-class") && d.classification.toLowerCase() !== v("f-class")) return false;
  if (v("f-status") && !`${d.control.status || ""} ${d.control.lifecycle || ""}`.toLowerCase().includes(v("f-status"))) return false;
  if ($("f-review").value && !(d.control.review_date && d.control.review_date <= $("f-review").value)) return false;
  return true;
}

function renderDocs() {
  const tb = $("doc-table").tBodies[0];
  tb.replaceChildren();
  for (const d of state.docs.filter(docMatches)) {
    const c = d.control || {};
    const fam = [c.family, c.version && `v${c.version}`, c.status].filter(Boolean).join(" · ");
    const replace = el("button", { type: "button", class: "replace", onclick: () => startReplace(d) }, t("replace"));
    const erase = el("button", { type: "button", class: "erase", onclick: () => eraseDoc(d) }, t("erase"));
    replace.setAttribute("aria-label", `${t("replace")}: ${d.title}`);
    erase.setAttribute("aria-label", `${t("erase")}: ${d.title}`);
    tb.append(el("tr", { "data-doc": d.doc_id },
      el("td", {}, d.title, el("br"), el("small", {}, d.source)), el("td", {}, d.source_set),
      el("td", {}, d.groups.join(", ")), el("td", {}, d.classification), el("td", {}, fam || "—"),
      el("td", {}, c.lifecycle === "current" || !c.lifecycle ? t("yes") : `${t("no")} (${c.lifecycle})`),
      el("td", {}, c.review_date || "—"),
      el("td", {}, d.source_set === "uploads" ? el("span", { class: "actions" }, replace, erase) : erase)));
  }
}

async function loadDocuments() {
  state.docs = (await json("/api/documents")).data;
  renderDocs();
}

function startReplace(d) {
  $("up-replace").value = d.doc_id;
  $("up-groups").value = d.groups.join(",");
  $("up-class").value = d.classification;
  $("doc-result").textContent = `${t("replace")}: ${d.title}`;
  $("up-file").focus();
}

async function upload(ev) {
  ev.preventDefault();
  const form = new FormData();
  form.append("file", $("up-file").files[0]);
  form.append("groups", $("up-groups").value);
  form.append("classification", $("up-class").value);
  if ($("up-replace").value) form.append("replace", $("up-replace").value);
  $("doc-result").textContent = t("loading");
  try {
    const r = await json("/api/documents", { method: "POST", body: form });
    $("up-replace").value = "";
    $("upload").reset();
    await loadDocuments();
    $("doc-result").textContent = t("uploaded", r);
  } catch (err) { $("doc-result").textContent = `${t("failed")}: ${err.message}`; }
}

function confirmDialog(title, text, needReason) {
  return new Promise((resolve) => {
    const d = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-reason").hidden = !needReason;
    $("confirm-reason-label").hidden = !needReason;
    $("confirm-reason").value = "";
    d.addEventListener("close", () => resolve(d.returnValue === "ok" ? $("confirm-reason").value.trim() || true : null), { once: true });
    d.showModal();
  });
}

async function eraseDoc(d) {
  if (!(await confirmDialog(t("erase_title"), t("erase_text", d.title), false))) return;
  try {
    const r = await json(`/api/documents/${encodeURIComponent(d.doc_id)}`, { method: "DELETE" });
    await loadDocuments();
    $("doc-result").textContent = t("erased", r);
  } catch (err) { $("doc-result").textContent = `${t("failed")}: ${err.message}`; }
}

// ------------------------------------------------------------------ due, quarantine, feedback

async function loadDue() {
  const r = await json(`/api/admin/due?within=${encodeURIComponent($("due-within").value)}`);
  const tb = $("due-table").tBodies[0];
  tb.replaceChildren();
  for (const i of r.data) {
    tb.append(el("tr", {}, el("td", { class: i.days < 0 ? "overdue" : "" }, i.due, i.days < 0 ? ` (${t("overdue")})` : ""),
      el("td", {}, t(i.what === "review" ? "review" : "expires")), el("td", {}, i.title), el("td", {}, i.version || "—"),
      el("td", {}, i.owner || "—")));
  }
}

async function loadQuarantine() {
  const r = await json("/api/quarantine?all=true");
  $("q-totals").textContent = t("totals", r.totals);
  const tb = $("q-table").tBodies[0];
  tb.replaceChildren();
  for (const e of r.data) {
    const found = Object.entries(e.counts).map(([k, v]) => `${k}: ${v}`).join(", ");
    const action = e.released ? `${t("released")} (${e.released_by}: ${e.release_reason})`
      : el("button", { type: "button", class: "release", "aria-label": `${t("release")}: ${e.source}`,
        onclick: () => release(e) }, t("release"));
    tb.append(el("tr", { "data-q": e.id }, el("td", {}, e.source), el("td", {}, found), el("td", {}, e.quarantined_at),
      el("td", {}, action)));
  }
}

async function release(e) {
  const reason = await confirmDialog(t("release_title"), t("release_text", e.source), true);
  if (typeof reason !== "string") { $("q-result").textContent = reason === true ? t("reason") : ""; return; }
  try {
    const r = await json(`/api/quarantine/${encodeURIComponent(e.id)}/release`, { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify({ reason }) });
    await loadQuarantine();
    $("q-result").textContent = t("released_ok", r);
  } catch (err) { $("q-result").textContent = `${t("failed")}: ${err.message}`; }
}

async function loadFeedback() {
  const r = await json("/api/feedback/summary");
  $("fb-totals").textContent = t("votes", r.up, r.down);
  const tb = $("fb-table").tBodies[0];
  tb.replaceChildren();
  for (const d of r.documents) {
    tb.append(el("tr", {}, el("td", {}, d.doc_id), el("td", {}, d.down), el("td", {}, d.up), el("td", {}, d.comments.join(" | "))));
  }
}

async function download(path, name) {
  const r = await api(path);
  if (!r.ok) { $("status").textContent = `${t("failed")}: ${r.status}`; return; }
  const blob = await r.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  const m = r.headers.get("Vraagbaak-Report-Manifest");
  if (m) {
    const ma = el("a", { href: URL.createObjectURL(new Blob([m], { type: "application/json" })), download: `${name}.manifest.json` });
    document.body.append(ma);
    ma.click();
    ma.remove();
  }
}

// ------------------------------------------------------------------ access report, egress

function reportQuery(format) {
  const q = new URLSearchParams({ format });
  const put = (k, id) => { const v = $(id).value.trim(); if (v) q.set(k, v); };
  put("user", "r-user"); put("document", "r-doc"); put("address", "r-addr");
  if ($("r-from").value) q.set("from", `${$("r-from").value}T00:00:00Z`);
  if ($("r-to").value) q.set("to", `${$("r-to").value}T23:59:59Z`);
  return `/api/audit/report?${q}`;
}

async function loadReport() {
  $("r-table").tBodies[0].replaceChildren();
  $("r-chain").textContent = t("loading");
  const r = await json(reportQuery("json"));
  const c = r.chain;
  const p = $("r-chain");
  p.className = `chain ${c.ok ? "ok" : "bad"}`;
  p.textContent = `${t(c.ok ? "chain_ok" : "chain_bad", c)} ${t("matched", r.matched, r.shown_to)}`;
  const tb = $("r-table").tBodies[0];
  tb.replaceChildren();
  for (const row of r.rows) {
    tb.append(el("tr", {}, el("td", {}, row.timestamp), el("td", {}, row.user_id || "—"),
      el("td", {}, row.network_access_point || "—"), el("td", {}, row.event_type), el("td", {}, row.documents.join(", ")),
      el("td", {}, row.chunks.length), el("td", {}, row.outcome)));
  }
}

async function loadEgress() {
  const r = await json("/api/admin/egress");
  $("eg-guard").textContent = t(r.guard_active ? "guard_on" : "guard_off");
  $("eg-allow").textContent = r.allowlist;
  $("eg-endpoints").replaceChildren(...r.endpoints.map((e) => el("li", {}, `${e.name}: ${e.address}`)));
}

const LOADERS = { documents: loadDocuments, due: loadDue, quarantine: loadQuarantine, feedback: loadFeedback,
  report: async () => {}, egress: loadEgress };

async function start() {
  state.config = await (await fetch("/api/config", { cache: "no-store" })).json();
  state.lang = state.config.language === "en" ? "en" : "nl";
  $("lang").addEventListener("click", () => { state.lang = state.lang === "nl" ? "en" : "nl"; applyLanguage(); });
  $("signout").addEventListener("click", signOut);
  $("oidc-login").addEventListener("click", oidcLogin);
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.bearer = $("api-key").value.trim();
    $("api-key").value = "";
    checkSignedIn();
  });
  $("doc-filter").addEventListener("input", renderDocs);
  $("doc-filter").addEventListener("submit", (ev) => ev.preventDefault());
  $("upload").addEventListener("submit", upload);
  $("due-within").addEventListener("change", loadDue);
  $("report-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadReport().catch((err) => { $("r-chain").textContent = `${t("failed")}: ${err.message}`; }); });
  $("r-csv").addEventListener("click", () => download(reportQuery("csv"), "toegangsrapport.csv"));
  $("r-json").addEventListener("click", () => download(reportQuery("json"), "toegangsrapport.json"));
  $("fb-export").addEventListener("click", (ev) => { ev.preventDefault(); download("/api/feedback/export?format=csv", "feedback.csv"); });
  applyLanguage();
  try { await oidcCallback(); } catch (err) { $("signin-msg").textContent = err.message; }
  await checkSignedIn();
}

start();
