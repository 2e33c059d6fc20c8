// Bold, Italic and Link buttons for a text field that takes the YAML's inline Markdown.
// They only type the same characters an editor would (**, *, [text](https://...)),
// so what the field holds is exactly what a content file would hold.

function replaceSelection(input, before, after, placeholder, selectInner) {
  const start = input.selectionStart;
  const end = input.selectionEnd;
  const chosen = input.value.slice(start, end) || placeholder;
  input.setRangeText(before + chosen + after, start, end, "end");
  const innerStart = start + before.length;
  if (selectInner === "text") input.setSelectionRange(innerStart, innerStart + chosen.length);
  else if (selectInner === "after") {
    // the link address: select "https://" so typing replaces it
    const urlStart = innerStart + chosen.length + 2;
    input.setSelectionRange(urlStart, urlStart + "https://".length);
  }
  input.focus();
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

export function markdownToolbar(input, label) {
  const bar = document.createElement("div");
  bar.className = "md-toolbar";
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", `Formatting for ${label}`);
  const buttons = [
    ["Bold", "B", () => replaceSelection(input, "**", "**", "bold text", "text")],
    ["Italic", "I", () => replaceSelection(input, "*", "*", "italic text", "text")],
    ["Link", "Link", () => replaceSelection(input, "[", "](https://)", "link text", "after")],
  ];
  for (const [name, text, action] of buttons) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.className = `md-${name.toLowerCase()}`;
    button.setAttribute("aria-label", `${name} (${label})`);
    button.addEventListener("click", action);
    bar.append(button);
  }
  return bar;
}
