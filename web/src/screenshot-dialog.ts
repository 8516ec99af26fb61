// A modal showing a terminal screenshot from the edge, with a link to save it.
import { button, h } from "./dom.ts";

/** Opens a dialog showing `image`; the object URL is released when the dialog closes. */
export function showScreenshot(image: Blob, filename: string): void {
  const url = URL.createObjectURL(image);
  const dialog = h(
    "dialog",
    { class: "screenshot-dialog", "aria-label": "Terminal screenshot" },
    h("img", { src: url, alt: "Screenshot of the terminal screen" }),
    h(
      "div",
      { class: "dialog-actions" },
      h("a", { href: url, download: filename, class: "text-button" }, "Save image"),
      button("Close screenshot", "Close", () => dialog.close(), { class: "text-button" }),
    ),
  );
  dialog.addEventListener("close", () => {
    URL.revokeObjectURL(url);
    dialog.remove();
  });
  // A click on the backdrop (outside the dialog's box) closes it.
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close();
  });
  document.body.append(dialog);
  dialog.showModal();
}
