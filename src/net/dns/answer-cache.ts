// Encoded answers to questions already answered, so that a repeated question costs a map lookup
// and a copy instead of a decode and an encode (bench/RESULTS.md, DNS). The key is what the answer
// depends on: the header's flags, the question with its name in ASCII lower case, the EDNS payload
// size, and the address asked (keel's own A record is that address). Only plain requests have a
// key — one question, nothing else but at most one OPT of version 0 whose options are cookies or
// padding (RFC 7873, RFC 7830: keel ignores both; dig and resolvers send a fresh cookie with each
// query, so a key on the raw bytes would always miss). A hit gets the cached answer with the request's ID and the name
// spelled as asked, in the question and in every answer record that owns it — resolvers that
// randomise the case of names (0x20, draft-vixie-dnsext-dns0x20) check that spelling, and with a
// key on the exact bytes each of their queries would miss. Only answers that echo the question's
// name byte for byte (but for case) are kept. The owner cleared it when the cluster changes.
export class AnswerCache {
  private readonly entries = new Map<string, { reply: Buffer; nameAt: number[] }>();

  constructor(private readonly limit: number) {}

  clear(): void {
    this.entries.clear();
  }

  /** The answer to `request` asked at `localAddress`, ready to send; undefined when not cached. */
  get(request: Buffer, localAddress: string): Buffer | undefined {
    const key = cacheKey(request, localAddress);
    const entry = key === undefined ? undefined : this.entries.get(key.text);
    if (entry === undefined || key === undefined) return undefined;
    const reply = Buffer.from(entry.reply);
    request.copy(reply, 0, 0, 2);
    for (const at of entry.nameAt) request.copy(reply, at, 12, key.nameEnd);
    return reply;
  }

  /** Keeps `reply` as the answer to `request`, if its question and owner names can be respelled. */
  put(request: Buffer, localAddress: string, reply: Buffer): void {
    const key = cacheKey(request, localAddress);
    if (key === undefined) return;
    const nameLength = key.nameEnd - 12;
    // The question as encoded in the answer must be the request's (same bytes but for case, same type and class).
    if (reply.length < key.nameEnd + 4 || !sameName(reply, 12, request, nameLength) || reply.compare(request, key.nameEnd, key.nameEnd + 4, key.nameEnd, key.nameEnd + 4) !== 0) return;
    const nameAt = [12];
    let at = key.nameEnd + 4;
    for (let i = reply.readUInt16BE(6); i > 0; i--) {
      if (sameName(reply, at, request, nameLength)) nameAt.push(at);
      const end = nameEnd(reply, at, true);
      if (end === undefined || end + 10 > reply.length) return;
      at = end + 10 + reply.readUInt16BE(end + 8);
    }
    if (this.entries.size >= this.limit) this.entries.clear();
    this.entries.set(key.text, { reply, nameAt });
  }
}

const OPT_TYPE = 41;
const OPTION_COOKIE = 10;
const OPTION_PADDING = 12;

function cacheKey(request: Buffer, localAddress: string): { text: string; nameEnd: number } | undefined {
  if (request.length < 12) return undefined;
  const additionals = request.readUInt16BE(10);
  if (request.readUInt16BE(4) !== 1 || request.readUInt16BE(6) !== 0 || request.readUInt16BE(8) !== 0 || additionals > 1) return undefined;
  const end = nameEnd(request, 12, false);
  if (end === undefined || end + 4 > request.length) return undefined;
  let payloadSize = '-';
  let at = end + 4;
  if (additionals === 1) {
    // OPT: root name (1), type (2), class = payload size (2), extended rcode (1), version (1), flags (2), rdlength (2), options.
    if (at + 11 > request.length || request[at] !== 0 || request.readUInt16BE(at + 1) !== OPT_TYPE || request[at + 6] !== 0) return undefined;
    const optionsEnd = at + 11 + request.readUInt16BE(at + 9);
    if (optionsEnd > request.length) return undefined;
    for (let option = at + 11; option < optionsEnd; option += 4 + request.readUInt16BE(option + 2)) {
      if (option + 4 > optionsEnd || option + 4 + request.readUInt16BE(option + 2) > optionsEnd) return undefined;
      const code = request.readUInt16BE(option);
      if (code !== OPTION_COOKIE && code !== OPTION_PADDING) return undefined;
    }
    payloadSize = String(request.readUInt16BE(at + 3));
    at = optionsEnd;
  }
  if (at !== request.length) return undefined;
  const name = request.toString('latin1', 12, end).replace(/[A-Z]+/g, (letters) => letters.toLowerCase());
  return { text: `${localAddress}|${request.toString('latin1', 2, 4)}|${payloadSize}|${name}${request.toString('latin1', end, end + 4)}`, nameEnd: end };
}

/**
 * The end of the wire name at `at`: after its root label, or after a compression pointer when
 * `pointer` allows one; undefined past the buffer or at anything else.
 */
function nameEnd(packet: Buffer, at: number, pointer: boolean): number | undefined {
  while (at < packet.length) {
    const length = packet[at]!;
    if (length === 0) return at + 1;
    if (length >= 0xc0) return pointer && at + 2 <= packet.length ? at + 2 : undefined;
    if (length > 63) return undefined;
    at += 1 + length;
  }
  return undefined;
}

/** Whether `packet` holds at `at` the request's question name (from byte 12), ASCII case aside. */
function sameName(packet: Buffer, at: number, request: Buffer, length: number): boolean {
  if (at + length > packet.length) return false;
  for (let i = 0; i < length; i++) {
    const a = packet[at + i]!;
    const b = request[12 + i]!;
    if (a !== b && (a | 0x20) !== (b | 0x20)) return false;
    if (a !== b && !((a | 0x20) >= 0x61 && (a | 0x20) <= 0x7a)) return false;
  }
  return true;
}
