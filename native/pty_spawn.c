/*
 * edgetty's PTY spawn: node-pty's `fork` with posix_spawn(3) instead of fork(2), for Linux.
 *
 * Why by hand: node-pty forks on Linux (it uses posix_spawn only on macOS), and fork(2) from a Node
 * process is slow: the child gets a copy of the parent's page tables, every page of the parent
 * turns copy-on-write, and the parent's next writes to its heap fault once per page. On this
 * project's 2-core VM `sh -c 'echo hi'` on a PTY took 8-14 ms from Node and 3 ms through
 * posix_spawn, which shares the parent's memory until the exec (CLONE_VM|CLONE_VFORK in glibc) and
 * so costs the same whatever the parent's size. No kept library spawns onto a PTY this way.
 *
 * The child is set up as forkpty(3) and node-pty set it up: a new session (POSIX_SPAWN_SETSID,
 * glibc >= 2.26) whose controlling terminal is the PTY (opening the slave by name without
 * O_NOCTTY makes a session leader without one take it), the slave as stdin, stdout and stderr,
 * every signal at its default and none blocked, then the working directory (glibc >= 2.29) and
 * the exec. The master is close-on-exec, so later children do not inherit it. The exit is
 * watched with a pidfd (Linux >= 5.3) on the event loop: no thread per child.
 *
 *   fork(file, argv, env, cwd, cols, rows, uid, gid, utf8, helperPath, onexit) -> {fd, pid, pty}
 *   spawnPipes(file, argv, env, cwd, onexit) -> {pid, stdout, stderr}
 *
 * takes node-pty 1.1's arguments (lib/unixTerminal.js; `argv` without argv[0], `env` as
 * "NAME=value" strings; uid/gid must be -1, helperPath is ignored) so node-pty's UnixTerminal
 * drives the result exactly as it drives its own, and calls `onexit(exitCode, signal)` once the
 * child is reaped. It throws an Error with `code` (an errno name) when the spawn fails (a missing
 * cwd or program: the child never ran). `spawnPipes` starts a program on pipes instead (seed
 * 004's runs, which child_process would fork). `supported()` says whether this kernel has pidfds;
 * `closesDescriptors()` whether children start with descriptors 0-2 only (glibc >= 2.34).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <uv.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/** One watched child: its pidfd's poll handle and the JS callback for its exit. */
typedef struct {
  uv_poll_t poll;
  pid_t pid;
  int pidfd;
  napi_env env;
  napi_ref onexit;
  napi_async_context async;
} exit_watch;

static int pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static void free_watch(uv_handle_t *handle) { free(handle->data); }

static void on_pidfd(uv_poll_t *poll, int status, int events) {
  (void)events;
  exit_watch *w = poll->data;
  int wstatus = 0;
  pid_t r = waitpid(w->pid, &wstatus, WNOHANG);
  /* Not yet reapable: a spurious wake-up, or a poll error while it runs (then wait for it here
   * rather than report an exit that has not happened). */
  if (r == 0 && status == 0) return;
  if (r == 0) r = waitpid(w->pid, &wstatus, 0);
  int code = 0, sig = 0;
  if (r == w->pid) {
    if (WIFEXITED(wstatus)) code = WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) sig = WTERMSIG(wstatus);
  }
  uv_poll_stop(poll);
  close(w->pidfd);

  napi_handle_scope scope;
  napi_open_handle_scope(w->env, &scope);
  napi_value cb, global, argv[2];
  napi_get_reference_value(w->env, w->onexit, &cb);
  napi_get_global(w->env, &global);
  napi_create_int32(w->env, code, &argv[0]);
  napi_create_int32(w->env, sig, &argv[1]);
  napi_delete_reference(w->env, w->onexit);
  /* As node-pty's exit callback: a throw in it is an uncaught exception. */
  napi_value ignored;
  if (napi_make_callback(w->env, w->async, global, cb, 2, argv, &ignored) == napi_pending_exception) {
    napi_value error;
    napi_get_and_clear_last_exception(w->env, &error);
    napi_fatal_exception(w->env, error);
  }
  napi_async_destroy(w->env, w->async);
  napi_close_handle_scope(w->env, scope);
  uv_close((uv_handle_t *)poll, free_watch);
}

