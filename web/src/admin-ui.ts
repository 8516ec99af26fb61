// Building blocks of the admin pages, plain DOM like the rest of the app: labelled fields, forms
// that show the edge's error in an alert region, tables with captions and a refreshable list area.
import { h, replaceChildren } from "./dom.ts";

type Child = Node | string | null | undefined | false;

let nextId = 0;

/** A page-unique element id with `prefix`. */
export function uid(prefix: string): string {
  return `${prefix}-${++nextId}`;
}

/** A labelled control (`<label for>`); `help`, when given, describes it (aria-describedby). */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement, help?: string): HTMLElement {
  if (!control.id) control.id = uid(control.name || "field");
  let helpEl: HTMLElement | null = null;
  if (help) {
    helpEl = h("span", { class: "field-help", id: uid("help") }, help);
    control.setAttribute("aria-describedby", helpEl.id);
  }
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, helpEl);
}

/**
 * Text that may be long (a name, an email): one line, cut short with an ellipsis (styles.css
 * `.clip`), the whole of it in the title, so a long value never pushes a row's buttons away.
 */
export function clipped(text: string, tag: "span" | "code" = "span"): HTMLElement {
  return h(tag, { class: "clip", title: text }, text);
}

/**
 * Limits `input` to `max` characters without cutting a pasted value short, as `maxlength` would
 * silently: a longer value is invalid, the browser says so ("at most 63 characters") and the form
 * is not sent. Returns `input`.
 */
export function maxChars(input: HTMLInputElement, max: number): HTMLInputElement {
  const check = (): void => {
    const n = input.value.length;
    input.setCustomValidity(n > max ? `Use at most ${max} characters (this has ${n}).` : "");
  };
  input.addEventListener("input", check);
  check();
  return input;
}

/** A `<select>` of `options` (`[value, text]`), with `placeholder` as an empty first choice when given. */
export function select(name: string, options: readonly (readonly [string, string])[], placeholder?: string): HTMLSelectElement {
  return h(
    "select",
    { name, required: true },
    placeholder !== undefined ? h("option", { value: "" }, placeholder) : null,
    ...options.map(([value, text]) => h("option", { value }, text)),
  );
}

/** Refills a select with `ids` after a "choose…" entry (`none` when empty), keeping the choice when still there. */
export function fillIds(sel: HTMLSelectElement, ids: readonly string[], none: string): void {
  const chosen = sel.value;
  replaceChildren(sel, h("option", { value: "" }, ids.length ? "choose…" : none), ...ids.map((v) => h("option", { value: v }, v)));
  sel.value = ids.includes(chosen) ? chosen : "";
}

/** The message of an error from the edge or the network, in plain words (api.ts `plainMessage`). */
export function errorText(err: unknown): string {
  return (err as Error).message;
}

export interface AdminForm {
  form: HTMLFormElement;
  /** Shows `message` as the form's problem (announced: role=alert). */
  fail(message: string): void;
}

/**
 * A form (a card) titled `title` with `fields` and a submit button. On submit the browser's own validation
 * runs first; then `onSubmit`, with the button disabled; an error it throws is shown in the form's
 * alert region, and a string it answers in its status region.
 */
export function adminForm(title: string, submitText: string, fields: Child[], onSubmit: () => Promise<string | void>): AdminForm {
  const titleId = uid("form-title");
  const error = h("p", { class: "error", role: "alert" });
  const status = h("p", { class: "form-status muted", role: "status" });
  const submit = h("button", { type: "submit", class: "primary" }, submitText);
  const form = h(
    "form",
    { class: "card admin-form", method: "post", "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    h("div", { class: "admin-fields" }, ...fields, submit),
    error,
    status,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    status.textContent = "";
    try {
      const done = await onSubmit();
      if (done) status.textContent = done;
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submit.disabled = false;
    }
  });
  return { form, fail: (message) => (error.textContent = message) };
}

/** A table with a caption, column headers and one row per entry; `empty` replaces it when there are none. */
export function table(caption: string, headers: readonly string[], rows: readonly Child[][], empty: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "admin-table" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, ...rows.map((cells) => h("tr", {}, ...cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

/** A date-time cell for epoch ms (or an ISO string): the local time, with the exact value as its datetime. */
export function timeCell(at: number | string | null): Child {
  if (at === null) return h("span", { class: "muted" }, "never");
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return String(at);
  return h("time", { datetime: date.toISOString() }, date.toLocaleString());
}

/**
 * A list area that loads with `load` and shows what `render` makes of it, or the error; busy
 * while loading. `reload()` loads again (after every change a page makes).
 */
export class ListArea<T> {
  readonly element = h("div", { class: "list-area", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading…"));
  private stopped = false;
  /** What was last rendered, so a reload with the same data leaves the DOM (and focus) alone. */
  private shown = "";

  constructor(
    private readonly what: string,
    private readonly load: () => Promise<T>,
    private readonly render: (data: T) => Child,
  ) {}

  /**
   * Loads and shows the list again. A `background` reload (a timer's) leaves the list alone while
   * the keyboard focus is in it, so a refresh never pulls a row out from under the user.
   */
  async reload(opts: { background?: boolean } = {}): Promise<T | null> {
    this.element.setAttribute("aria-busy", "true");
    try {
      const data = await this.load();
      if (this.stopped) return null;
      if (opts.background && this.element.contains(document.activeElement)) return data;
      const key = JSON.stringify(data);
      if (key !== this.shown) replaceChildren(this.element, this.render(data));
      this.shown = key;
      return data;
    } catch (err) {
      this.shown = "";
      if (!this.stopped) replaceChildren(this.element, h("p", { class: "error", role: "alert" }, `Could not load ${this.what}: ${errorText(err)}`));
      return null;
    } finally {
      this.element.setAttribute("aria-busy", "false");
    }
  }

  stop(): void {
    this.stopped = true;
  }
}

/** A section of an admin page: a heading and its content. */
export function section(title: string, ...children: Child[]): HTMLElement {
  const id = uid("section");
  return h("section", { class: "card admin-section", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

/**
 * Runs a page's row actions (disable, remove, revoke…): asks `confirmText` first when given, shows
 * a refusal in the page's alert region, and reloads the page's lists after every attempt.
 */
export class Actions {
  readonly region = h("p", { class: "error", role: "alert" });

  constructor(private readonly reload: () => void) {}

  /** A button that runs `action`; `label` is its accessible name (say which row it acts on). */
  button(label: string, text: string, action: () => Promise<unknown>, opts: { confirm?: string; danger?: boolean } = {}): HTMLButtonElement {
    const el = h("button", { type: "button", class: `text-button${opts.danger ? " danger" : ""}`, "aria-label": label, title: label }, text);
    el.addEventListener("click", async () => {
      if (opts.confirm && !confirm(opts.confirm)) return;
      el.disabled = true;
      this.region.textContent = "";
      try {
        await action();
      } catch (err) {
        this.region.textContent = `${label}: ${errorText(err)}`;
      } finally {
        el.disabled = false;
        this.reload();
      }
    });
    return el;
  }
}
