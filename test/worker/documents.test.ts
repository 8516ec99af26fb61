/**
 * Text out of spreadsheets and presentations for `GET /files/read`, in the reference's layout:
 * `--- name ---` per sheet with tab-separated rows, `--- Slide N ---` per slide. The documents are
 * built here, part by part, as the smallest files the formats allow.
 */
import { describe, expect, it } from "vitest";
import { extractText, SHEET_GRID_MAX_CELLS } from "../../worker/agent/files/documents.ts";
import { zipOf } from "../support/zip.ts";

const RELS = "http://schemas.openxmlformats.org/package/2006/relationships";
const DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const contentTypes = (overrides: [string, string][]) =>
  `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>${overrides.map(([part, type]) => `<Override PartName="${part}" ContentType="${type}"/>`).join("")}</Types>`;
const relationships = (targets: [string, string][]) =>
  `<?xml version="1.0"?><Relationships xmlns="${RELS}">${targets.map(([type, target], i) => `<Relationship Id="rId${i + 1}" Type="${DOC_RELS}/${type}" Target="${target}"/>`).join("")}</Relationships>`;

/** A workbook whose sheets hold inline-string or number cells at the given references (`A1`, `C3`). */
function xlsx(sheets: { name: string; cells: [string, string | number][] }[]): Promise<Buffer> {
  const SHEET = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml";
  const files: Record<string, string> = {
    "[Content_Types].xml": contentTypes([["/xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"], ...sheets.map((_, i): [string, string] => [`/xl/worksheets/sheet${i + 1}.xml`, SHEET])]),
    "_rels/.rels": relationships([["officeDocument", "xl/workbook.xml"]]),
    "xl/workbook.xml": `<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="${DOC_RELS}"><sheets>${sheets.map((s, i) => `<sheet name="${s.name}" sheetId="${i + 1}" r:id="rId${i + 1}"/>`).join("")}</sheets></workbook>`,
    "xl/_rels/workbook.xml.rels": relationships(sheets.map((_, i): [string, string] => ["worksheet", `worksheets/sheet${i + 1}.xml`])),
  };
  sheets.forEach((sheet, i) => {
    const rows = new Map<number, string[]>();
    for (const [ref, value] of sheet.cells) {
      const row = Number(/\d+$/.exec(ref)![0]);
      const cell = typeof value === "number" ? `<c r="${ref}"><v>${value}</v></c>` : `<c r="${ref}" t="inlineStr"><is><t>${value}</t></is></c>`;
      rows.set(row, [...(rows.get(row) ?? []), cell]);
    }
    const data = [...rows].map(([row, cells]) => `<row r="${row}">${cells.join("")}</row>`).join("");
    files[`xl/worksheets/sheet${i + 1}.xml`] = `<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>${data}</sheetData></worksheet>`;
  });
  return zipOf(files);
}

/** A presentation whose slides hold text shapes, each a list of paragraphs. */
function pptx(slides: string[][][]): Promise<Buffer> {
  const P = "http://schemas.openxmlformats.org/presentationml/2006/main";
  const A = "http://schemas.openxmlformats.org/drawingml/2006/main";
  const shape = (paragraphs: string[]) => `<p:sp><p:txBody>${paragraphs.map((t) => `<a:p><a:r><a:t>${t}</a:t></a:r></a:p>`).join("")}</p:txBody></p:sp>`;
  const files: Record<string, string> = {
    "[Content_Types].xml": contentTypes([
      ["/ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"],
      ...slides.map((_, i): [string, string] => [`/ppt/slides/slide${i + 1}.xml`, "application/vnd.openxmlformats-officedocument.presentationml.slide+xml"]),
    ]),
    "_rels/.rels": relationships([["officeDocument", "ppt/presentation.xml"]]),
    "ppt/presentation.xml": `<?xml version="1.0"?><p:presentation xmlns:p="${P}" xmlns:r="${DOC_RELS}"><p:sldIdLst>${slides.map((_, i) => `<p:sldId id="${256 + i}" r:id="rId${i + 1}"/>`).join("")}</p:sldIdLst></p:presentation>`,
    "ppt/_rels/presentation.xml.rels": relationships(slides.map((_, i): [string, string] => ["slide", `slides/slide${i + 1}.xml`])),
  };
  slides.forEach((shapes, i) => {
    files[`ppt/slides/slide${i + 1}.xml`] = `<?xml version="1.0"?><p:sld xmlns:p="${P}" xmlns:a="${A}"><p:cSld><p:spTree>${shapes.map(shape).join("")}</p:spTree></p:cSld></p:sld>`;
  });
  return zipOf(files);
}

describe("document text in the reference's layout", () => {
  it("lays out each sheet under its name, rows tab-separated, empty cells kept and rows as wide as the sheet", async () => {
    const book = await xlsx([
      { name: "Costs", cells: [["A1", "item"], ["B1", "price"], ["A2", "tea"], ["B2", 3.5], ["A3", "cake"], ["C3", 2]] },
      { name: "Notes", cells: [["A2", "hello"]] },
    ]);
    expect(await extractText(book)).toBe("--- Costs ---\nitem\tprice\t\ntea\t3.5\t\ncake\t\t2\n--- Notes ---\n\nhello");
  });

  it("lays out each slide under its number, one text per line", async () => {
    const deck = await pptx([[["Title one"], ["line a", "line b"]], [["Second"]]]);
    expect(await extractText(deck)).toBe("--- Slide 1 ---\nTitle one\nline a\nline b\n--- Slide 2 ---\nSecond");
  });

  it("lists a sheet's cells row by row, without the grid, when the grid would pass SHEET_GRID_MAX_CELLS", async () => {
    // A1 and XFD1048576: a grid of 17 billion cells; what it says is two cells.
    expect(1_048_576 * 16_384).toBeGreaterThan(SHEET_GRID_MAX_CELLS);
    const book = await xlsx([{ name: "Far", cells: [["A1", "near"], ["XFD1048576", "far"]] }]);
    expect(await extractText(book)).toBe("--- Far ---\nnear\nfar");
  });
});
