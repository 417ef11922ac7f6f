// Vraagbaak staff page. No framework, no CDN: this file, app.css and pdf.js are served by the API.
// Credentials (API key, OIDC tokens) live in memory only. Conversations are kept per user (ui.history:
// sessionStorage, localStorage or nowhere), shown only once signed in, and erased on sign-out and after
// ui.idle_timeout_s without input: on a shared ward PC the next user sees nothing of the previous one.

const T = {
  nl: {
    skip: "Naar de vraag", menu: "Menu", new: "Nieuw gesprek", clear: "Geschiedenis wissen", signout: "Afmelden",
    signin_title: "Aanmelden", key_label: "Uw API-sleutel", key_submit: "Aanmelden",
    oidc_login: "Aanmelden bij uw organisatie", conversation: "Gesprek",
    intro: "Stel een vraag over de protocollen en richtlijnen van uw organisatie. Elk antwoord noemt zijn bronnen.",
    question_label: "Uw vraag", send: "Vragen", hint: "Enter verstuurt, Shift+Enter geeft een nieuwe regel.",
    examples: "Voorbeeldvragen", history: "Eerdere gesprekken", close: "Sluiten", passage: "Geciteerde passage",
    open_original: "Originele document openen",
    footer: "Antwoorden komen uit de eigen documenten van uw organisatie en verlaten dit netwerk niet. Controleer bij twijfel de bron.",
    sources: "Bronnen", copy: "Antwoord kopiëren", up_short: "Nuttig", down_short: "Niet nuttig", copied: "Gekopieerd", up: "Nuttig antwoord", down: "Onjuist of niet nuttig",
    comment_label: "Toelichting (optioneel)", send_feedback: "Feedback versturen", thanks: "Dank voor uw feedback.",
    thinking: "Bezig met zoeken en antwoorden…", done: "Antwoord compleet.", page: "p.", section: "§", score: "score",
    version: "versie", date: "datum", source_n: "Bron", abstain_title: "Geen antwoord",
    abstained: "Ik vond in de documenten geen antwoord op deze vraag. Probeer andere woorden of vraag het uw leidinggevende.",
    mode_extractive: "Extractief antwoord: zinnen letterlijk uit de bronnen, zonder taalmodel.",
    mode_fallback: "Het taalmodel was niet bereikbaar; dit antwoord bestaat uit zinnen uit de bronnen.",
    patient_data: "Uw vraag lijkt patiëntgegevens te bevatten. Vraagbaak is niet bedoeld voor patiëntgegevens: stel uw vraag zonder BSN, naam, geboortedatum of adres. Wat u vroeg is zonder die gegevens vastgelegd.",
    need_signin: "Meld u aan om vragen te stellen.", bad_key: "Deze sleutel werd niet geaccepteerd.",
    busy: "De dienst is even druk. Probeer het over een minuut opnieuw.", error: "Er ging iets mis:",
    signed_in: "Aangemeld als", dev: "lokale proefopstelling", no_history: "Nog geen eerdere gesprekken.",
    confirm_clear: "Alle gesprekken in deze browser wissen?", loading_pdf: "Document laden…",
    pdf_page: "Pagina", of: "van", highlighted: "passage gemarkeerd", not_found_on_page: "De passage is op deze pagina niet exact teruggevonden.",
    no_original: "Het originele document is niet beschikbaar.", in_section: "De passage in haar sectie",
    idle_signed_out: "U bent afgemeld na een periode zonder activiteit.",
    unsupported: "Niet ondersteund door de bron:", check_note: "zin(nen) in dit antwoord komen niet overeen met de bron; controleer de gemarkeerde tekst.",
    feedback_for: "Feedback op dit antwoord", lang_switch: "English", lang_name: "English", oidc_error: "Aanmelden mislukt:",
  },
  en: {
    skip: "Skip to the question", menu: "Menu", new: "New conversation", clear: "Clear history", signout: "Sign out",
    signin_title: "Sign in", key_label: "Your API key", key_submit: "Sign in",
    oidc_login: "Sign in with your organisation", conversation: "Conversation",
    intro: "Ask a question about your organisation's protocols and guidelines. Every answer names its sources.",
    question_label: "Your question", send: "Ask", hint: "Enter sends, Shift+Enter adds a new line.",
    examples: "Example questions", history: "Earlier conversations", close: "Close", passage: "Cited passage",
    open_original: "Open the original document",
    footer: "Answers come from your organisation's own documents and do not leave this network. When in doubt, check the source.",
    sources: "Sources", copy: "Copy answer", up_short: "Helpful", down_short: "Not helpful", copied: "Copied", up: "Helpful answer", down: "Wrong or not helpful",
    comment_label: "Comment (optional)", send_feedback: "Send feedback", thanks: "Thank you for your feedback.",
    thinking: "Searching and answering…", done: "Answer complete.", page: "p.", section: "§", score: "score",
    version: "version", date: "date", source_n: "Source", abstain_title: "No answer",
    abstained: "I found no answer to this question in the documents. Try other words or ask your manager.",
    mode_extractive: "Extractive answer: sentences quoted from the sources, without a language model.",
    mode_fallback: "The language model was unreachable; this answer consists of sentences from the sources.",
    patient_data: "Your question seems to hold patient data. Vraagbaak is not meant for patient data: ask without a BSN, name, date of birth or address. Your question was recorded without them.",
    need_signin: "Sign in to ask questions.", bad_key: "This key was not accepted.",
    busy: "The service is busy. Please try again in a minute.", error: "Something went wrong:",
    signed_in: "Signed in as", dev: "local pilot", no_history: "No earlier conversations yet.",
    confirm_clear: "Clear every conversation in this browser?", loading_pdf: "Loading document…",
    pdf_page: "Page", of: "of", highlighted: "passage highlighted", not_found_on_page: "The passage was not found exactly on this page.",
    no_original: "The original document is not available.", in_section: "The passage in its section",
    idle_signed_out: "You were signed out after a period without activity.",
    unsupported: "Not supported by the source:", check_note: "sentence(s) of this answer do not match the source; check the marked text.",
    feedback_for: "Feedback on this answer", lang_switch: "Nederlands", lang_name: "Nederlands", oidc_error: "Sign-in failed:",
  },
};

