// The browser client's entry point: the app shell (header with who is signed in, the admin link
// for admins, theme toggle and sign-out), the sign-in gate and the hash router (routes.ts) between
// the sessions page, a terminal page and the admin pages; or, at /share, a share link's read-only
// terminal (share-page.ts), which needs no sign-in.
import "@xterm/xterm/css/xterm.css";
import "./styles.css";
import { mountAdminPage } from "./admin-page.ts";
import { Api, canWrite, type Me } from "./api.ts";
import { button, h } from "./dom.ts";
import { mountLoginPage } from "./login-page.ts";
import { adminHref, parseRoute, parseShareLink, terminalHref } from "./routes.ts";
import { notify } from "./notices.ts";
import { mountSharePage } from "./share-page.ts";
import { mountSessionsPage } from "./sessions-page.ts";
import { mountTerminalPage } from "./terminal-page.ts";
import { type ThemePref, cycleThemePref, initTheme, themePref } from "./theme.ts";

/** What the sign-in page says when the edge stopped accepting this page's session. */
const SESSION_ENDED = "Your session ended: the token was revoked or expired. Sign in again.";
/** What the sign-in page says when another tab of this app signed out. */
const SIGNED_OUT_ELSEWHERE = "You were signed out in another tab. Sign in again.";
/** The channel on which this app's tabs tell each other that they signed out. */
const AUTH_CHANNEL = "edgetty-auth";

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
  /** Who is signed in (null: nobody); decides which pages and actions are offered. */
  let me: Me | null = null;

  const api = new Api(() => {
    if (me) showLogin(SESSION_ENDED);
  });
  // Signing out clears the cookie for every tab: the others show the sign-in page at once.
  const authChannel = typeof BroadcastChannel === "function" ? new BroadcastChannel(AUTH_CHANNEL) : null;
  authChannel?.addEventListener("message", (ev: MessageEvent) => {
    if (ev.data === "signed-out" && me) showLogin(SIGNED_OUT_ELSEWHERE);
  });

  const themeButton = button("", "", () => renderTheme(cycleThemePref()), { class: "text-button theme-toggle" });
  const signOut = button("Sign out", "Sign out", () => void doSignOut(), { class: "text-button", hidden: true });
  const who = h("span", { class: "who muted", hidden: true });
  const adminLink = h("a", { class: "text-button", href: adminHref("servers"), hidden: true }, "Admin");
  const header = h(
    "header",
    { class: "app-header" },
    h("a", { class: "brand", href: "#/", "aria-label": "edgetty: sessions" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "▍"), "edgetty"),
    h("span", { class: "spacer" }),
    who,
    adminLink,
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

  /** Shows the sign-in page; `reason` says why the user was signed out, when it was not by this page. */
  function showLogin(reason?: string): void {
    me = null;
    signOut.hidden = who.hidden = adminLink.hidden = true;
    showPage(() => mountLoginPage(main, api, () => void onSignedIn(), reason));
  }

  async function onSignedIn(known?: Me): Promise<void> {
    const current = known ?? (await api.whoAmI());
    if (!current) return showLogin();
    me = current;
    signOut.hidden = who.hidden = false;
    adminLink.hidden = me.role !== "admin";
    const name = me.user_id ?? "admin key";
    who.textContent = `${name} · ${me.role}${me.read_only ? " · read-only" : ""}`;
    who.title = `Signed in as ${name} (${me.role}${me.read_only ? ", read-only token" : ""})`;
    void route();
  }

  /** Whether the caller may only watch server `serverId`: a read-only sign-in, or a user's `read` access. */
  async function watchOnly(serverId: string): Promise<boolean> {
    if (me?.read_only) return true;
    if (me?.role === "admin") return false;
    const server = (await api.servers().catch(() => [])).find((s) => s.id === serverId);
    return server !== undefined && !canWrite(server);
  }

  /** Counts route changes, so a slow one never mounts its page over a newer one. */
  let routeSeq = 0;

  async function route(): Promise<void> {
    if (!me) return;
    const seq = ++routeSeq;
    const r = parseRoute(location.hash);
    document.body.dataset["page"] = r.page;
    adminLink.setAttribute("aria-current", r.page === "admin" ? "page" : "false");
    if (r.page === "terminal") {
      // A caller who may only watch this server gets the read-only view (the edge enforces it too).
      const writable = !(await watchOnly(r.serverId));
      if (seq !== routeSeq || !me) return;
      if (!writable && !r.readonly) return location.replace(terminalHref(r.serverId, r.terminalId, true));
      showPage(() => mountTerminalPage(main, { api, ...r, canWrite: writable, onSignedOut: () => showLogin(SESSION_ENDED) }));
    } else if (r.page === "admin") {
      if (me.role === "admin") showPage(() => mountAdminPage(main, api, r.section));
      else showPage(() => notForYou(main));
    } else {
      showPage(() => mountSessionsPage(main, api, me!));
      // A mistyped address (a terminal id past 65535, an unknown page) is said, not silently dropped.
      if (r.unknown) notify(`Nothing lives at ${r.unknown.slice(0, 80)}: here are your sessions instead.`, "error");
    }
  }

  /** What a user sees at an admin address: no admin content, a way back. */
  function notForYou(root: HTMLElement): () => void {
    root.replaceChildren(
      h(
        "main",
        { class: "login-page" },
        h("div", { class: "card", role: "alert" }, h("h1", {}, "Admins only"), h("p", {}, "These pages are for admins."), h("a", { href: "#/", class: "text-button" }, "Back to your servers")),
      ),
    );
    document.title = "Admins only — edgetty";
    return () => {};
  }

  async function doSignOut(): Promise<void> {
    dispose();
    dispose = () => {};
    await api.signOut().catch(() => {});
    authChannel?.postMessage("signed-out");
    // Whoever signs in next starts at their own home page, not at this user's last page.
    history.replaceState(null, "", location.pathname + location.search);
    showLogin();
  }

  async function boot(): Promise<void> {
    try {
      const current = await api.whoAmI();
      if (current) await onSignedIn(current);
      else showLogin();
    } catch (err) {
      main.replaceChildren(
        h(
          "main",
          { class: "login-page" },
          h("div", { class: "card" }, h("p", { class: "error" }, `Could not start: ${(err as Error).message}`), button("Try again", "Try again", () => void boot(), { class: "primary" })),
        ),
      );
    }
  }

  // A share link's page needs no sign-in: its token opens one terminal, read-only.
  if (location.pathname === "/share") {
    header.querySelector("a.brand")?.setAttribute("href", "/");
    document.body.dataset["page"] = "share";
    showPage(() => mountSharePage(main, parseShareLink(location.pathname, location.hash)));
    return;
  }
  addEventListener("hashchange", () => void route());
  void boot();
}

start();
