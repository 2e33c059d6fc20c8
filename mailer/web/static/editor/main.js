// The block editor page: wires the form (form.js) to validation and the live preview
// (check, ~400 ms after typing stops), autosave (local copy at once, server after a
// pause, retried when it fails) and the two-editors conflict (keep mine / take theirs).

import { BlockForm, Model, showMessages } from "./form.js";
import { Media } from "./photos.js";

const PREVIEW_DELAY = 400;
const SAVE_DELAY = 1500;
const RETRY_MAX = 30000;

const root = document.getElementById("editor-root");
const draftId = Number(root.dataset.draftId);
const csrf = root.dataset.csrf;
const initial = JSON.parse(document.getElementById("draft-state").textContent);
const countries = JSON.parse(document.getElementById("draft-countries").textContent);
// Per person and draft: another editor signing in on this browser is not offered them.
const localKey = `mailer-draft-${root.dataset.user}-${draftId}`;
const formNode = document.getElementById("editor-form");
const statusNode = document.getElementById("save-status");
const banners = document.getElementById("banners");

// Canonical JSON (keys sorted): PostgreSQL may give the keys back in another order.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function timeOf(date) {
  return date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

async function postJSON(url, body, keepalive) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    keepalive: Boolean(keepalive),
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (error) { data = null; }
  return { status: response.status, data };
}

const state = {
  version: initial.version,
  savedText: canonical(initial.document), // what the server holds (as far as we know)
  saving: false,
  saveTimer: null,
  retryDelay: 2000,
  conflict: null,
  previewTimer: null,
  previewSeq: 0,
  previewShown: 0,
  previewUrl: null,
  // A brand-new draft shows messages only where the editor has typed, until a save.
  showAll: Boolean((initial.document.blocks || []).length || initial.document.title),
};

const live = document.createElement("p");
live.className = "visually-hidden";
live.setAttribute("aria-live", "polite");
document.body.append(live);
function announce(text) { live.textContent = text; }

const model = new Model(initial.document);
if (!model.fields.newsletter) model.fields.newsletter = root.dataset.newsletter;

// --- confirmation ------------------------------------------------------------------

const confirmDialog = document.getElementById("confirm-dialog");
function confirmRemove(text) {
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes");
    const no = document.getElementById("confirm-no");
    const finish = (value) => {
      yes.onclick = null; no.onclick = null; confirmDialog.onclose = null;
      if (confirmDialog.open) confirmDialog.close();
      resolve(value);
    };
    yes.onclick = () => finish(true);
    no.onclick = () => finish(false);
    confirmDialog.onclose = () => finish(false);
    confirmDialog.showModal();
    no.focus();
  });
}

const form = new BlockForm(model, {
  fields: document.getElementById("issue-fields"),
  footer: document.getElementById("footer-inputs"),
  blocks: document.getElementById("blocks"),
  addTop: document.getElementById("add-end"),
}, {
  changed: onChange,
  confirmRemove,
  announce,
  countries,
  media: new Media(csrf, document.getElementById("media-dialog")),
  titled: (title) => { document.getElementById("draft-title").textContent = title ? `: ${title}` : ""; },
});
// The add bar for the start of the list sits above it.
const addTop = document.getElementById("add-end");
document.getElementById("blocks").before(addTop);

function render() {
  form.renderFields();
  form.renderBlocks();
}

// --- local copy: nothing typed is lost ----------------------------------------------

function writeLocal(dirty) {
  try {
    localStorage.setItem(localKey, JSON.stringify({
      document: model.document(), base_version: state.version, dirty, at: Date.now(),
    }));
  } catch (error) { /* storage full or off: the server save still runs */ }
}

function readLocal() {
  try { return JSON.parse(localStorage.getItem(localKey) || "null"); } catch (error) { return null; }
}