const HISTORY_PREFIX = "vraagbaak.history.v2:";  // + the user id: one history per user
const LEGACY_HISTORY_KEY = "vraagbaak.history.v1";  // one history for everyone: removed on sight
const LANG_KEY = "vraagbaak.lang";
const OIDC_KEY = "vraagbaak.oidc.pending";  // PKCE verifier and state across the redirect (no tokens)
const MAX_TURNS_SENT = 6;

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem(LANG_KEY) === "en" ? "en" : "nl",
  config: null,
  bearer: null,  // in memory only
  idToken: null,  // in memory only, for the IdP's sign-out
  user: null,
  history: emptyHistory(),  // nothing until someone is signed in
  busy: false,
};
const t = (k) => T[state.lang][k] ?? k;

function emptyHistory() { return { current: newConversation(), conversations: [] }; }
function historyStore() {
  const mode = state.config?.ui?.history ?? "session";
  return mode === "local" ? localStorage : mode === "session" ? sessionStorage : null;
}
function historyKey() { return state.user ? HISTORY_PREFIX + encodeURIComponent(state.user) : null; }
function loadHistory() {
  const store = historyStore(), key = historyKey();
  if (!store || !key) return emptyHistory();
  try {
    const h = JSON.parse(store.getItem(key) || "null");
    if (h && Array.isArray(h.conversations) && h.current) return h;
  } catch { /* corrupt: start afresh */ }
  return emptyHistory();
}
function newConversation() { return { id: crypto.randomUUID(), started: new Date().toISOString(), turns: [] }; }
function saveHistory() {
  const store = historyStore(), key = historyKey();
  if (store && key) store.setItem(key, JSON.stringify(state.history));
}
function forgetHistory() {
  const key = historyKey();
  for (const store of [localStorage, sessionStorage]) {
    if (key) store.removeItem(key);
    store.removeItem(LEGACY_HISTORY_KEY);
  }
}
// the screen shows a user's conversation only while that user is signed in
function showChat(on) {
  for (const id of ["chat", "new-conv", "clear-hist"]) $(id).hidden = !on;
  if (!on) {
    $("conversation").replaceChildren();
    $("history-list").replaceChildren();
    $("status").textContent = "";
    $("question").value = "";
  }
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ------------------------------------------------------------------ language

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll("[data-i18n-aria]")) e.setAttribute("aria-label", t(e.dataset.i18nAria));
  const other = state.lang === "nl" ? "en" : "nl";
  const b = $("lang");
  b.textContent = T[state.lang].lang_switch;
  b.setAttribute("lang", other);
  b.setAttribute("aria-label", T[state.lang].lang_name);
  for (const e of document.querySelectorAll(".example")) e.textContent = e.dataset[state.lang === "nl" ? "qNl" : "qEn"];
  renderConversation();
  renderHistoryList();
  showWho();
}

