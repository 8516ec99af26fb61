// The browser client's entry point: the app shell (header with theme toggle and sign-out), the
// sign-in gate and the hash router (routes.ts) between the sessions page and a terminal page.
import "@xterm/xterm/css/xterm.css";
import "./styles.css";
import { Api } from "./api.ts";
import { button, h } from "./dom.ts";
import { mountLoginPage } from "./login-page.ts";
import { parseRoute } from "./routes.ts";
import { mountSessionsPage } from "./sessions-page.ts";
import { mountTerminalPage } from "./terminal-page.ts";
import { type ThemePref, cycleThemePref, initTheme, themePref } from "./theme.ts";

const THEME_LABELS: Record<ThemePref, { text: string; label: string }> = {
  system: { text: "◐ Auto", label: "Theme: follows the system (click for light)" },
  light: { text: "☀ Light", label: "Theme: light (click for dark)" },
  dark: { text: "☾ Dark", label: "Theme: dark (click to follow the system)" },
};

function start(): void {
  initTheme();
  const app = document.getElementById("app")!;
  const main = h("div", { class: "app-main" });
  let dispose: () => void = () => {};
  let signedIn = false;

  const api = new Api(() => {
    if (signedIn) showLogin();
  });

  const themeButton = button("", "", () => renderTheme(cycleThemePref()), { class: "text-button theme-toggle" });
  const signOut = button("Sign out", "Sign out", () => void doSignOut(), { class: "text-button", hidden: true });
  const header = h(
    "header",
    { class: "app-header" },
    h("a", { class: "brand", href: "#/", "aria-label": "edgetty: sessions" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "▍"), "edgetty"),
    h("span", { class: "spacer" }),
    themeButton,
    signOut,
  );
  app.replaceChildren(header, main);

  function renderTheme(pref: ThemePref): void {
    const { text, label } = THEME_LABELS[pref];
    themeButton.textContent = text;
    themeButton.setAttribute("aria-label", label);
    themeButton.title = label;
  }
  renderTheme(themePref());

  function showPage(mount: () => () => void): void {
    dispose();
    dispose = mount();
  }

  function showLogin(): void {
    signedIn = false;
    signOut.hidden = true;
    showPage(() => mountLoginPage(main, api, onSignedIn));
  }

  function onSignedIn(): void {
    signedIn = true;
    signOut.hidden = false;
    route();
  }

  function route(): void {
    if (!signedIn) return;
    const r = parseRoute(location.hash);
    document.body.dataset["page"] = r.page;
    if (r.page === "terminal") {
      showPage(() => mountTerminalPage(main, { api, ...r, onSignedOut: showLogin }));
    } else {
      showPage(() => mountSessionsPage(main, api));
    }
  }

  async function doSignOut(): Promise<void> {
    dispose();
    dispose = () => {};
    await api.signOut().catch(() => {});
    showLogin();
  }

  async function boot(): Promise<void> {
    try {
      const me = await api.whoAmI();
      if (me) onSignedIn();
      else showLogin();
    } catch (err) {
      main.replaceChildren(
        h(
          "main",
          { class: "login-page" },
          h("div", { class: "card" }, h("p", { class: "error" }, `Cannot reach the edge: ${(err as Error).message}`), button("Try again", "Try again", () => void boot(), { class: "primary" })),
        ),
      );
    }
  }

  addEventListener("hashchange", route);
  void boot();
}

start();
