import { describe, expect, it } from "vitest";
import { cssColor, paletteColor, parseColor } from "../../shared/colors.ts";

describe("parseColor", () => {
  it("knows the screenshot API's colour names, in any case", () => {
    expect(parseColor("red")).toEqual({ r: 255, g: 0, b: 0, a: 255 });
    expect(parseColor(" White ")).toEqual({ r: 255, g: 255, b: 255, a: 255 });
    for (const name of ["black", "green", "yellow", "blue", "magenta", "cyan"]) expect(parseColor(name)).not.toBeNull();
  });

  it("reads (R,G,B,A) and (R,G,B), with or without parentheses and spaces", () => {
    expect(parseColor("(10,20,30,40)")).toEqual({ r: 10, g: 20, b: 30, a: 40 });
    expect(parseColor("(10, 20, 30)")).toEqual({ r: 10, g: 20, b: 30, a: 255 });
    expect(parseColor("1,2,3")).toEqual({ r: 1, g: 2, b: 3, a: 255 });
    expect(parseColor("#0a141e")).toEqual({ r: 10, g: 20, b: 30, a: 255 });
  });

  it("rejects anything else", () => {
    for (const bad of ["", "purple", "(256,0,0)", "(1,2)", "(1,2,3,4,5)", "(1,2,3", "-1,2,3", "1.5,2,3", "#12345", "x".repeat(100)]) {
      expect(parseColor(bad), bad).toBeNull();
    }
  });
});

describe("palette", () => {
  it("has xterm.js's ANSI colours, the 6×6×6 cube and the grey ramp", () => {
    expect(cssColor(paletteColor(1))).toBe("#cc0000");
    expect(cssColor(paletteColor(196))).toBe("#ff0000");
    expect(cssColor(paletteColor(208))).toBe("#ff8700");
    expect(cssColor(paletteColor(232))).toBe("#080808");
    expect(cssColor(paletteColor(255))).toBe("#eeeeee");
  });

  it("writes translucent colours as rgba()", () => {
    expect(cssColor({ r: 1, g: 2, b: 3, a: 0 })).toBe("rgba(1,2,3,0)");
  });
});