function offerLocalCopy() {
  const local = readLocal();
  if (!local || !local.dirty || !local.document) return;
  if (canonical(local.document) === state.savedText) { writeLocal(false); return; }
  const banner = document.createElement("div");
  banner.className = "flash flash-warn banner";
  banner.id = "local-copy";
  banner.setAttribute("role", "alert");
  const when = timeOf(new Date(local.at));
  const newer = local.base_version === state.version
    ? "newer than the server's copy"
    : `made on version ${local.base_version}; the server now has version ${state.version}, saved by someone else`;
  const text = document.createElement("p");
  text.textContent = `This browser kept edits from ${when} that were not saved (${newer}).`;
  const restore = document.createElement("button");
  restore.type = "button";
  restore.className = "primary";
  restore.textContent = "Restore my unsaved edits";
  const discard = document.createElement("button");
  discard.type = "button";
  discard.textContent = "Discard them";
  restore.addEventListener("click", () => {
    model.load(local.document);
    if (!model.fields.newsletter) model.fields.newsletter = root.dataset.newsletter;
    const serverVersion = state.version;
    state.version = local.base_version; // a save from an older version shows the conflict
    render();
    banner.remove();
    announce("Your unsaved edits are back.");
    setStatus(`Restored your edits from ${when}; saving…`);
    onChange();
    if (local.base_version !== serverVersion) saveNow(true);
    formNode.querySelector("input, textarea").focus();
  });
  discard.addEventListener("click", () => {
    writeLocal(false);
    banner.remove();
    announce("The browser's copy was discarded.");
  });
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(restore, discard);
  banner.append(text, actions);
  banners.append(banner);
}

// --- status line ------------------------------------------------------------------

function setStatus(text, kind) {
  statusNode.textContent = text;
  statusNode.className = `save-status${kind ? ` save-${kind}` : ""}`;
}

// --- changes ------------------------------------------------------------------------

function onChange() {
  writeLocal(true);
  schedulePreview();
  if (state.conflict) return;
  setStatus("Unsaved changes…", "pending");
  window.clearTimeout(state.saveTimer);
  state.saveTimer = window.setTimeout(() => saveNow(true), SAVE_DELAY);
}

// --- saving ---------------------------------------------------------------------------

async function saveNow(autosave) {
  window.clearTimeout(state.saveTimer);
  if (state.conflict) return;
  if (state.saving) { state.saveTimer = window.setTimeout(() => saveNow(autosave), 300); return; }
  const document_ = model.document();
  const sentText = canonical(document_);
  if (autosave && sentText === state.savedText) { writeLocal(false); setStatus(savedLine(), "ok"); return; }
  state.saving = true;
  setStatus("Saving…", "pending");
  let result;
  try {
    result = await postJSON(`/drafts/${draftId}/save`, { document: document_, base_version: state.version, autosave });
  } catch (error) {
    result = { status: 0, data: null };
  } finally {
    state.saving = false;
  }
  if (result.status === 409 && result.data && canonical(result.data.current.document) === sentText) {
    // The server already has exactly this (a save sent as the last page closed): no conflict.
    result = { status: 200, data: result.data.current };
  }
  if (result.status === 200 && result.data) {
    state.version = result.data.version;
    state.savedText = sentText;
    state.savedAt = new Date();
    state.retryDelay = 2000;
    const unchanged = canonical(model.document()) === sentText;
    writeLocal(!unchanged);
    if (unchanged) {
      setStatus(savedLine(), "ok");
    } else {
      // Edits made while this save was on its way: not saved yet, and the line says so.
      setStatus(`${savedLine()} Newer changes not saved yet…`, "pending");
      window.clearTimeout(state.saveTimer);
      state.saveTimer = window.setTimeout(() => saveNow(true), SAVE_DELAY);
    }
    return;
  }

  if (result.status === 409 && result.data) { showConflict(result.data); return; }
  if (result.status === 422 && result.data) {
    setStatus(`Not saved: ${result.data.error} See the messages beside the fields.`, "error");
    showMessages(formNode, result.data.problems || [], true);
    return;
  }
  const why = result.status === 0 ? "the connection to the server was lost"
    : result.status === 401 ? "you were signed out (sign in again in another tab)"
      : `the server answered ${result.status}`;
  const delay = state.retryDelay;
  state.retryDelay = Math.min(state.retryDelay * 2, RETRY_MAX);
  setStatus(`Save failed: ${why}. Your edits are kept in this browser; retrying in ${Math.round(delay / 1000)} s.`, "error");
  state.saveTimer = window.setTimeout(() => saveNow(autosave), delay);
}

