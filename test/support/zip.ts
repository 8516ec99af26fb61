/**
 * A zip made in memory (yazl) from `{name: text}` parts, for tests that need Office documents:
 * the smallest files those formats allow are zips of a few XML parts.
 */
import yazl from "yazl";

export function zipOf(files: Record<string, string>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, text] of Object.entries(files)) zip.addBuffer(Buffer.from(text), name);
  zip.end();
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    zip.outputStream.on("data", (chunk: Buffer) => parts.push(chunk));
    zip.outputStream.on("end", () => resolve(Buffer.concat(parts)));
    zip.outputStream.on("error", reject);
  });
}
