/**
 * Text out of documents for `GET /files/read`, as the reference extracts it from PDF, Word,
 * Excel, PowerPoint, OpenDocument, RTF, EPUB and e-mail files: one kept library (officeparser),
 * loaded on first use (it is large), with OCR off and its decompression limits on, so a hostile
 * document cannot make the agent inflate gigabytes.
 */
import { extname } from "node:path";

/** Largest document handed to the extractor, in bytes. */
export const DOCUMENT_MAX_BYTES = 64 << 20; // 64 MiB

/** Extensions whose text the API extracts (the reference's list; `.eml` is read as text). */
const DOCUMENT_EXTENSIONS = new Set([".pdf", ".docx", ".xlsx", ".pptx", ".rtf", ".odt", ".ods", ".odp", ".epub", ".xls"]);

/** True when `path` names a document whose text the API extracts. */
export function isDocument(path: string): boolean {
  return DOCUMENT_EXTENSIONS.has(extname(path).toLowerCase());
}

/** The library is an optional dependency of the agent package: absent, documents are not read. */
export class ExtractorMissing extends Error {
  override name = "ExtractorMissing";
}

/**
 * Most cells a sheet is laid out as a grid with, in cells (its rows times its widest row): a sheet
 * whose cells sit far apart (one at A1, one at XFD1048576) would otherwise be billions of tabs.
 * Past it, each row lists the cells it has, in order, and rows without cells are left out.
 */
export const SHEET_GRID_MAX_CELLS = 4 << 20; // 4 Mi cells

/** The document's text; throws when the library cannot read it (ExtractorMissing when it is not installed). */
export async function extractText(data: Buffer): Promise<string> {
  let parseOffice: typeof import("officeparser").parseOffice;
  try {
    ({ parseOffice } = await import("officeparser"));
  } catch {
    throw new ExtractorMissing("officeparser is not installed");
  }
  const ast = await parseOffice(data, { ocr: false } as Parameters<typeof parseOffice>[1]);
  const structured = sheetsAndSlides(ast.content as unknown as DocumentNode[]);
  if (structured !== null) return structured;
  const out = (await ast.to("text")) as unknown as { value?: unknown } | string;
  return typeof out === "string" ? out : String(out.value ?? "");
}

/** The part of officeparser's AST (8.x) read here. */
interface DocumentNode {
  type: string;
  text?: string;
  children?: DocumentNode[];
  metadata?: { sheetName?: unknown; row?: unknown; col?: unknown };
}

/**
 * Spreadsheets and presentations laid out as the reference does: each sheet under a
 * `--- name ---` line, then its rows with their cells tab-separated (empty cells kept, so columns
 * line up, and rows padded to the sheet's width); each slide under `--- Slide N ---`, then its
 * texts, one per line. Null for other documents (their library text is the reference's layout).
 */
export function sheetsAndSlides(content: readonly DocumentNode[]): string | null {
  if (!content.some((node) => node.type === "sheet" || node.type === "slide")) return null;
  const lines: string[] = [];
  let slides = 0;
  for (const node of content) {
    if (node.type === "sheet") {
      lines.push(`--- ${typeof node.metadata?.sheetName === "string" ? node.metadata.sheetName : ""} ---`);
      lines.push(...sheetRows(node));
    } else if (node.type === "slide") {
      lines.push(`--- Slide ${++slides} ---`);
      for (const child of node.children ?? []) if (child.text) lines.push(child.text);
    } else if (node.text) {
      lines.push(node.text);
    }
  }
  return lines.join("\n");
}

/** A sheet's rows, cells tab-separated, as a grid from A1 (see SHEET_GRID_MAX_CELLS). */
function sheetRows(sheet: DocumentNode): string[] {
  const cells: { row: number; col: number; text: string }[] = [];
  let rows = 0;
  let width = 0;
  for (const [r, row] of (sheet.children ?? []).entries()) {
    for (const [c, cell] of (row.children ?? []).entries()) {
      const at = { row: index(cell.metadata?.row, r), col: index(cell.metadata?.col, c), text: cell.text ?? "" };
      cells.push(at);
      rows = Math.max(rows, at.row + 1);
      width = Math.max(width, at.col + 1);
    }
  }
  if (rows * width > SHEET_GRID_MAX_CELLS) {
    return (sheet.children ?? []).filter((row) => row.children?.length).map((row) => row.children!.map((cell) => cell.text ?? "").join("\t"));
  }
  const grid = Array.from({ length: rows }, () => new Array<string>(width).fill(""));
  for (const { row, col, text } of cells) grid[row]![col] = text;
  return grid.map((row) => row.join("\t"));
}

/** A cell's 0-based row or column from the AST's metadata, or its position when it has none. */
function index(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : fallback;
}