/** The name of the errnos a spawn meets (strerrorname_np needs glibc 2.32). */
static const char *errno_name(int err) {
  switch (err) {
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOEXEC: return "ENOEXEC";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EAGAIN: return "EAGAIN";
    case ENOSYS: return "ENOSYS";
    default: return "EIO";
  }
}

/** Throws an Error whose `code` is the errno's name, and returns NULL. */
static napi_value throw_errno(napi_env env, int err, const char *what) {
  char message[512];
  snprintf(message, sizeof message, "%s: %s (%s)", what, strerror(err), errno_name(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

/** A copy of the JS string `value`, or NULL when it is not a string or holds a NUL (exec would cut it there). */
static char *string_arg(napi_env env, napi_value value) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, value, s, len + 1, &len);
  if (strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

/** A NULL-terminated vector of `array`'s strings, after `first` (when not NULL); NULL on error. */
static char **string_vector(napi_env env, napi_value array, const char *first) {
  uint32_t n = 0;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  uint32_t offset = first ? 1 : 0;
  char **v = calloc(n + offset + 1, sizeof(char *));
  if (!v) return NULL;
  if (first && !(v[0] = strdup(first))) {
    free(v);
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    napi_get_element(env, array, i, &item);
    v[i + offset] = string_arg(env, item);
    if (!v[i + offset]) {
      for (uint32_t j = 0; j < i + offset; j++) free(v[j]);
      free(v);
      return NULL;
    }
  }
  return v;
}

static void free_vector(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

/** What every spawn is given: the program, its argv (with argv[0], the program), its environment and folder. */
typedef struct {
  char *file;
  char *cwd;
  char **argv;
  char **envp;
} spawn_args;

static void free_spawn_args(spawn_args *a) {
  free(a->file);
  free(a->cwd);
  free_vector(a->argv);
  free_vector(a->envp);
}

/**
 * Reads `file, args, env, cwd` (JS arguments 0-3: a string, an array of strings without argv[0],
 * an array of "NAME=value" strings, a string) into `a`. False, with a TypeError thrown (`usage`
 * names the call) and nothing left to free, when one is not a string or holds a NUL.
 */
static bool read_spawn_args(napi_env env, napi_value *args, spawn_args *a, const char *usage) {
  a->file = string_arg(env, args[0]);
  a->cwd = string_arg(env, args[3]);
  a->argv = a->file ? string_vector(env, args[1], a->file) : NULL;
  a->envp = string_vector(env, args[2], NULL);
  if (a->file && a->cwd && a->argv && a->envp) return true;
  free_spawn_args(a);
  napi_throw_type_error(env, NULL, usage);
  return false;
}

/** The line discipline node-pty gives a new PTY (src/unix/pty.cc), so programs see the same terminal. */
static void default_termios(struct termios *t, int utf8) {
  memset(t, 0, sizeof *t);
  t->c_iflag = ICRNL | IXON | IXANY | IMAXBEL | BRKINT | (utf8 ? IUTF8 : 0);
  t->c_oflag = OPOST | ONLCR;
  t->c_cflag = CREAD | CS8 | HUPCL;
  t->c_lflag = ICANON | ISIG | IEXTEN | ECHO | ECHOE | ECHOK | ECHOKE | ECHOCTL;
  t->c_cc[VEOF] = 4;
  t->c_cc[VEOL] = -1;
  t->c_cc[VEOL2] = -1;
  t->c_cc[VERASE] = 0x7f;
  t->c_cc[VWERASE] = 23;
  t->c_cc[VKILL] = 21;
  t->c_cc[VREPRINT] = 18;
  t->c_cc[VINTR] = 3;
  t->c_cc[VQUIT] = 0x1c;
  t->c_cc[VSUSP] = 26;
  t->c_cc[VSTART] = 17;
  t->c_cc[VSTOP] = 19;
  t->c_cc[VLNEXT] = 22;
  t->c_cc[VDISCARD] = 15;
  t->c_cc[VMIN] = 1;
  t->c_cc[VTIME] = 0;
  cfsetispeed(t, B38400);
  cfsetospeed(t, B38400);
}

/**
 * The program a name without a slash runs, looked up as node-pty's execvp does after it set the
 * child's environment: in the PATH of `envp` (glibc's default "/bin:/usr/bin" when it has none),
 * the first regular file there that is executable (absolute entries only). Returns a copy (the caller frees it) or NULL
 * with `*err` set to ENOENT (or EACCES when one was found but not executable).
 */
static char *path_lookup(const char *file, char **envp, int *err) {
  const char *path = "/bin:/usr/bin";
  for (char **e = envp; *e; e++) {
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  }
  *err = ENOENT;
  size_t flen = strlen(file);
  for (const char *dir = path;; dir++) {
    const char *end = strchr(dir, ':');
    size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
    /* Empty and relative entries are skipped (execvp would try them in the child's new folder). */
    if (dlen > 0 && dir[0] == '/') {
      char *candidate = malloc(dlen + flen + 2);
      if (!candidate) {
        *err = ENOMEM;
        return NULL;
      }
      snprintf(candidate, dlen + flen + 2, "%.*s/%s", (int)dlen, dir, file);
      struct stat st;
      if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode)) {
        if (access(candidate, X_OK) == 0) return candidate;
        *err = EACCES;
      }
      free(candidate);
    }
    if (!end) return NULL;
    dir = end;
  }
}

/*
 * glibc >= 2.34 closes descriptors in the child as a file action (close_range(2), or /proc/self/fd
 * where the kernel lacks it): every child then starts with 0-2 only, whatever the parent holds, and
 * the caller need not look for descriptors that would leak before each spawn (launch.ts).
 */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define CLOSES_DESCRIPTORS 1
#else
#define CLOSES_DESCRIPTORS 0
#endif

/**
 * posix_spawn of `file` with what every child gets: a session of its own, every signal at its
 * default and none blocked, `actions` (its descriptors), every descriptor above 2 closed (where
 * CLOSES_DESCRIPTORS) and then the working directory `cwd`. A name without a slash is looked up
 * in the child's PATH (path_lookup). Returns 0 or an errno.
 */
static int spawn_child(pid_t *pid, const char *file, posix_spawn_file_actions_t *actions, const char *cwd, char **argv, char **envp) {
  sigset_t all, none;
  /* Every bit, not sigfillset: glibc's leaves out its own two signals (32, 33), which its spawn
   * would then set to ignored in the child, where node-pty's fork leaves them at their default. */
  memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  posix_spawnattr_t attrs;
  int err = posix_spawnattr_init(&attrs);
  if (err != 0) return err;
  /* glibc runs setsid before the file actions, so a PTY's slave opened there becomes the session's terminal. */
  if ((err = posix_spawnattr_setflags(&attrs, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) == 0 &&
      (err = posix_spawnattr_setsigdefault(&attrs, &all)) == 0 && (err = posix_spawnattr_setsigmask(&attrs, &none)) == 0 &&
#if CLOSES_DESCRIPTORS
      (err = posix_spawn_file_actions_addclosefrom_np(actions, 3)) == 0 &&
#endif
      (!cwd[0] || (err = posix_spawn_file_actions_addchdir_np(actions, cwd)) == 0)) {
    char *found = strchr(file, '/') ? NULL : path_lookup(file, envp, &err);
    if (strchr(file, '/') || found) err = posix_spawn(pid, found ? found : file, actions, &attrs, argv, envp);
    free(found);
  }
  posix_spawnattr_destroy(&attrs);
  return err;
}

/**
 * Watches the running child `pid` and calls `onexit(exitCode, signal)` once it is reaped. When it
 * cannot be watched (no memory, no pidfds) the child is killed and reaped at once, an Error is
 * thrown and false returned: a child is never left running unreported.
 */
static bool watch_exit(napi_env env, pid_t pid, napi_value onexit) {
  exit_watch *w = calloc(1, sizeof *w);
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  int pidfd = pidfd_open(pid);
  int err = pidfd < 0 ? errno : ENOMEM;
  if (!w || pidfd < 0 || uv_poll_init(loop, &w->poll, pidfd) != 0) {
    kill(-pid, SIGKILL); /* its group (it leads a session of its own), then it */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (pidfd >= 0) close(pidfd);
    free(w);
    throw_errno(env, err, "watch the child");
    return false;
  }
  w->pid = pid;
  w->pidfd = pidfd;
  w->env = env;
  w->poll.data = w;
  napi_create_reference(env, onexit, 1, &w->onexit);
  napi_value resource_name;
  napi_create_string_utf8(env, "edgetty:child-exit", NAPI_AUTO_LENGTH, &resource_name);
  napi_async_init(env, NULL, resource_name, &w->async);
  uv_poll_start(&w->poll, UV_READABLE, on_pidfd);
  return true;
}

/** Throws what stopped a spawn, naming the program and the folder. */
static void throw_spawn_error(napi_env env, int err, const char *file, const char *cwd) {
  char what[512];
  snprintf(what, sizeof what, "cannot start %s in %s", file, cwd[0] ? cwd : ".");
  throw_errno(env, err, what);
}

/** Sets `obj[name]` to the int `value`. */
static void set_int(napi_env env, napi_value obj, const char *name, int32_t value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

static napi_value Fork(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value args[11];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  napi_valuetype cb_type = napi_undefined;
  if (argc == 11) napi_typeof(env, args[10], &cb_type);
  if (argc != 11 || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "Usage: fork(file, args, env, cwd, cols, rows, uid, gid, utf8, helperPath, onexit)");
    return NULL;
  }
  int32_t cols = 80, rows = 24, uid = -1, gid = -1;
  bool utf8 = false;
  napi_get_value_int32(env, args[4], &cols);
  napi_get_value_int32(env, args[5], &rows);
  napi_get_value_int32(env, args[6], &uid);
  napi_get_value_int32(env, args[7], &gid);
  napi_get_value_bool(env, args[8], &utf8);
  if (uid != -1 || gid != -1) {
    napi_throw_error(env, "ENOTSUP", "fork: another uid or gid is not supported");
    return NULL;
  }

  spawn_args a;
  if (!read_spawn_args(env, args, &a, "fork: file, args, env and cwd must be strings without NUL characters")) return NULL;
  napi_value result = NULL;
  int master = -1, slave = -1, err = 0;
  char name[64];
  posix_spawn_file_actions_t actions;
  bool actions_made = false;

  master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
    throw_errno(env, errno, "fork: posix_openpt");
    goto done;
  }
  slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    throw_errno(env, errno, "fork: open the PTY's slave");
    goto done;
  }
  struct termios term;
  default_termios(&term, utf8);
  struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (tcsetattr(slave, TCSANOW, &term) != 0 || ioctl(master, TIOCSWINSZ, &size) != 0) {
    throw_errno(env, errno, "fork: set up the PTY");
    goto done;
  }

  /* The slave by name, without O_NOCTTY: the new session's leader takes it as its terminal. */
  if ((err = posix_spawn_file_actions_init(&actions)) == 0) {
    actions_made = true;
    if ((err = posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0)) == 0 && (err = posix_spawn_file_actions_adddup2(&actions, 0, 1)) == 0 &&
        (err = posix_spawn_file_actions_adddup2(&actions, 0, 2)) == 0) {
      pid_t pid;
      err = spawn_child(&pid, a.file, &actions, a.cwd, a.argv, a.envp);
      if (err == 0) {
        if (!watch_exit(env, pid, args[10])) goto done;
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        napi_value pty_value;
        napi_create_object(env, &result);
        set_int(env, result, "fd", master);
        set_int(env, result, "pid", pid);
        napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &pty_value);
        napi_set_named_property(env, result, "pty", pty_value);
        master = -1; /* the caller's now */
        goto done;
      }
    }
  }
  throw_spawn_error(env, err, a.file, a.cwd);

