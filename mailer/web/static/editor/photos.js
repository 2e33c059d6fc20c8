// Photos for statement cards and image blocks, through the media library's endpoints:
// POST /media (multipart field "file", CSRF header) -> {url, hash, width, height},
// GET /media.json -> the uploads. The chosen URL goes into the field as if typed.

export function photoControls(input, media, idBase) {
  const wrap = document.createElement("div");
  wrap.className = "photo-controls";
  const fileId = `${idBase}-file`;
  const label = document.createElement("label");
  label.htmlFor = fileId;
  label.className = "field-label";
  label.textContent = "Upload a photo (JPEG, PNG or WebP)";
  const file = document.createElement("input");
  file.type = "file";
  file.id = fileId;
  file.accept = "image/jpeg,image/png,image/webp";
  const status = document.createElement("p");
  status.className = "small";
  status.setAttribute("role", "status");
  status.id = `${idBase}-upload-status`;
  file.setAttribute("aria-describedby", status.id);
  file.addEventListener("change", async () => {
    if (!file.files.length) return;
    status.textContent = `Uploading ${file.files[0].name}…`;
    try {
      const result = await media.upload(file.files[0]);
      set(input, result.url);
      status.textContent = `Uploaded ${file.files[0].name} (${result.width} × ${result.height}).`;
    } catch (error) {
      status.textContent = `Not uploaded: ${error.message}`;
      status.classList.add("field-error");
    }
    file.value = "";
  });
  const choose = document.createElement("button");
  choose.type = "button";
  choose.textContent = "Choose from the media library";
  choose.addEventListener("click", async () => {
    const url = await media.choose();
    if (url) set(input, url);
    input.focus();
  });
  wrap.append(label, file, choose, status);
  return wrap;
}

function set(input, url) {
  input.value = url;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

export class Media {
  constructor(csrf, dialog) {
    this.csrf = csrf;
    this.dialog = dialog;
  }

  async upload(blob) {
    const body = new FormData();
    body.append("file", blob, blob.name);
    const response = await fetch("/media", {
      method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": this.csrf },
    });
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (!response.ok || !data || !data.url) {
      throw new Error((data && data.error) || `the server answered ${response.status}`);
    }
    return data;
  }

  async choose() {
    const list = this.dialog.querySelector("#media-list");
    list.replaceChildren();
    let items = [];
    try {
      const response = await fetch("/media.json", { credentials: "same-origin", cache: "no-store" });
      if (response.ok) items = await response.json();
    } catch (error) { items = []; }
    if (!Array.isArray(items)) items = items.items || [];
    return new Promise((resolve) => {
      const done = (value) => { this.dialog.close(); resolve(value); };
      if (!items.length) {
        const empty = document.createElement("li");
        empty.textContent = "No photos uploaded yet.";
        list.append(empty);
      }
      for (const item of items) {
        const li = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        const img = document.createElement("img");
        img.src = item.url;
        img.alt = "";
        img.width = 64;
        img.height = 64;
        const caption = document.createElement("span");
        caption.textContent = `${item.filename || item.hash} (${item.width} × ${item.height})`;
        button.append(img, caption);
        button.addEventListener("click", () => done(item.url));
        li.append(button);
        list.append(li);
      }
      this.dialog.querySelector("#media-close").onclick = () => done(null);
      this.dialog.onclose = () => resolve(null);
      this.dialog.showModal();
    });
  }
}
