// The editor's form: the fields and its blocks, built from the document and
// read back into it. Every input carries data-path (the field's dotted path in the
// document, e.g. "blocks.3.statement.text") so the server's messages land beside it.
// Structural changes (add, remove, duplicate, move) re-render the list and put the
// focus back where the editor was; typing only updates the model.

import { markdownToolbar } from "./markdown.js";
import { photoControls } from "./photos.js";

export const BLOCK_TYPES = [
  ["paragraph", "Paragraph"],
  ["heading", "Heading"],
  ["statement", "Statement card"],
  ["image", "Image"],
  ["button", "Button"],
  ["divider", "Divider"],
];
const LABELS = Object.fromEntries(BLOCK_TYPES);

let nextId = 1;

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children || []) if (child) node.append(child);
  return node;
}

// --- the model: the document with a stable id per block -------------------------

function emptyBlock(kind) {
  switch (kind) {
    case "paragraph": return "";
    case "heading": return "";
    case "statement": return { name: "", roles: [""], country: "", photo: "", photo_alt: "", text: "" };
    case "image": return { src: "", alt: "", caption: "", link: "" };
    case "button": return { label: "", url: "" };
    default: return {};
  }
}

function fromDocumentBlock(block) {
  const kind = Object.keys(block)[0];
  let value = block[kind];
  if (kind === "statement") {
    value = Object.assign(emptyBlock("statement"), value);
    value.roles = Array.isArray(value.roles) && value.roles.length ? value.roles.slice() : [""];
  } else if (kind === "image" || kind === "button") {
    value = Object.assign(emptyBlock(kind), value);
  } else if (kind === "divider") {
    value = {};
  } else if (typeof value !== "string") {
    value = value === null || value === undefined ? "" : String(value);
  }
  return { id: nextId++, kind, value };
}

const TOP_FIELDS = ["number", "year", "date", "language", "title", "subtitle", "subject", "preheader"];

export class Model {
  constructor(document) { this.load(document); }

  load(document) {
    this.fields = {};
    this.extra = {};
    for (const [key, value] of Object.entries(document || {})) {
      if (key === "blocks") continue;
      if (key === "contact") this.fields.contact = Array.isArray(value) ? value.join("\n") : "";
      else if (TOP_FIELDS.includes(key) || key === "about" || key === "newsletter") {
        this.fields[key] = value === null || value === undefined ? "" : String(value);
      } else this.extra[key] = value; // kept as it was: the server says what is wrong
    }
    this.blocks = (Array.isArray(document && document.blocks) ? document.blocks : [])
      .filter((b) => b && typeof b === "object" && Object.keys(b).length === 1)
      .map(fromDocumentBlock);
  }

