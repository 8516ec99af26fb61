// The sign-in form. The token goes in a POST body once and is exchanged for an HttpOnly cookie; it
// is never put in a URL, stored, or logged, and the field is cleared as soon as it is sent.
import { type Api, ApiError } from "./api.ts";
import { h } from "./dom.ts";

/**
 * Mounts the sign-in form into `root`; calls `onSignedIn` after a successful sign-in. `reason`,
 * when given, says why the user is here again (their session ended, another tab signed out).
 */
export function mountLoginPage(root: HTMLElement, api: Api, onSignedIn: () => void, reason?: string): () => void {
  const token = h("input", {
    id: "token",
    name: "token",
    type: "password",
    required: true,
    autocomplete: "current-password",
    spellcheck: "false",
    "aria-describedby": "token-help",
  });
  const error = h("p", { class: "error", role: "alert", id: "login-error" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  // method=post: even if this handler never ran, the browser would not put the token in a URL.
  const form = h(
    "form",
    { class: "card login-form", method: "post", action: "/api/v1/auth/session", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to edgetty"),
    reason ? h("p", { class: "signed-out-reason", role: "status" }, reason) : null,
    h("label", { for: "token" }, "Access token"),
    token,
    h("p", { id: "token-help", class: "muted" }, "The API key printed when the edge started, or a token your admin gave you."),
    error,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = token.value.trim();
    if (!value) return;
    submit.disabled = true;
    error.textContent = "";
    try {
      await api.signIn(value);
      token.value = "";
      onSignedIn();
    } catch (err) {
      token.value = "";
      error.textContent =
        err instanceof ApiError && err.status === 401
          ? "That token was not accepted."
          : `Could not sign in: ${(err as Error).message}`;
      token.focus();
    } finally {
      submit.disabled = false;
    }
  });
  root.replaceChildren(h("main", { class: "login-page" }, form));
  document.title = "Sign in — edgetty";
  token.focus();
  return () => {};
}
