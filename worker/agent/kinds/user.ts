/**
 * The login environment a shell started as another account (`user=`, looked up through NSS by
 * spawn.ts lookupAccount) gets.
 */
import type { Account } from "../spawn.ts";

/** Variables a login keeps from the agent's environment (locale and time zone). */
const KEPT_FOR_LOGIN = /^(LANG|LANGUAGE|LC_[A-Z]+|TZ)$/;

/**
 * The environment of a login as `account` (what `su -` / `login` give): nothing of the agent's
 * but locale and time zone, so the agent's variables (tokens, paths, root's HOME) never leak into
 * another user's shell.
 */
export function loginEnv(account: Account, shellPath: string, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(from)) if (value !== undefined && KEPT_FOR_LOGIN.test(key)) env[key] = value;
  Object.assign(env, {
    HOME: account.home,
    USER: account.name,
    LOGNAME: account.name,
    SHELL: shellPath,
    MAIL: `/var/mail/${account.name}`,
    PATH: account.uid === 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin:/usr/games",
  });
  return env;
}