  document() {
    const doc = Object.assign({}, this.extra);
    const f = this.fields;
    if (f.newsletter) doc.newsletter = f.newsletter;
    for (const key of ["number", "year"]) {
      const raw = (f[key] || "").trim();
      if (raw !== "") doc[key] = /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    if ((f.date || "").trim()) doc.date = f.date.trim();
    if ((f.language || "").trim()) doc.language = f.language.trim();
    doc.title = f.title || "";
    for (const key of ["subtitle", "subject", "preheader", "about"]) {
      if ((f[key] || "").trim()) doc[key] = f[key];
    }
    if ((f.contact || "").trim()) doc.contact = f.contact.replace(/\s+$/, "").split("\n");
    doc.blocks = this.blocks.map((b) => ({ [b.kind]: blockValue(b) }));
    return doc;
  }

  insert(index, kind) {
    const block = { id: nextId++, kind, value: emptyBlock(kind) };
    this.blocks.splice(index, 0, block);
    return block;
  }

  duplicate(index) {
    const copy = fromDocumentBlock(JSON.parse(JSON.stringify({ [this.blocks[index].kind]: blockValue(this.blocks[index]) })));
    this.blocks.splice(index + 1, 0, copy);
    return copy;
  }

  move(from, to) {
    if (to < 0 || to >= this.blocks.length || from === to) return false;
    const [block] = this.blocks.splice(from, 1);
    this.blocks.splice(to, 0, block);
    return true;
  }
}

function blockValue(block) {
  const v = block.value;
  switch (block.kind) {
    case "paragraph":
    case "heading":
      return v;
    case "statement": {
      const out = { name: v.name, roles: v.roles.filter((r) => r.trim() !== "") };
      if (v.country) out.country = v.country;
      if (v.photo) out.photo = v.photo;
      if (v.photo_alt) out.photo_alt = v.photo_alt;
      out.text = v.text;
      return out;
    }
    case "image": {
      const out = { src: v.src, alt: v.alt };
      if (v.caption) out.caption = v.caption;
      if (v.link) out.link = v.link;
      return out;
    }
    case "button":
      return { label: v.label, url: v.url };
    default:
      return {};
  }
}

export function describeBlock(block, position) {
  const name = block.kind === "statement" && block.value.name ? ` (${block.value.name})` : "";
  return `${LABELS[block.kind] || block.kind} ${position}${name}`;
}

function wordCount(text) {
  return (text || "").split(/\s+/).filter(Boolean).length;
}

export function removalSummary(block, position) {
  const v = block.value;
  const what = describeBlock(block, position);
  switch (block.kind) {
    case "paragraph": return `${what} and its ${wordCount(v)} words will be removed.`;
    case "heading": return `${what} "${v}" will be removed.`;
    case "statement": {
      const parts = [`${wordCount(v.text)} words of text`, `${v.roles.filter(Boolean).length} role lines`];
      if (v.photo) parts.push("its photo (the upload stays in the media library)");
      return `${what} will be removed with ${parts.join(", ")}.`;
    }
    case "image": return `${what} will be removed (the upload stays in the media library).`;
    case "button": return `${what} "${v.label}" will be removed.`;
    default: return `${what} will be removed.`;
  }
}

// --- rendering --------------------------------------------------------------------

function errorSlot(id) {
  return el("p", { id: `${id}-err`, className: "field-error", hidden: true });
}

function field(opts) {
  // opts: id, label, path, value, type ("text" | "number" | "date" | "textarea"), hint,
  // oninput(value), markdown (bool), required
  const input = opts.type === "textarea"
    ? el("textarea", { id: opts.id, "data-path": opts.path, rows: opts.rows || 5 })
    : el("input", { id: opts.id, type: opts.type || "text", "data-path": opts.path, inputmode: opts.inputmode, autocomplete: "off" });
  input.value = opts.value || "";
  if (opts.required) input.setAttribute("aria-required", "true");
  input.addEventListener("input", () => { input.dataset.touched = "1"; opts.oninput(input.value); });
  const hintId = opts.hint ? `${opts.id}-hint` : null;
  if (hintId) input.setAttribute("data-hint", hintId);
  if (hintId) input.setAttribute("aria-describedby", hintId);
  const label = el("label", { for: opts.id, className: "field-label", text: opts.label });
  const wrap = el("div", { className: `field${opts.wide ? " wide" : ""}` }, [
    label,
    hintId ? el("span", { id: hintId, className: "hint", text: opts.hint }) : null,
    opts.markdown ? markdownToolbar(input, opts.label) : null,
    input,
    errorSlot(opts.id),
  ]);
  return wrap;
}

export class BlockForm {
  constructor(model, roots, hooks) {
    this.model = model;
    this.roots = roots; // {fields, footer, blocks, addTop}
    this.hooks = hooks; // {changed(), confirmRemove(text) -> Promise<bool>, announce(text), countries, media}
    this.dragging = null;
  }

  changed() { this.hooks.changed(); }

  renderFields() {
    const f = this.model.fields;
    const set = (key) => (value) => { f[key] = value; this.changed(); if (key === "title") this.hooks.titled(value); };
    const defs = [
      { key: "number", label: "Issue number", type: "text", inputmode: "numeric", required: true },
      { key: "year", label: "Year", type: "text", inputmode: "numeric", required: true },
      { key: "date", label: "Date", type: "date", required: true },
      { key: "language", label: "Language", hint: "A tag such as en or zh-Hans" },
      { key: "title", label: "Title", wide: true, required: true },
      { key: "subtitle", label: "Subtitle (optional)", wide: true, markdown: false },
      { key: "subject", label: "Subject (optional)", hint: "Default: the title", wide: true },
      { key: "preheader", label: "Preheader", hint: "The line inboxes show next to the subject", wide: true },
    ];
    this.roots.fields.replaceChildren(...defs.map((d) => field({
      id: `f-${d.key}`, path: d.key, value: f[d.key], oninput: set(d.key), ...d,
    })));
    this.roots.footer.replaceChildren(
      field({ id: "f-contact", path: "contact", label: "Contact block (one line per line)", type: "textarea", rows: 8, value: f.contact, oninput: set("contact"), wide: true }),
      field({ id: "f-about", path: "about", label: "About text", type: "textarea", rows: 4, value: f.about, oninput: set("about"), markdown: true, wide: true }),
    );
  }