// ------------------------------------------------------------------ sign-in

async function api(path, opts = {}) {
  const headers = new Headers(opts.headers || {});
  if (state.bearer) headers.set("Authorization", `Bearer ${state.bearer}`);
  return fetch(path, { ...opts, headers, credentials: "same-origin", cache: "no-store" });
}

function showWho() {
  const who = $("who");
  if (!state.user) { who.textContent = ""; return; }
  who.textContent = `${t("signed_in")} ${state.user}${state.config?.auth === "insecure-dev" ? ` (${t("dev")})` : ""}`;
  $("signout").hidden = state.config?.auth === "insecure-dev";
}

async function checkSignedIn() {
  const r = await api("/v1/whoami");
  if (r.ok) {
    const user = (await r.json()).user_id;
    if (user !== state.user) state.history = emptyHistory();
    state.user = user;
    state.history = loadHistory();
    $("signin").hidden = true;
    showChat(true);
    renderConversation();
    renderHistoryList();
    showWho();
    return true;
  }
  state.user = null;
  showSignin(r.status === 401 && state.bearer ? t("bad_key") : t("need_signin"));
  return false;
}

function showSignin(msg) {
  showChat(false);
  closePanel();
  $("signin").hidden = false;
  $("signin-msg").textContent = msg;
  const mode = state.config?.auth;
  $("key-form").hidden = mode !== "api-key";
  $("oidc-login").hidden = mode !== "oidc";
  showWho();
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
function randomString(n = 32) { return b64url(crypto.getRandomValues(new Uint8Array(n))); }
function redirectUri() { return `${location.origin}/chat`; }

async function oidcLogin() {
  const o = state.config.oidc;
  const verifier = randomString(48);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const st = randomString(16);
  const nonce = randomString(16);
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({ verifier, state: st, nonce }));
  const q = new URLSearchParams({
    response_type: "code", client_id: o.client_id, redirect_uri: redirectUri(), scope: o.scopes,
    state: st, nonce, code_challenge: challenge, code_challenge_method: "S256",
  });
  location.assign(`${o.authorization_endpoint}?${q}`);
}

async function oidcCallback() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return;
  history.replaceState(null, "", location.pathname);  // the code never stays in the address bar
  const pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null");
  sessionStorage.removeItem(OIDC_KEY);
  if (params.has("error")) throw new Error(params.get("error_description") || params.get("error"));
  if (!pending || pending.state !== params.get("state")) throw new Error("state mismatch");
  const o = state.config.oidc;
  const body = new URLSearchParams({
    grant_type: "authorization_code", code: params.get("code"), redirect_uri: redirectUri(),
    client_id: o.client_id, code_verifier: pending.verifier,
  });
  const r = await fetch(o.token_endpoint, {
    method: "POST", body, headers: { "Content-Type": "application/x-www-form-urlencoded" },
    credentials: "omit", referrerPolicy: "no-referrer",
  });
  if (!r.ok) throw new Error(`token endpoint ${r.status}`);
  const tokens = await r.json();
  const token = tokens[o.bearer === "id_token" ? "id_token" : "access_token"];
  if (!token) throw new Error(`no ${o.bearer} in the token response`);
  state.bearer = token;  // memory only
  state.idToken = tokens.id_token || null;
}