done:
  if (actions_made) posix_spawn_file_actions_destroy(&actions);
  if (slave >= 0) close(slave);
  if (master >= 0) close(master);
  free_spawn_args(&a);
  return result;
}

/**
 * spawnPipes(file, args, env, cwd, onexit) -> {pid, stdout, stderr}: `file` on pipes in a session
 * of its own (as child_process.spawn with `detached: true` and stdio ignore/pipe/pipe): stdin
 * /dev/null, stdout and stderr the write ends of two pipes whose read ends (close-on-exec,
 * blocking) are returned; `args` without argv[0]; `onexit(exitCode, signal)` once it is reaped.
 */
static napi_value SpawnPipes(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value args[5];
  napi_get_cb_info(env, info, &argc, args, NULL, NULL);
  napi_valuetype cb_type = napi_undefined;
  if (argc == 5) napi_typeof(env, args[4], &cb_type);
  if (argc != 5 || cb_type != napi_function) {
    napi_throw_type_error(env, NULL, "Usage: spawnPipes(file, args, env, cwd, onexit)");
    return NULL;
  }
  spawn_args a;
  if (!read_spawn_args(env, args, &a, "spawnPipes: file, args, env and cwd must be strings without NUL characters")) return NULL;
  napi_value result = NULL;
  int out[2] = {-1, -1}, errp[2] = {-1, -1}, err = 0;
  posix_spawn_file_actions_t actions;
  bool actions_made = false;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
    throw_errno(env, errno, "spawnPipes: pipe2");
    goto done;
  }
  if ((err = posix_spawn_file_actions_init(&actions)) == 0) {
    actions_made = true;
    if ((err = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)) == 0 && (err = posix_spawn_file_actions_adddup2(&actions, out[1], 1)) == 0 &&
        (err = posix_spawn_file_actions_adddup2(&actions, errp[1], 2)) == 0) {
      pid_t pid;
      err = spawn_child(&pid, a.file, &actions, a.cwd, a.argv, a.envp);
      if (err == 0) {
        close(out[1]);
        close(errp[1]);
        out[1] = errp[1] = -1;
        if (!watch_exit(env, pid, args[4])) goto done;
        napi_create_object(env, &result);
        set_int(env, result, "pid", pid);
        set_int(env, result, "stdout", out[0]);
        set_int(env, result, "stderr", errp[0]);
        out[0] = errp[0] = -1; /* the caller's now */
        goto done;
      }
    }
  }
  throw_spawn_error(env, err, a.file, a.cwd);

done:
  if (actions_made) posix_spawn_file_actions_destroy(&actions);
  for (int i = 0; i < 2; i++) {
    if (out[i] >= 0) close(out[i]);
    if (errp[i] >= 0) close(errp[i]);
  }
  free_spawn_args(&a);
  return result;
}

/** True when this kernel gives pidfds (Linux >= 5.3), which `fork` needs to watch its children. */
static napi_value Supported(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = pidfd_open(getpid());
  if (fd >= 0) close(fd);
  napi_value result;
  napi_get_boolean(env, fd >= 0, &result);
  return result;
}

/** True when every child starts with descriptors 0-2 only (closed in the child: CLOSES_DESCRIPTORS). */
static napi_value ClosesDescriptors(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_get_boolean(env, CLOSES_DESCRIPTORS, &result);
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"fork", NULL, Fork, NULL, NULL, NULL, napi_default, NULL},
      {"spawnPipes", NULL, SpawnPipes, NULL, NULL, NULL, napi_default, NULL},
      {"supported", NULL, Supported, NULL, NULL, NULL, napi_default, NULL},
      {"closesDescriptors", NULL, ClosesDescriptors, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