  addBar(position, label) {
    const id = `add-${position}-${nextId++}`;
    const select = el("select", { id, "aria-label": label });
    for (const [kind, name] of BLOCK_TYPES) select.append(el("option", { value: kind, text: name }));
    const button = el("button", { type: "button", className: "add-button", text: label });
    button.addEventListener("click", () => {
      const block = this.model.insert(position, select.value);
      this.renderBlocks();
      this.changed();
      this.focusBlock(block.id, "first");
      this.hooks.announce(`Added ${describeBlock(block, position + 1)}.`);
    });
    return el("div", { className: "add-bar" }, [select, button]);
  }

  renderBlocks(focus) {
    const items = this.model.blocks.map((block, index) => this.renderBlock(block, index));
    this.roots.blocks.replaceChildren(...items);
    this.roots.addTop.replaceChildren(this.addBar(0, this.model.blocks.length ? "Add at the start" : "Add the first block"));
    if (focus) this.focusBlock(focus.id, focus.control);
  }

  focusBlock(id, control) {
    const li = this.roots.blocks.querySelector(`[data-block-id="${id}"]`);
    if (!li) return;
    const target = control === "first"
      ? li.querySelector("input, textarea, select:not(.add-bar select)")
      : li.querySelector(`[data-control="${control}"]`);
    (target || li.querySelector("button")).focus();
  }

  renderBlock(block, index) {
    const position = index + 1;
    const count = this.model.blocks.length;
    const title = el("h3", { className: "block-title", id: `b${block.id}-title`, text: describeBlock(block, position) });
    // A span, not a <button>: Chromium starts no drag from a form control.
    const handle = el("span", {
      role: "button", tabindex: "0", className: "handle", draggable: "true", "data-control": "handle",
      "aria-label": `Move ${describeBlock(block, position)}: press the up or down arrow key`,
      "aria-describedby": "reorder-help", text: "⠿",
    });
    handle.addEventListener("keydown", (event) => {
      if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        event.preventDefault();
        this.move(index, event.key === "ArrowUp" ? index - 1 : index + 1, "handle");
      }
    });
    const button = (label, control, action, disabled) => {
      const b = el("button", { type: "button", "data-control": control, text: label, disabled,
        "aria-label": `${label}: ${describeBlock(block, position)}` });
      b.addEventListener("click", action);
      return b;
    };
    const tools = el("div", { className: "block-tools" }, [
      handle,
      button("Move up", "up", () => this.move(index, index - 1, "up"), index === 0),
      button("Move down", "down", () => this.move(index, index + 1, "down"), index === count - 1),
      button("Duplicate", "duplicate", () => {
        const copy = this.model.duplicate(index);
        this.renderBlocks({ id: copy.id, control: "duplicate" });
        this.changed();
        this.hooks.announce(`Duplicated: ${describeBlock(copy, position + 1)}.`);
      }),
      button("Remove", "remove", () => this.remove(index)),
    ]);
    const body = el("div", { className: "block-body" }, this.blockFields(block, index));
    const li = el("li", { className: `block block-${block.kind}`, "data-block-id": block.id, "aria-labelledby": title.id }, [
      el("div", { className: "block-head" }, [title, tools]),
      el("p", { className: "field-error", id: `b${block.id}-err`, "data-path": `blocks.${index}`, hidden: true }),
      body,
      this.addBar(index + 1, "Add below"),
    ]);
    handle.addEventListener("dragstart", (event) => {
      this.dragging = block.id;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", String(block.id));
    });
    handle.addEventListener("dragend", () => { this.dragging = null; this.clearDrop(); });
    li.addEventListener("dragover", (event) => {
      if (this.dragging === null) return;
      event.preventDefault();
      const rect = li.getBoundingClientRect();
      this.clearDrop();
      li.classList.add(event.clientY < rect.top + rect.height / 2 ? "drop-before" : "drop-after");
    });
    li.addEventListener("drop", (event) => {
      if (this.dragging === null) return;
      event.preventDefault();
      const from = this.model.blocks.findIndex((b) => b.id === this.dragging);
      const rect = li.getBoundingClientRect();
      let to = index + (event.clientY < rect.top + rect.height / 2 ? 0 : 1);
      if (from < to) to -= 1;
      this.dragging = null;
      this.clearDrop();
      this.move(from, to, "handle");
    });
    return li;
  }

  clearDrop() {
    for (const node of this.roots.blocks.querySelectorAll(".drop-before, .drop-after")) {
      node.classList.remove("drop-before", "drop-after");
    }
  }

