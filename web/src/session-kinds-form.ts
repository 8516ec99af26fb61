// The "new terminal" form's kind picker: a local shell (optionally as another user, on an X11
// display, with a desktop), an SSH login (password or key file, optionally through a SOCKS5
// proxy), or following an existing process by PID. Each kind shows only its own fields and adds
// them to the create request (seed 002's fields).
import type { CreateRequest } from "./api.ts";
import { h } from "./dom.ts";

/** The session kinds the form offers. */
export const SESSION_KINDS = [
  { value: "local", label: "Local shell" },
  { value: "ssh", label: "SSH" },
  { value: "pid", label: "Follow a process (PID)" },
] as const;
export type SessionKind = (typeof SESSION_KINDS)[number]["value"];

/** How long the form lets a create wait for its display, in seconds (the seed's default is 300). */
export const DISPLAY_WAIT_S = 30;

/** Largest private key file the form reads, in bytes (the edge takes 64 Ki base64 characters). */
export const SSH_KEY_FILE_MAX_BYTES = 48 << 10; // 48 KiB

export interface KindFields {
  /** The kind picker, for the form's first row. */
  picker: HTMLElement;
  /** Every kind's fields; only the chosen kind's are shown. */
  panel: HTMLElement;
  kind(): SessionKind;
  /** Adds the chosen kind's fields to `req`; throws an Error with a message for the user. */
  apply(req: CreateRequest): Promise<void>;
}

const field = (label: string, control: HTMLElement): HTMLElement => h("label", { class: "field" }, h("span", {}, label), control);
const text = (name: string, label: string, placeholder = "", type = "text"): HTMLInputElement =>
  h("input", { name, type, placeholder, "aria-label": label, autocomplete: "off", spellcheck: "false" });

/** Reads a key file as base64 (what `ssh_key` takes). */
async function fileBase64(file: File): Promise<string> {
  if (file.size > SSH_KEY_FILE_MAX_BYTES) throw new Error(`The key file is larger than ${SSH_KEY_FILE_MAX_BYTES >> 10} KiB`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export function kindFields(): KindFields {
  const picker = h("select", { name: "kind", "aria-label": "Kind" }, ...SESSION_KINDS.map((k) => h("option", { value: k.value }, k.label)));

  const user = text("user", "Run as user", "agent's user");
  const display = text("display", "X11 display", "none");
  const desktop = h("select", { name: "desktop_env", "aria-label": "Desktop" }, h("option", { value: "" }, "no desktop"), h("option", { value: "xfce" }, "Xfce"), h("option", { value: "mate" }, "MATE"));
  const local = h("div", { class: "kind-fields", "data-kind": "local" }, field("User", user), field("Display", display), field("Desktop", desktop));

  const sshHost = text("ssh_host", "SSH host", "host or IP");
  const sshUser = text("ssh_user", "SSH user", "user");
  const sshPort = h("input", { name: "ssh_port", type: "number", min: 1, max: 65535, placeholder: "22", "aria-label": "SSH port" });
  const sshPassword = text("ssh_password", "SSH password", "or a key file", "password");
  const sshKey = h("input", { name: "ssh_key", type: "file", "aria-label": "SSH private key file" });
  const socksHost = text("socks5_host", "SOCKS5 proxy host", "none");
  const socksPort = h("input", { name: "socks5_port", type: "number", min: 1, max: 65535, placeholder: "1080", "aria-label": "SOCKS5 port" });
  const socksUser = text("socks5_user", "SOCKS5 user", "none");
  const socksPass = text("socks5_pass", "SOCKS5 password", "", "password");
  const ssh = h(
    "div",
    { class: "kind-fields", "data-kind": "ssh", hidden: true },
    field("Host", sshHost),
    field("User", sshUser),
    field("Port", sshPort),
    field("Password", sshPassword),
    field("Private key", sshKey),
    field("SOCKS5 host", socksHost),
    field("SOCKS5 port", socksPort),
    field("SOCKS5 user", socksUser),
    field("SOCKS5 password", socksPass),
  );

  const pid = h("input", { name: "pid", type: "number", min: 1, placeholder: "process id", "aria-label": "Process id" });
  const attach = h("div", { class: "kind-fields", "data-kind": "pid", hidden: true }, field("PID", pid), h("span", { class: "muted" }, "Read-only: shows what the process writes."));

  const panel = h("div", { class: "kind-panel" }, local, ssh, attach);
  const show = () => {
    for (const el of [local, ssh, attach]) el.hidden = el.dataset["kind"] !== picker.value;
  };
  picker.addEventListener("change", show);

  const value = (el: HTMLInputElement | HTMLSelectElement) => el.value.trim();
  return {
    picker: field("Kind", picker),
    panel,
    kind: () => picker.value as SessionKind,
    async apply(req) {
      switch (picker.value as SessionKind) {
        case "local":
          if (value(user)) req.user = value(user);
          if (value(display)) {
            req.display = value(display);
            req.wait_timeout = DISPLAY_WAIT_S;
          }
          if (value(desktop)) req.desktop_env = value(desktop) as "xfce" | "mate";
          return;
        case "ssh": {
          if (!value(sshHost) || !value(sshUser)) throw new Error("SSH needs a host and a user");
          req.ssh_host = value(sshHost);
          req.ssh_user = value(sshUser);
          if (value(sshPort)) req.ssh_port = value(sshPort);
          if (sshPassword.value) req.ssh_password = sshPassword.value;
          const keyFile = sshKey.files?.[0];
          if (keyFile) req.ssh_key = await fileBase64(keyFile);
          if (value(socksHost)) {
            req.socks5_host = value(socksHost);
            if (value(socksPort)) req.socks5_port = value(socksPort);
            if (value(socksUser)) req.socks5_user = value(socksUser);
            if (socksPass.value) req.socks5_pass = socksPass.value;
          }
          return;
        }
        case "pid":
          if (!value(pid)) throw new Error("Give the process id to follow");
          req.pid = Number(value(pid));
          return;
      }
    },
  };
}
