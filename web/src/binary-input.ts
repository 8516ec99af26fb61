// xterm.js reports some input through `onBinary` instead of `onData`: legacy (X10/normal) mouse
// reports, whose coordinates are bytes 32 + x that pass 127 on wide terminals. Each character of
// such a string stands for one byte (char code 0–255), so it must be sent as that byte, never
// UTF-8 encoded (which would turn byte 0xC8 into the two bytes 0xC3 0x88 and corrupt the report).

/**
 * The bytes an xterm `onBinary` string stands for: one byte per character, its char code's low
 * 8 bits (xterm only ever puts codes 0–255 there).
 */
export function binaryStringBytes(data: string): Uint8Array {
  const bytes = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
  return bytes;
}
