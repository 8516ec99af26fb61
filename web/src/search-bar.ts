// The find-in-terminal bar (Ctrl/Cmd+Shift+F or the toolbar button): incremental search through
// the screen and scrollback with xterm's search addon, Enter/Shift+Enter to step, Esc to close.
import type { SearchAddon } from "@xterm/addon-search";
import { button, h } from "./dom.ts";
import { searchColors, themeMode } from "./theme.ts";

/** A hidden-until-opened search bar driving one terminal's SearchAddon. */
export class SearchBar {
  readonly element: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly count: HTMLElement;

  constructor(
    private readonly search: SearchAddon,
    private readonly onClose: () => void,
  ) {
    this.input = h("input", {
      type: "search",
      class: "search-input",
      placeholder: "Find",
      "aria-label": "Find in terminal",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.count = h("span", { class: "search-count", "aria-live": "polite" });
    this.input.addEventListener("input", () => this.find("next", true));
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.find(ev.shiftKey ? "previous" : "next", false);
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        this.close();
      }
    });
    search.onDidChangeResults(({ resultIndex, resultCount }) => {
      this.count.textContent =
        resultCount === 0 ? "no matches" : resultIndex < 0 ? `${resultCount}+` : `${resultIndex + 1}/${resultCount}`;
    });
    this.element = h(
      "div",
      { class: "search-bar", role: "search", hidden: true },
      this.input,
      this.count,
      button("Previous match", "↑", () => this.find("previous", false), { class: "icon-button" }),
      button("Next match", "↓", () => this.find("next", false), { class: "icon-button" }),
      button("Close search", "✕", () => this.close(), { class: "icon-button" }),
    );
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  /** Shows the bar and focuses the query (selecting it, so typing replaces it). */
  open(): void {
    this.element.hidden = false;
    this.input.focus();
    this.input.select();
  }

  close(): void {
    this.element.hidden = true;
    this.search.clearDecorations();
    this.count.textContent = "";
    this.onClose();
  }

  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  private find(direction: "next" | "previous", incremental: boolean): void {
    const query = this.input.value;
    if (!query) {
      this.search.clearDecorations();
      this.count.textContent = "";
      return;
    }
    const colors = searchColors(themeMode());
    const options = {
      incremental,
      decorations: {
        matchBackground: colors.match,
        activeMatchBackground: colors.active,
        matchOverviewRuler: colors.match,
        activeMatchColorOverviewRuler: colors.active,
      },
    };
    if (direction === "next") this.search.findNext(query, options);
    else this.search.findPrevious(query, options);
  }
}
