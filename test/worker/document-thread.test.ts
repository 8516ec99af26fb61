/**
 * `/files/read`'s document thread (worker/agent/files/search.ts documentText): text comes out of
 * a thread, a thread that answered takes the next document (its libraries load once), and one
 * that ran out of time is ended and replaced.
 */
import { describe, expect, it } from "vitest";
import { documentText, documentThreadsStarted } from "../../worker/agent/files/search.ts";
import { zipOf } from "../support/zip.ts";

const WORD = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

/** A .docx of `lines` paragraphs, `line 0` … */
function docx(lines: number): Promise<Buffer> {
  const body = Array.from({ length: lines }, (_, i) => `<w:p><w:r><w:t>line ${i}</w:t></w:r></w:p>`).join("");
  return zipOf({
    "[Content_Types].xml": `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
    "_rels/.rels": `<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
    "word/document.xml": `<?xml version="1.0"?><w:document xmlns:w="${WORD}"><w:body>${body}</w:body></w:document>`,
  });
}

describe("the document thread", () => {
  it("extracts reads in a row on one thread", async () => {
    const small = await docx(3);
    expect(await documentText(small)).toBe("line 0\nline 1\nline 2");
    const started = documentThreadsStarted();
    expect(await documentText(small)).toBe("line 0\nline 1\nline 2");
    expect(await documentText(await docx(1))).toBe("line 0");
    expect(documentThreadsStarted()).toBe(started);
  });

  it("ends a thread that runs out of time, and the next read gets a new one", async () => {
    const started = documentThreadsStarted();
    await expect(documentText(await docx(200_000), 50)).rejects.toThrow("it took longer than 0.05 s");
    expect(await documentText(await docx(2))).toBe("line 0\nline 1");
    expect(documentThreadsStarted()).toBe(started + 1);
  });
});