// Sign-out (and the idle timeout): the user's stored history is erased, the screen cleared, the
// credentials dropped; with OIDC the IdP's session ends too, or the next user would be signed in as this one.
function signOut(reason) {
  forgetHistory();
  state.history = emptyHistory();
  const idToken = state.idToken;
  state.bearer = null;
  state.idToken = null;
  state.user = null;
  showSignin(reason || t("need_signin"));
  const o = state.config?.oidc;
  if (state.config?.auth === "oidc" && o?.end_session_endpoint) {
    const q = new URLSearchParams({ client_id: o.client_id, post_logout_redirect_uri: `${location.origin}/` });
    if (idToken) q.set("id_token_hint", idToken);
    location.assign(`${o.end_session_endpoint}?${q}`);
  }
}

let idleTimer = null;
function watchIdle() {
  const seconds = state.config?.ui?.idle_timeout_s ?? 0;
  if (!seconds) return;
  const reset = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(async () => {
      const wasDev = state.config?.auth === "insecure-dev";
      signOut(t("idle_signed_out"));
      if (wasDev) await checkSignedIn();  // the loopback pilot has no sign-in: an empty screen again
    }, seconds * 1000);
  };
  for (const ev of ["pointerdown", "keydown", "wheel", "touchstart", "input"]) {
    document.addEventListener(ev, reset, { passive: true, capture: true });
  }
  reset();
}

// ------------------------------------------------------------------ conversation

function renderConversation() {
  const list = $("conversation");
  list.replaceChildren(...state.history.current.turns.map((turn, i) => renderTurn(turn, i)));
  $("intro").hidden = state.history.current.turns.length > 0;
}

function sourceMeta(s) {
  const parts = [];
  if (s.section) parts.push(`${t("section")} ${s.section}`);
  if (s.page !== null && s.page !== undefined) parts.push(`${t("page")} ${s.page}`);
  if (s.version) parts.push(`${t("version")} ${s.version}`);
  const date = s.effective_date || s.valid_from || s.date || s.issued;
  if (date) parts.push(`${t("date")} ${date}`);
  if (typeof s.score === "number") parts.push(`${t("score")} ${s.score.toFixed(2)}`);
  return parts.join(" · ");
}

function citedSources(turn) {
  // The sources list: the cited ones (with snippet), else every source the model was given.
  const byN = new Map((turn.sources || []).map((s) => [s.n, s]));
  const cited = (turn.citations || []).map((c) => ({ ...byN.get(c.n), ...c }));
  return cited.length ? cited : (turn.sources || []);
}

function appendWithMarkers(parent, text, turn, idx, known) {
  const re = /\[(\d+)\]/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    parent.append(text.slice(last, m.index));
    const n = Number(m[1]);
    if (known.has(n)) {
      parent.append(el("a", {
        href: `#src-${idx}-${n}`, class: "marker", "data-n": String(n),
        "aria-label": `${t("source_n")} ${n}`, text: `[${n}]`,
        onclick: (ev) => { ev.preventDefault(); openSource(turn, n); },
      }));
    } else {
      parent.append(m[0]);
    }
    last = m.index + m[0].length;
  }
  parent.append(text.slice(last));
}

// Where the answer check's unsupported sentences stand in the text: [start, end, reason], in order.
function unsupportedRanges(text, claims) {
  const out = [];
  let from = 0;
  for (const c of claims || []) {
    if (!c.sentence) continue;
    const at = text.indexOf(c.sentence, from);
    if (at < 0) continue;
    if (c.status === "unsupported") out.push([at, at + c.sentence.length, c.reason || ""]);
    from = at + c.sentence.length;
  }
  return out;
}