function savedLine() {
  return state.savedAt ? `Saved at ${timeOf(state.savedAt)} (version ${state.version}).` : `Version ${state.version}, no changes.`;
}

document.getElementById("save-now").addEventListener("click", () => {
  state.showAll = true;
  saveNow(false);
  schedulePreview();
});
window.addEventListener("online", () => { if (!state.conflict) saveNow(true); });
window.addEventListener("pagehide", () => {
  const local = readLocal();
  if (!local || !local.dirty || state.conflict) return;
  // Best effort on the way out; the local copy is offered back on the next visit anyway.
  postJSON(`/drafts/${draftId}/save`, { document: local.document, base_version: state.version, autosave: true }, true)
    .catch(() => {});
});

// --- conflict ------------------------------------------------------------------------

function showConflict(data) {
  state.conflict = data.current;
  setStatus("Not saved: someone else saved this draft meanwhile. Choose below.", "error");
  const old = document.getElementById("conflict");
  if (old) old.remove();
  const box = document.createElement("section");
  box.id = "conflict";
  box.className = "flash flash-error banner";
  box.setAttribute("role", "alert");
  box.setAttribute("aria-labelledby", "conflict-title");
  const title = document.createElement("h2");
  title.id = "conflict-title";
  title.textContent = `Someone else saved this draft (version ${data.current.version}) while you were editing.`;
  const intro = document.createElement("p");
  intro.textContent = "Where your version differs from theirs (their text first, then yours):";
  const list = document.createElement("ul");
  list.className = "changes";
  for (const change of data.changes || []) {
    const li = document.createElement("li");
    li.textContent = change;
    list.append(li);
  }
  if (!(data.changes || []).length) {
    const li = document.createElement("li");
    li.textContent = "No difference in content.";
    list.append(li);
  }
  const note = document.createElement("p");
  note.textContent = "Nothing is lost either way: the version you do not keep stays in the draft's history.";
  const keep = document.createElement("button");
  keep.type = "button";
  keep.className = "primary";
  keep.textContent = "Keep mine";
  const take = document.createElement("button");
  take.type = "button";
  take.textContent = "Take theirs";
  keep.addEventListener("click", () => resolveConflict("mine"));
  take.addEventListener("click", () => resolveConflict("theirs"));
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(keep, take);
  box.append(title, intro, list, note, actions);
  banners.append(box);
  keep.focus();
}

async function resolveConflict(choice) {
  const theirs = state.conflict;
  const mine = model.document();
  // Mine is saved on top of theirs first, so it is a revision either way.
  let result = await postJSON(`/drafts/${draftId}/save`, { document: mine, base_version: theirs.version, autosave: false });
  if (result.status === 409) { showConflict(result.data); return; }
  if (result.status !== 200) { setStatus(`Not saved: the server answered ${result.status}; try again.`, "error"); return; }
  let kept = result.data;
  if (choice === "theirs") {
    result = await postJSON(`/drafts/${draftId}/save`, { document: theirs.document, base_version: kept.version, autosave: false });
    if (result.status === 409) { showConflict(result.data); return; }
    if (result.status !== 200) { setStatus(`Not saved: the server answered ${result.status}; try again.`, "error"); return; }
    model.load(theirs.document);
    render();
    announce(`Took their version; yours is revision ${kept.head} in the history.`);
    kept = result.data;
  } else {
    announce("Kept your version; theirs stays in the history.");
  }
  state.conflict = null;
  state.version = kept.version;
  state.savedText = canonical(model.document());
  state.savedAt = new Date();
  writeLocal(false);
  const box = document.getElementById("conflict");
  if (box) box.remove();
  setStatus(`${savedLine()} ${choice === "theirs" ? "Their version is shown; yours is in the history." : "Your version was kept; theirs is in the history."}`, "ok");
  schedulePreview();
}

