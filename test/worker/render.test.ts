import xterm from "@xterm/headless";
import type { Terminal } from "@xterm/headless";
import { describe, expect, it } from "vitest";
import { renderHtml, renderText } from "../../worker/agent/screen/render.ts";

function term(cols = 40, rows = 10): Terminal {
  return new xterm.Terminal({ cols, rows, scrollback: 1000, allowProposedApi: true });
}
async function written(data: string, cols?: number, rows?: number): Promise<Terminal> {
  const t = term(cols, rows);
  await new Promise<void>((resolve) => t.write(data, resolve));
  return t;
}

describe("renderText", () => {
  it("shows a command and its output, without the blank rows below the prompt", async () => {
    const t = await written("$ echo hello\r\nhello\r\n$ ");
    expect(renderText(t)).toBe("$ echo hello\nhello\n$");
  });

  it("returns the last N lines with tail", async () => {
    const t = await written("$ echo hello\r\nhello\r\n$ ");
    expect(renderText(t, { tail: 2 })).toBe("hello\n$");
    expect(renderText(t, { tail: 100 })).toBe("$ echo hello\nhello\n$");
    expect(renderText(t, { tail: 0 })).toBe("");
  });

  it("resolves escape sequences: colours dropped, cursor moves and erases applied", async () => {
    const t = await written("\x1b[1;31mred\x1b[0m plain\r\nabc\x1b[2Dx\r\nold text\r\x1b[Knew\r\n\x1b]0;title\x07after title");
    expect(renderText(t)).toBe("red plain\naxc\nnew\nafter title");
  });

  it("includes the scrollback before the screen", async () => {
    const t = await written(Array.from({ length: 50 }, (_, i) => `line ${i}`).join("\r\n"), 40, 10);
    const lines = renderText(t).split("\n");
    expect(lines).toHaveLength(50);
    expect(lines[0]).toBe("line 0");
    expect(lines[49]).toBe("line 49");
  });

  it("joins a soft-wrapped line back into one line", async () => {
    const long = "0123456789".repeat(5);
    const t = await written(`${long}\r\nnext`, 20);
    expect(renderText(t)).toBe(`${long}\nnext`);
  });

  it("keeps wide CJK characters whole, also where one wrapped to the next row", async () => {
    expect(renderText(await written("日本語 ok｜中文"))).toBe("日本語 ok｜中文");
    // In 5 columns "ab日本" leaves the 5th cell empty: 日 (2 cells) does not fit after "ab日".
    expect(renderText(await written("ab日本語", 5))).toBe("ab日本語");
  });

  it("keeps spaces that were printed inside a line", async () => {
    expect(renderText(await written("a    b\r\n    indented"))).toBe("a    b\n    indented");
  });

  it("shows the alternate screen while a full-screen program runs", async () => {
    const t = await written("$ vi\r\n\x1b[?1049h\x1b[H\x1b[2JVI SCREEN");
    expect(renderText(t)).toBe("VI SCREEN");
  });
});

describe("renderHtml", () => {
  it("is a standalone page with the red of \\e[31m", async () => {
    const html = renderHtml(await written("\x1b[31mred\x1b[0m plain"), { title: "T <1>" });
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain("<title>T &lt;1&gt;</title>");
    expect(html).toContain('<span style="color:#cc0000">red</span> plain');
    expect(html).not.toContain("\x1b");
  });

  it("renders 256 and true colours, backgrounds and styles", async () => {
    const html = renderHtml(
      await written("\x1b[38;5;208ma\x1b[0m\x1b[38;2;1;2;3mb\x1b[0m\x1b[44mc\x1b[0m\x1b[1md\x1b[0m\x1b[3me\x1b[0m\x1b[4mf\x1b[0m\x1b[7mg\x1b[0m\x1b[1;32mh"),
    );
    expect(html).toContain('<span style="color:#ff8700">a</span>');
    expect(html).toContain('<span style="color:#010203">b</span>');
    expect(html).toContain('<span style="background:#3465a4">c</span>');
    expect(html).toContain('<span class="b">d</span>');
    expect(html).toContain('<span class="i">e</span>');
    expect(html).toContain('<span class="u">f</span>');
    expect(html).toContain('<span style="color:#000000;background:#ffffff">g</span>'); // inverse of the defaults
    expect(html).toContain('<span class="b" style="color:#8ae234">h</span>'); // bold green is bright green
  });

  it("escapes text as HTML", async () => {
    const html = renderHtml(await written(`<script>alert("x")</script> & more`));
    expect(html).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more");
  });

  it("honours tail like renderText", async () => {
    const html = renderHtml(await written("one\r\ntwo\r\nthree"), { tail: 1 });
    expect(html).toContain("<pre>\nthree\n</pre>");
  });
});