function renderAnswerText(container, text, turn, idx) {
  container.replaceChildren();
  const known = new Set([...(turn.sources || []).map((s) => s.n), ...(turn.citations || []).map((c) => c.n)]);
  let last = 0;
  for (const [start, end, reason] of unsupportedRanges(text, turn.claims)) {
    appendWithMarkers(container, text.slice(last, start), turn, idx, known);
    // marked for the eye (colour and a wavy underline) and for screen readers (the reason, read first)
    const mark = el("mark", { class: "unsupported", "data-testid": "unsupported", title: `${t("unsupported")} ${reason}` },
      el("span", { class: "sr-only", text: `${t("unsupported")} ${reason}. ` }));
    appendWithMarkers(mark, text.slice(start, end), turn, idx, known);
    container.append(mark);
    last = end;
  }
  appendWithMarkers(container, text.slice(last), turn, idx, known);
}

function renderTurn(turn, idx) {
  const li = el("li", { class: "turn" });
  li.append(el("div", { class: "q", text: turn.question }));
  const art = el("article", { class: "answer", "aria-label": `${t("conversation")} ${idx + 1}`, "data-answer-id": turn.answer_id || "" });
  if (turn.patient_data) {
    art.append(el("p", { class: "privacy", role: "alert", "data-testid": "patient-data-notice", text: t("patient_data") }));
  }
  if (turn.mode === "extractive" || turn.mode === "fallback") {
    art.append(el("p", { class: "badge", "data-mode": turn.mode, text: t(turn.mode === "fallback" ? "mode_fallback" : "mode_extractive") }));
  }
  if (turn.abstained) {
    art.append(el("p", { class: "abstain", "data-testid": "abstained", text: t("abstained") }));
  } else {
    const body = el("div", { class: "answer-text", "data-testid": "answer-text" });
    renderAnswerText(body, turn.answer || "", turn, idx);
    art.append(body);
    const flagged = (turn.claims || []).filter((c) => c.status === "unsupported").length;
    if (flagged && turn.complete) {
      art.append(el("p", { class: "check-note", role: "note", "data-testid": "check-note", text: `${flagged} ${t("check_note")}` }));
    }
  }
  const sources = citedSources(turn);
  if (sources.length && turn.complete) {
    const hid = `src-h-${idx}`;
    art.append(el("h3", { class: "h-small", id: hid, text: t("sources") }));
    const ol = el("ol", { class: "sources", "aria-labelledby": hid });
    for (const s of sources) {
      ol.append(el("li", { id: `src-${idx}-${s.n}`, value: String(s.n) },
        el("button", { type: "button", class: "source", "data-n": String(s.n), onclick: () => openSource(turn, s.n) },
          el("span", { class: "t", text: s.title || s.doc_id }),
          el("span", { class: "m", text: sourceMeta(s) }))));
    }
    art.append(ol);
  }
  if (turn.complete && turn.answer_id) art.append(renderActions(turn));
  li.append(art);
  return li;
}

function renderActions(turn) {
  const box = el("div", { class: "actions", role: "group", "aria-label": t("feedback_for") });
  const status = el("span", { class: "status", role: "status" });
  const copy = el("button", { type: "button", class: "copy", text: t("copy"), onclick: async () => {
    const text = turn.abstained ? t("abstained") : turn.answer;
    try { await navigator.clipboard.writeText(text); } catch { /* clipboard refused: select instead */ }
    status.textContent = t("copied");
  } });
  const fb = turn.feedback || {};
  const mk = (vote) => el("button", {
    type: "button", class: `vote vote-${vote}`, "aria-pressed": String(fb.vote === vote), "data-vote": vote,
    title: t(vote),
    onclick: () => { turn.feedback = { ...(turn.feedback || {}), vote }; up.setAttribute("aria-pressed", String(vote === "up")); down.setAttribute("aria-pressed", String(vote === "down")); },
  });
  const up = mk("up");
  const down = mk("down");
  up.append(thumb(false), el("span", { text: ` ${t("up_short")}` }));
  down.append(thumb(true), el("span", { text: ` ${t("down_short")}` }));
  const cid = `c-${turn.answer_id}`;
  const comment = el("textarea", { id: cid, rows: "1", maxlength: "1000", class: "comment" });
  const label = el("label", { for: cid, class: "sr-only", text: t("comment_label") });
  comment.placeholder = t("comment_label");
  const send = el("button", { type: "button", class: "send-feedback", text: t("send_feedback"), onclick: async () => {
    const vote = turn.feedback?.vote;
    if (!vote) { up.focus(); return; }
    const r = await api("/api/feedback", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ answer_id: turn.answer_id, vote, comment: comment.value }),
    });
    if (r.ok) {
      turn.feedback = { vote, sent: true };
      saveHistory();
      status.textContent = t("thanks");
      send.disabled = true;
    } else {
      status.textContent = `${t("error")} ${r.status}`;
    }
  } });
  if (fb.sent) { send.disabled = true; status.textContent = t("thanks"); }
  box.append(copy, up, down, label, comment, send, status);
  return box;
}