  move(from, to, control) {
    if (!this.model.move(from, to)) return;
    const block = this.model.blocks[to];
    this.renderBlocks({ id: block.id, control });
    this.changed();
    this.hooks.announce(`Moved ${describeBlock(block, to + 1)}: now ${to + 1} of ${this.model.blocks.length}.`);
  }

  async remove(index) {
    const block = this.model.blocks[index];
    const ok = await this.hooks.confirmRemove(removalSummary(block, index + 1));
    if (!ok) { this.focusBlock(block.id, "remove"); return; }
    this.model.blocks.splice(index, 1);
    const neighbour = this.model.blocks[Math.min(index, this.model.blocks.length - 1)];
    this.renderBlocks(neighbour ? { id: neighbour.id, control: "remove" } : null);
    if (!neighbour) this.roots.addTop.querySelector("select").focus();
    this.changed();
    this.hooks.announce(`Removed ${describeBlock(block, index + 1)}.`);
  }

  blockFields(block, index) {
    const base = `b${block.id}`;
    const path = `blocks.${index}`;
    const v = block.value;
    const changed = () => this.changed();
    switch (block.kind) {
      case "paragraph":
        return [field({ id: `${base}-text`, path: `${path}.paragraph`, label: "Paragraph text", type: "textarea", value: v, markdown: true, required: true,
          oninput: (x) => { block.value = x; changed(); } })];
      case "heading":
        return [field({ id: `${base}-text`, path: `${path}.heading`, label: "Heading", value: v, required: true,
          oninput: (x) => { block.value = x; changed(); } })];
      case "statement":
        return this.statementFields(block, index);
      case "image": {
        const p = `${path}.image`;
        const src = field({ id: `${base}-src`, path: `${p}.src`, label: "Image address", value: v.src, required: true, oninput: (x) => { v.src = x; changed(); } });
        return [
          src,
          photoControls(src.querySelector("input"), this.hooks.media, `${base}-src`),
          field({ id: `${base}-alt`, path: `${p}.alt`, label: "Alt text (what the image shows)", value: v.alt, required: true, oninput: (x) => { v.alt = x; changed(); } }),
          field({ id: `${base}-caption`, path: `${p}.caption`, label: "Caption (optional)", value: v.caption, oninput: (x) => { v.caption = x; changed(); } }),
          field({ id: `${base}-link`, path: `${p}.link`, label: "Link (optional)", value: v.link, oninput: (x) => { v.link = x; changed(); } }),
        ];
      }
      case "button": {
        const p = `${path}.button`;
        return [
          field({ id: `${base}-label`, path: `${p}.label`, label: "Button label", value: v.label, required: true, oninput: (x) => { v.label = x; changed(); } }),
          field({ id: `${base}-url`, path: `${p}.url`, label: "Link address", value: v.url, required: true, oninput: (x) => { v.url = x; changed(); } }),
        ];
      }
      default:
        return [el("p", { className: "muted small", text: "A horizontal line between the blocks above and below." })];
    }
  }

