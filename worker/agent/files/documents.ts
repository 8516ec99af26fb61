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

/** The document's text; throws when the library cannot read it (ExtractorMissing when it is not installed). */
export async function extractText(data: Buffer): Promise<string> {
  let parseOffice: typeof import("officeparser").parseOffice;
  try {
    ({ parseOffice } = await import("officeparser"));
  } catch {
    throw new ExtractorMissing("officeparser is not installed");
  }
  const ast = await parseOffice(data, { ocr: false } as Parameters<typeof parseOffice>[1]);
  const out = (await ast.to("text")) as unknown as { value?: unknown } | string;
  return typeof out === "string" ? out : String(out.value ?? "");
}