function thumb(flip) {
  // Material Design "thumb up" (Apache-2.0), drawn inline: no icon font, no request.
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  if (flip) svg.setAttribute("transform", "rotate(180)");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z");
  svg.append(path);
  return svg;
}

function messagesFor(question) {
  const msgs = [];
  for (const turn of state.history.current.turns.slice(-MAX_TURNS_SENT)) {
    if (!turn.complete) continue;
    msgs.push({ role: "user", content: turn.question });
    if (!turn.abstained && turn.answer) msgs.push({ role: "assistant", content: turn.answer });
  }
  msgs.push({ role: "user", content: question });
  return msgs;
}

async function ask(question) {
  if (state.busy || !question.trim()) return;
  state.busy = true;
  $("send").disabled = true;
  const status = $("status");
  status.textContent = t("thinking");
  const turn = { question, answer: "", sources: [], citations: [], complete: false, asked: new Date().toISOString() };
  const messages = messagesFor(question);
  state.history.current.turns.push(turn);
  const idx = state.history.current.turns.length - 1;
  renderConversation();
  const node = () => $("conversation").children[idx];
  try {
    const r = await api("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ model: "vraagbaak", stream: true, messages }),
    });
    if (r.status === 401) { state.history.current.turns.pop(); renderConversation(); showSignin(t("need_signin")); status.textContent = ""; return; }
    if (r.status === 503 || r.status === 429) throw new Error(t("busy"));
    if (!r.ok) {
      let msg = String(r.status);
      try { msg = (await r.json()).error?.message || msg; } catch { /* not JSON */ }
      throw new Error(msg);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const ev = JSON.parse(data);
          if (ev.error) throw new Error(ev.error.message);
          if (ev.id) turn.answer_id = ev.id;
          if (ev.privacy_notice) turn.patient_data = true;
          const delta = ev.choices?.[0]?.delta?.content;
          if (delta) {
            turn.answer += delta;
            const body = node()?.querySelector(".answer-text");
            if (body) renderAnswerText(body, turn.answer, turn, idx);
          }
          if (ev.choices?.[0]?.finish_reason) {
            turn.citations = ev.citations || [];
            turn.sources = ev.sources || [];
            turn.abstained = Boolean(ev.abstained);
            turn.claims = ev.claims || [];
            if (ev.mode) turn.mode = ev.mode;
          }
        }
      }
    }
    turn.complete = true;
    status.textContent = t("done");
  } catch (err) {
    turn.complete = true;
    turn.error = String(err.message || err);
    status.textContent = `${t("error")} ${turn.error}`;
  } finally {
    state.busy = false;
    $("send").disabled = false;
    saveHistory();
    renderConversation();
  }
}

// ------------------------------------------------------------------ source panel

let pdfjs = null;
let panelReturnFocus = null;

function closePanel() {
  $("panel").hidden = true;
  document.querySelector(".layout").classList.remove("with-panel");
  $("viewer").replaceChildren();
  if (panelReturnFocus) panelReturnFocus.focus();
}

function markPassage(container, text, passage) {
  // The passage (or its first sentence) marked inside ``text``.
  container.replaceChildren();
  const at = passage ? text.indexOf(passage) : -1;
  if (at < 0) { container.append(el("mark", { text })); return; }
  container.append(text.slice(0, at), el("mark", { text: passage }), text.slice(at + passage.length));
}