// --- validation and preview ---------------------------------------------------------

const frames = {
  desktop: document.getElementById("preview-desktop"),
  phone: document.getElementById("preview-phone"),
};
const textPane = document.getElementById("preview-text");
const checksList = document.getElementById("page-checks");
const previewNote = document.getElementById("preview-note");
let visiblePane = "desktop";

for (const button of document.querySelectorAll("[data-preview]")) {
  button.addEventListener("click", () => {
    visiblePane = button.dataset.preview;
    for (const other of document.querySelectorAll("[data-preview]")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    for (const pane of document.querySelectorAll("[data-pane]")) pane.hidden = pane.dataset.pane !== visiblePane;
    loadFrames();
  });
}

function loadFrames() {
  const frame = frames[visiblePane];
  if (frame && state.previewUrl && frame.dataset.url !== state.previewUrl) {
    frame.dataset.url = state.previewUrl;
    frame.src = state.previewUrl;
  }
}

function schedulePreview() {
  window.clearTimeout(state.previewTimer);
  state.previewTimer = window.setTimeout(runCheck, PREVIEW_DELAY);
}

async function runCheck() {
  const seq = ++state.previewSeq;
  let result;
  try {
    result = await postJSON(`/drafts/${draftId}/check`, { document: model.document() });
  } catch (error) {
    previewNote.textContent = "The preview could not be refreshed: no connection to the server.";
    return;
  }
  if (seq < state.previewShown || result.status !== 200 || !result.data) {
    if (result.status !== 200) previewNote.textContent = `The preview could not be refreshed (server answered ${result.status}).`;
    return;
  }
  state.previewShown = seq;
  const data = result.data;
  const messages = [...data.problems, ...data.findings.filter((f) => f.field)];
  const unplaced = showMessages(formNode, messages, state.showAll);
  const pageLevel = [...unplaced, ...data.findings.filter((f) => !f.field)];
  checksList.replaceChildren(...pageLevel.map((f) => {
    const li = document.createElement("li");
    const badge = document.createElement("span");
    badge.className = `badge badge-${f.level}`;
    badge.textContent = f.level;
    const text = document.createElement("span");
    text.textContent = f.field ? `${f.field}: ${f.message}` : f.message;
    li.append(badge, text);
    return li;
  }));
  if (data.html_bytes !== undefined) {
    const li = document.createElement("li");
    const badge = document.createElement("span");
    badge.className = "badge badge-info";
    badge.textContent = "size";
    const text = document.createElement("span");
    text.textContent = `HTML ${(data.html_bytes / 1024).toFixed(1)} KB of the ${Math.round(data.limit_bytes / 1024)} KB limit (Gmail clips messages over about 102 KB).`;
    li.append(badge, text);
    checksList.append(li);
  }
  const errors = data.problems.length;
  if (data.preview) {
    state.previewUrl = data.preview;
    textPane.textContent = data.text;
    previewNote.textContent = `Preview updated at ${timeOf(new Date())}.`;
    loadFrames();
  } else {
    previewNote.textContent = `${errors} problem${errors === 1 ? "" : "s"} to fix before the email can be shown; the preview shows the last version that could be rendered.`;
  }
  root.dataset.checked = String(seq);
}

// --- start ------------------------------------------------------------------------------

render();
offerLocalCopy();
runCheck();