  statementFields(block, index) {
    const base = `b${block.id}`;
    const p = `blocks.${index}.statement`;
    const v = block.value;
    const changed = () => this.changed();
    const retitle = () => {
      const title = document.getElementById(`${base}-title`);
      if (title) title.textContent = describeBlock(block, index + 1);
    };
    const roles = el("fieldset", { className: "roles" }, [el("legend", { text: "Role lines" })]);
    const list = el("div", { className: "role-lines" });
    const drawRoles = (focusIndex) => {
      list.replaceChildren(...v.roles.map((role, i) => {
        const id = `${base}-role-${i}`;
        const input = el("input", { id, type: "text", "data-path": `${p}.roles.${i}`, autocomplete: "off" });
        input.value = role;
        input.addEventListener("input", () => { v.roles[i] = input.value; changed(); });
        const remove = el("button", { type: "button", text: "Remove line", "aria-label": `Remove line ${i + 1} of the roles` });
        remove.addEventListener("click", () => {
          v.roles.splice(i, 1);
          if (!v.roles.length) v.roles.push("");
          drawRoles(Math.min(i, v.roles.length - 1));
          changed();
        });
        return el("div", { className: "role-line" }, [
          el("label", { for: id, className: "field-label", text: `Role line ${i + 1}` }),
          el("div", { className: "inline-controls" }, [input, remove]),
          errorSlot(id),
        ]);
      }));
      if (focusIndex !== undefined) {
        const target = document.getElementById(`${base}-role-${focusIndex}`);
        if (target) target.focus();
      }
    };
    drawRoles();
    const addRole = el("button", { type: "button", text: "Add a role line" });
    addRole.addEventListener("click", () => { v.roles.push(""); drawRoles(v.roles.length - 1); changed(); });
    roles.append(list, addRole, errorSlot(`${base}-roles`));
    roles.lastChild.setAttribute("data-path", `${p}.roles`);

    const countryId = `${base}-country`;
    const select = el("select", { id: countryId, "data-path": `${p}.country` });
    select.append(el("option", { value: "", text: "(none)" }));
    const codes = this.hooks.countries.map(([code]) => code);
    for (const [code, name] of this.hooks.countries) select.append(el("option", { value: code, text: name }));
    select.append(el("option", { value: "other", text: "Other…" }));
    const otherId = `${base}-country-other`;
    const other = el("input", { id: otherId, type: "text", autocomplete: "off", "data-path": `${p}.country` });
    const otherWrap = el("div", { className: "field" }, [
      el("label", { for: otherId, className: "field-label", text: "Other country (code or name)" }), other,
    ]);
    const isOther = v.country && !codes.includes(v.country);
    select.value = isOther ? "other" : (v.country || "");
    other.value = isOther ? v.country : "";
    otherWrap.hidden = !isOther;
    select.addEventListener("change", () => {
      otherWrap.hidden = select.value !== "other";
      v.country = select.value === "other" ? other.value : select.value;
      changed();
    });
    other.addEventListener("input", () => { v.country = other.value; changed(); });
    const country = el("div", { className: "field" }, [
      el("label", { for: countryId, className: "field-label", text: "Country" }), select, errorSlot(countryId), otherWrap,
    ]);

    const photo = field({ id: `${base}-photo`, path: `${p}.photo`, label: "Photo address (optional)", value: v.photo,
      hint: "Upload or choose a photo; without one the card shows a monogram", oninput: (x) => { v.photo = x; changed(); } });
    return [
      field({ id: `${base}-name`, path: `${p}.name`, label: "Name", value: v.name, required: true,
        oninput: (x) => { v.name = x; retitle(); changed(); } }),
      roles,
      country,
      photo,
      photoControls(photo.querySelector("input"), this.hooks.media, `${base}-photo`),
      field({ id: `${base}-alt`, path: `${p}.photo_alt`, label: "Photo alt text", hint: "Default: the name", value: v.photo_alt,
        oninput: (x) => { v.photo_alt = x; changed(); } }),
      field({ id: `${base}-text`, path: `${p}.text`, label: "Statement text", type: "textarea", rows: 7, value: v.text, markdown: true, required: true,
        oninput: (x) => { v.text = x; changed(); } }),
    ];
  }
}

// --- messages beside their fields ------------------------------------------------

// On a new, empty draft, messages about fields nobody has filled in yet wait until the
// editor has typed there (or saves a revision): a page all in red helps no one.
export function showMessages(form, messages, showAll) {
  for (const node of form.querySelectorAll(".field-error")) {
    node.hidden = true;
    node.textContent = "";
    node.classList.remove("has-error", "field-warning");
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const hint = input.getAttribute("data-hint");
    if (hint) input.setAttribute("aria-describedby", hint); else input.removeAttribute("aria-describedby");
  }
  const unplaced = [];
  for (const m of messages) {
    const target = placeFor(form, m.field);
    if (!target) { unplaced.push(m); continue; }
    const { input, slot } = target;
    if (!showAll && input && !input.dataset.touched && input.value === "") continue;
    if (!showAll && !input && m.field === "blocks") continue;
    if (slot.textContent) slot.append(document.createElement("br"));
    slot.append(`${m.level === "warning" ? "Warning: " : ""}${m.message}`);
    slot.hidden = false;
    slot.classList.add(m.level === "error" ? "has-error" : "field-warning");
    if (input) {
      if (m.level === "error") input.setAttribute("aria-invalid", "true");
      const ids = new Set((input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
      ids.add(slot.id);
      input.setAttribute("aria-describedby", [...ids].join(" "));
    }
  }
  return unplaced;
}

function placeFor(form, path) {
  if (!path) return null;
  let parts = path.split(".");
  while (parts.length) {
    const key = parts.join(".");
    const input = form.querySelector(`input[data-path="${CSS.escape(key)}"], textarea[data-path="${CSS.escape(key)}"], select[data-path="${CSS.escape(key)}"]`);
    if (input) return { input, slot: document.getElementById(`${input.id}-err`) };
    const slot = form.querySelector(`.field-error[data-path="${CSS.escape(key)}"]`);
    if (slot) return { input: null, slot };
    parts = parts.slice(0, -1);
  }
  return null;
}