function openSource(turn, n) {
  const src = { ...(turn.sources || []).find((s) => s.n === n), ...(turn.citations || []).find((c) => c.n === n) };
  if (!src.doc_id) return;
  panelReturnFocus = document.activeElement;
  const panel = $("panel");
  panel.hidden = false;
  document.querySelector(".layout").classList.add("with-panel");
  $("panel-title").textContent = `[${n}] ${src.title || src.doc_id}`;
  $("panel-meta").textContent = sourceMeta(src);
  const passage = src.text || src.snippet || "";
  markPassage($("panel-passage"), passage, src.snippet && passage.includes(src.snippet) ? src.snippet : passage);
  $("viewer").replaceChildren();
  $("viewer-status").textContent = "";
  const isPdf = src.page !== null && src.page !== undefined && state.config?.pdf_viewer;
  $("open-original").onclick = () => (isPdf ? showPdf(src, passage) : showSection(src, passage));
  panel.focus();
  if (isPdf) showPdf(src, passage);
}

function showSection(src, passage) {
  const v = $("viewer");
  v.replaceChildren(el("h3", { class: "h-small", text: `${t("in_section")}${src.section ? `: ${src.section}` : ""}` }));
  const box = el("div", { class: "section-text", "data-testid": "section-text" });
  markPassage(box, passage, src.snippet && passage.includes(src.snippet) ? src.snippet : passage);
  v.append(box);
  const link = el("button", { type: "button", text: t("open_original"), onclick: () => downloadOriginal(src) });
  v.append(link);
}

async function downloadOriginal(src) {
  const r = await api(`/api/documents/${encodeURIComponent(src.doc_id)}/content`);
  if (!r.ok) { $("viewer-status").textContent = t("no_original"); return; }
  const blob = await r.blob();
  const a = el("a", { href: URL.createObjectURL(blob), download: (src.source || src.title || "document").split("/").pop() });
  document.body.append(a);
  a.click();
  a.remove();
}

function normalise(s) { return s.toLowerCase().replace(/[\s\u00ad]+/g, ""); }

async function showPdf(src, passage) {
  const status = $("viewer-status");
  status.textContent = t("loading_pdf");
  const r = await api(`/api/documents/${encodeURIComponent(src.doc_id)}/content`);
  if (!r.ok) { status.textContent = t("no_original"); return; }
  const data = new Uint8Array(await r.arrayBuffer());
  if (!pdfjs) {
    pdfjs = await import("/static/vendor/pdfjs/build/pdf.mjs");
    pdfjs.GlobalWorkerOptions.workerSrc = "/static/vendor/pdfjs/build/pdf.worker.mjs";
  }
  const doc = await pdfjs.getDocument({
    data, isEvalSupported: false, enableXfa: false,
    standardFontDataUrl: "/static/vendor/pdfjs/standard_fonts/", cMapUrl: "/static/vendor/pdfjs/cmaps/", cMapPacked: true,
    wasmUrl: "/static/vendor/pdfjs/wasm/", iccUrl: "/static/vendor/pdfjs/iccs/",
  }).promise;
  const pageNo = Math.min(Math.max(1, src.page), doc.numPages);
  const page = await doc.getPage(pageNo);
  const v = $("viewer");
  const width = Math.max(280, v.clientWidth || 600);
  const base = page.getViewport({ scale: 1 });
  const viewport = page.getViewport({ scale: width / base.width });
  const ratio = window.devicePixelRatio || 1;
  const canvas = el("canvas", { role: "img", "data-page": String(pageNo) });
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  canvas.style.width = `${Math.floor(viewport.width)}px`;
  canvas.style.height = `${Math.floor(viewport.height)}px`;
  const wrap = el("div", { class: "pdf-page", "data-testid": "pdf-page", "data-page": String(pageNo) }, canvas);
  v.replaceChildren(wrap);
  await page.render({ canvas, canvasContext: canvas.getContext("2d"), viewport, transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : undefined }).promise;
  // Highlight: find the passage in the page's text, in windows, and box the text items it covers.
  const content = await page.getTextContent();
  let pageStr = "";
  const owner = [];
  content.items.forEach((item, i) => {
    const s = normalise(item.str || "");
    pageStr += s;
    for (let k = 0; k < s.length; k++) owner.push(i);
  });
  const marked = new Set();
  const P = normalise(passage);
  const W = 24;
  for (let i = 0; i + 12 <= P.length; i += W) {
    const w = P.slice(i, i + W);
    const j = pageStr.indexOf(w);
    if (j >= 0) for (let k = j; k < j + w.length; k++) marked.add(owner[k]);
  }
  for (const i of marked) {
    const item = content.items[i];
    const tx = pdfjs.Util.transform(viewport.transform, item.transform);
    const h = Math.hypot(tx[2], tx[3]);
    const box = el("div", { class: "pdf-hl", "data-testid": "pdf-highlight", "aria-hidden": "true" });
    box.style.left = `${tx[4]}px`;
    box.style.top = `${tx[5] - h}px`;
    box.style.width = `${item.width * viewport.scale}px`;
    box.style.height = `${h * 1.15}px`;
    wrap.append(box);
  }
  const label = `${t("pdf_page")} ${pageNo} ${t("of")} ${doc.numPages}: ${src.title}${marked.size ? `, ${t("highlighted")}` : ""}`;
  canvas.setAttribute("aria-label", label);
  status.textContent = marked.size ? label : `${label}. ${t("not_found_on_page")}`;
}

// ------------------------------------------------------------------ history list

function renderHistoryList() {
  const ul = $("history-list");
  const convs = state.history.conversations;
  if (!convs.length) { ul.replaceChildren(el("li", { text: t("no_history") })); return; }
  ul.replaceChildren(...convs.slice().reverse().map((c) => el("li", {},
    el("button", { type: "button", class: "past", text: `${c.started.slice(0, 10)} — ${c.turns[0]?.question || ""}`,
      onclick: () => {
        archiveCurrent();
        state.history.conversations = state.history.conversations.filter((x) => x.id !== c.id);
        state.history.current = c;
        saveHistory(); renderConversation(); renderHistoryList(); closePanel();
      } }))));
}

function archiveCurrent() {
  if (state.history.current.turns.length) state.history.conversations.push(state.history.current);
  state.history.conversations = state.history.conversations.slice(-50);
}

// ------------------------------------------------------------------ start

async function start() {
  applyLanguage();
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "nl" ? "en" : "nl";
    localStorage.setItem(LANG_KEY, state.lang);
    applyLanguage();
  });
  $("new-conv").addEventListener("click", () => {
    archiveCurrent();
    state.history.current = newConversation();
    saveHistory(); renderConversation(); renderHistoryList(); closePanel();
    $("question").focus();
  });
  $("clear-hist").addEventListener("click", () => {
    if (!confirm(t("confirm_clear"))) return;
    forgetHistory();
    state.history = emptyHistory();
    renderConversation(); renderHistoryList(); closePanel();
  });
  $("signout").addEventListener("click", () => signOut());
  $("panel-close").addEventListener("click", closePanel);
  $("panel").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closePanel(); });
  $("ask").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("question").value;
    $("question").value = "";
    ask(q);
  });
  $("question").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); $("ask").requestSubmit(); }
  });
  for (const b of document.querySelectorAll(".example")) {
    b.addEventListener("click", () => { $("question").value = b.textContent; $("ask").requestSubmit(); });
  }
  $("key-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.bearer = $("api-key").value.trim();
    $("api-key").value = "";
    await checkSignedIn();
  });
  $("oidc-login").addEventListener("click", oidcLogin);

  state.config = await (await fetch("/api/config", { cache: "no-store" })).json();
  localStorage.removeItem(LEGACY_HISTORY_KEY);  // the old history, shared by every user of this browser
  if (historyStore() !== localStorage) {  // history no longer kept in localStorage: none may linger there
    for (const k of Object.keys(localStorage)) if (k.startsWith(HISTORY_PREFIX)) localStorage.removeItem(k);
  }
  watchIdle();
  if (state.config.auth === "oidc") {
    try { await oidcCallback(); } catch (err) { showSignin(`${t("oidc_error")} ${err.message}`); return; }
  }
  await checkSignedIn();
  document.body.dataset.ready = "1";
}

start();
